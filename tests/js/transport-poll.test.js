/**
 * Unit tests for the long-poll transport's sending side (chat/static/chat/client/transport-poll.js),
 * with a fake `fetch`: a POST's answer comes out as the frames a socket would deliver (the
 * stored `message`, an `ack`, an `error` with the nonce and `retry_after`), a typing notice is a
 * POST too, a message's POST carries its reply_to and attachments, and the answer to a POST of a
 * nonce that was posted again since is dropped.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

const { PollTransport, answerFrames } = await import("../../chat/static/chat/client/transport-poll.js");

/** A fetch whose calls wait until the test answers them. */
function fakeFetch() {
  const calls = [];
  const fetch = (url, init) =>
    new Promise((resolve) => calls.push({ url, init, body: JSON.parse(init.body), resolve }));
  const respond = (call, status, data, headers = {}) =>
    call.resolve({
      status,
      ok: status >= 200 && status < 300,
      json: async () => data,
      headers: { get: (name) => headers[name] ?? null },
    });
  return { fetch, calls, respond };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

function transport() {
  const frames = [];
  const poll = new PollTransport({
    pollUrl: "http://chat.test/poll/lobby?ticket=t",
    since: null,
    renewTicket: async () => ({ poll_url: "http://chat.test/poll/lobby?ticket=t2" }),
    onFrame: (frame) => frames.push(frame),
    onAnswer: () => {},
    onGone: () => {},
    onTrouble: () => {},
    onHealthy: () => {},
  });
  return { poll, frames };
}

/** A GET loop from `since` whose callbacks do nothing, but those in `overrides`. */
function pollingFrom(since, overrides = {}) {
  return new PollTransport({
    pollUrl: "http://chat.test/poll/lobby?ticket=t",
    since,
    renewTicket: async () => ({ poll_url: "http://chat.test/poll/lobby?ticket=t2" }),
    onFrame: () => {},
    onAnswer: () => {},
    onGone: () => {},
    onTrouble: () => {},
    onHealthy: () => {},
    ...overrides,
  });
}

test("a POST answers frames: the stored message, or an error frame with nonce and retry_after", async () => {
  const { fetch, calls, respond } = fakeFetch();
  globalThis.fetch = fetch;
  const { poll, frames } = transport();
  poll.send({ type: "message", body: "hi", nonce: "n1" });
  await tick();
  assert.deepEqual(calls[0].body, { body: "hi", nonce: "n1" });
  const message = { type: "message", id: 4, body: "hi", nonce: "n1" };
  respond(calls[0], 200, { events: [message] });
  await tick();
  assert.deepEqual(frames, [message]);
  poll.send({ type: "message", body: "again", nonce: "n2" });
  await tick();
  respond(calls[1], 503, { error: "busy", message: "later", retry_after: 1.5 });
  await tick();
  assert.deepEqual(frames[1], { type: "error", code: "busy", nonce: "n2", retry_after: 1.5 });
});

test("typing is a POST of the socket's typing frame; its answer delivers nothing", async () => {
  const { fetch, calls, respond } = fakeFetch();
  globalThis.fetch = fetch;
  const { poll, frames } = transport();
  poll.send({ type: "typing" });
  await tick();
  assert.deepEqual(calls[0].body, { type: "typing" });
  respond(calls[0], 200, { events: [] });
  await tick();
  assert.deepEqual(frames, []);
});

test("the answer to a POST superseded by a later POST of the same nonce is dropped", async () => {
  const { fetch, calls, respond } = fakeFetch();
  globalThis.fetch = fetch;
  const { poll, frames } = transport();
  poll.send({ type: "message", body: "late", nonce: "n" });
  poll.send({ type: "message", body: "late", nonce: "n" });
  await tick();
  respond(calls[0], 400, { error: "body_too_long", message: "no" });
  await tick();
  assert.deepEqual(frames, []);
  respond(calls[1], 200, { events: [{ type: "message", id: 1, body: "late", nonce: "n" }] });
  await tick();
  assert.deepEqual(
    frames.map((f) => f.type),
    ["message"],
  );
});

test("a GET answer's frames are its events; a previous release's answer is rebuilt as frames", () => {
  const presence = { type: "presence", online: ["a"], people: [] };
  assert.deepEqual(answerFrames({ events: [presence], messages: [{ id: 9 }] }), [presence]);
  assert.deepEqual(answerFrames({ messages: [{ id: 9 }], deleted: [3], online: ["a"], people: [] }), [
    { type: "message", id: 9 },
    { type: "deleted", id: 3 },
    presence,
  ]);
});

test("the first GET asks wait=0 (answered at once), later ones wait, and after trouble wait=0 again", async () => {
  globalThis.window ??= { location: { href: "http://site.test/chats/lobby/" } };
  const gets = [];
  globalThis.fetch = (url) =>
    new Promise((resolve, reject) => gets.push({ url: new URL(url), resolve, reject }));
  const answer = (call, events) =>
    call.resolve({ status: 200, ok: true, json: async () => ({ events, cursor: 7, has_more: false }) });
  const healthy = [];
  const poll = pollingFrom(7, { onHealthy: () => healthy.push(true) });
  poll.start();
  await tick();
  assert.equal(gets[0].url.searchParams.get("wait"), "0");
  assert.equal(gets[0].url.searchParams.get("since"), "7");
  // Presence only, answered at once: healthy, and the next poll follows without a pause.
  answer(gets[0], [{ type: "presence", online: [], people: [] }]);
  await tick();
  await tick();
  assert.equal(healthy.length, 1);
  assert.equal(gets.length, 2);
  assert.equal(gets[1].url.searchParams.get("wait"), null);
  gets[1].reject(new TypeError("network down"));
  await new Promise((resolve) => {
    const check = () => (gets.length === 3 ? resolve() : setTimeout(check, 10));
    check();
  });
  assert.equal(gets[2].url.searchParams.get("wait"), "0");
  poll.stop();
});

test("a reply's POST carries reply_to, and Django's refusal of its parent is an error frame", async () => {
  const { fetch, calls, respond } = fakeFetch();
  globalThis.fetch = fetch;
  const { poll, frames } = transport();
  poll.send({ type: "message", body: "yes", nonce: "r1", reply_to: 12 });
  await tick();
  assert.deepEqual(calls[0].body, { body: "yes", nonce: "r1", reply_to: 12 });
  respond(calls[0], 400, { error: "unknown_parent", message: "not in this room" });
  await tick();
  assert.equal(frames[0].type, "error");
  assert.equal(frames[0].code, "unknown_parent");
  assert.equal(frames[0].nonce, "r1");
});

test("each GET hands back the previous answer's event_cursor (edits seen), the first sends none", async () => {
  globalThis.window ??= { location: { href: "http://site.test/chats/lobby/" } };
  const gets = [];
  globalThis.fetch = (url) => new Promise((resolve) => gets.push({ url: new URL(url), resolve }));
  const answer = (call, body) => call.resolve({ status: 200, ok: true, json: async () => body });
  const poll = pollingFrom(7);
  poll.start();
  await tick();
  assert.equal(gets[0].url.searchParams.get("event_cursor"), null);
  const edited = { type: "edited", id: 7, version: 1, body: "x" };
  answer(gets[0], { events: [edited], cursor: 7, event_cursor: "ab12.3", has_more: false });
  await tick();
  await tick();
  assert.equal(gets[1].url.searchParams.get("event_cursor"), "ab12.3");
  // An answer without one (a server stopping, an older release) keeps the last one.
  answer(gets[1], { events: [edited], cursor: 7, has_more: false });
  await tick();
  await tick();
  assert.equal(gets[2].url.searchParams.get("event_cursor"), "ab12.3");
  poll.stop();
});

test("a message's POST carries its attachments' ids, and a refusal of them is an error frame", async () => {
  const { fetch, calls, respond } = fakeFetch();
  globalThis.fetch = fetch;
  const { poll, frames } = transport();
  poll.send({ type: "message", body: "", nonce: "f1", attachments: ["A1", "B2"] });
  await tick();
  assert.deepEqual(calls[0].body, { body: "", nonce: "f1", attachments: ["A1", "B2"] });
  respond(calls[0], 400, { error: "bad_attachments", message: "An attachment is unknown." });
  await tick();
  assert.deepEqual(
    [frames[0].type, frames[0].code, frames[0].nonce],
    ["error", "bad_attachments", "f1"],
  );
  poll.send({ type: "message", body: "plain", nonce: "f2" });
  await tick();
  assert.deepEqual(calls[1].body, { body: "plain", nonce: "f2" });
});
