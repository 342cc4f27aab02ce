/**
 * Unit tests for chat/static/chat/client/outbox.js over a fake Web Storage (tests/js/fake-storage.js).
 *
 * What they pin: what was typed survives a reload (a new Outbox over the same storage) in typed
 * order with the same nonces, so a resend can never store a second row; each room has its own
 * key and an empty outbox leaves no key behind; a final failure is remembered; garbage in the
 * storage is ignored; a storage that refuses writes (quota, privacy mode) degrades to memory
 * without losing the page's messages; and every nonce has the protocol's shape.
 */

import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { test } from "node:test";

import { FakeStorage } from "./fake-storage.js";

if (!globalThis.crypto) globalThis.crypto = webcrypto;

const { Outbox, newNonce } = await import("../../chat/static/chat/client/outbox.js");

/** The nonce rule of docs/protocol.md ("Shapes"), as both servers apply it. */
const NONCE_RE = /^[A-Za-z0-9_-]{1,64}$/;

test("typed messages survive a reload in order, with the same nonces", () => {
  const storage = new FakeStorage();
  const page = new Outbox("lobby", storage);
  const typed = ["one", "two", "three"].map((body) => page.add(body));
  const reloaded = new Outbox("lobby", storage);
  assert.deepEqual(
    reloaded.all().map((e) => [e.body, e.nonce, e.failed]),
    typed.map((e) => [e.body, e.nonce, null]),
  );
  assert.equal(reloaded.get(typed[1].nonce).body, "two");
  assert.ok(typed.every((e) => !Number.isNaN(Date.parse(e.created))));
});

test("each room keeps its own entries; an empty outbox leaves no key", () => {
  const storage = new FakeStorage();
  const lobby = new Outbox("lobby", storage);
  const other = new Outbox("other", storage);
  const entry = lobby.add("for the lobby");
  other.add("elsewhere");
  assert.deepEqual([...storage.items.keys()].sort(), ["dtc.outbox.lobby", "dtc.outbox.other"]);
  assert.equal(new Outbox("other", storage).get(entry.nonce), undefined);
  lobby.remove(entry.nonce);
  assert.equal(storage.getItem("dtc.outbox.lobby"), null);
  assert.equal(new Outbox("other", storage).all().length, 1);
});

test("removing an unknown nonce writes nothing", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox("lobby", storage);
  outbox.add("kept");
  const writes = storage.writes;
  outbox.remove("not-there");
  assert.equal(storage.writes, writes);
  assert.equal(outbox.all().length, 1);
});

test("a final failure is remembered across a reload, and can be cleared", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox("lobby", storage);
  const [a, b] = [outbox.add("a"), outbox.add("b")];
  outbox.setFailed(a.nonce, "body_too_long");
  const reloaded = new Outbox("lobby", storage);
  assert.deepEqual(
    reloaded.all().map((e) => e.failed),
    ["body_too_long", null],
  );
  reloaded.setFailed(a.nonce, null);
  assert.equal(new Outbox("lobby", storage).get(a.nonce).failed, null);
  assert.equal(new Outbox("lobby", storage).get(b.nonce).body, "b");
});

test("garbage in the storage is ignored, not thrown", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox("lobby", storage);
  for (const junk of ["{not json", '{"a": 1}', "42", "null"]) {
    storage.items.set("dtc.outbox.lobby", junk);
    assert.deepEqual(outbox.all(), [], junk);
  }
  storage.items.set(
    "dtc.outbox.lobby",
    JSON.stringify([null, { nonce: 1, body: "x" }, { nonce: "ok-1", body: "kept" }, "x"]),
  );
  assert.deepEqual(
    outbox.all().map((e) => e.nonce),
    ["ok-1"],
  );
});

test("a storage that refuses writes degrades to memory and keeps the page's messages", () => {
  const storage = new FakeStorage();
  const outbox = new Outbox("lobby", storage);
  const first = outbox.add("stored");
  storage.full = true;
  const second = outbox.add("kept in memory");
  assert.deepEqual(
    outbox.all().map((e) => e.nonce),
    [first.nonce, second.nonce],
  );
  outbox.remove(first.nonce);
  assert.deepEqual(
    outbox.all().map((e) => e.body),
    ["kept in memory"],
  );
  // What reached the storage before it refused is still there for the next page.
  assert.deepEqual(
    storage.json("dtc.outbox.lobby").map((e) => e.nonce),
    [first.nonce],
  );
});

test("without any storage the outbox works in memory", () => {
  // In node there is no `window.localStorage`: the default falls back to memory.
  for (const outbox of [new Outbox("lobby", null), new Outbox("lobby")]) {
    const entry = outbox.add("hi");
    assert.equal(outbox.get(entry.nonce).body, "hi");
    outbox.remove(entry.nonce);
    assert.deepEqual(outbox.all(), []);
  }
});

test("nonces have the protocol's shape and do not repeat, with or without randomUUID", () => {
  const seen = new Set();
  for (let i = 0; i < 200; i++) seen.add(newNonce());
  const original = crypto.randomUUID;
  try {
    // Plain-http pages have no crypto.randomUUID (secure contexts only).
    Object.defineProperty(crypto, "randomUUID", { value: undefined, configurable: true });
    for (let i = 0; i < 200; i++) {
      const nonce = newNonce();
      assert.match(nonce, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      seen.add(nonce);
    }
  } finally {
    Object.defineProperty(crypto, "randomUUID", { value: original, configurable: true });
  }
  assert.equal(seen.size, 400);
  for (const nonce of seen) assert.match(nonce, NONCE_RE);
});
