/**
 * Unit tests for the personal feed connection (chat/static/chat/client/feed.js) with a fake
 * `fetch` and a fake `WebSocket`: the socket's `hello` asks the page to read its state again and
 * every other frame reaches `onFrame`; a socket that never opens makes the feed long-poll
 * `/poll/@me`, sending back each answer's cursor; a poll refused with 403 fetches a new ticket.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

const { Feed } = await import("../../chat/static/chat/client/feed.js");

const TICKET = { ticket: "t", ws_url: "ws://chat/ws/@me?ticket=t", poll_url: "http://chat/poll/@me?ticket=t" };

const reply = (status, data) => ({ status, ok: status >= 200 && status < 300, json: async () => data });

async function until(condition, ms = 5000) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

class FakeSocket {
  static made = [];
  constructor(url) {
    this.url = url;
    FakeSocket.made.push(this);
  }
  close() {
    this.onclose?.({ code: 1000 });
  }
}

test("socket: hello reloads, other frames reach onFrame", async () => {
  FakeSocket.made = [];
  const frames = [];
  let hellos = 0;
  const feed = new Feed({
    ticketUrl: "/api/feed/ticket/",
    fetchImpl: async () => reply(200, TICKET),
    WebSocketImpl: FakeSocket,
    onHello: () => {
      hellos += 1;
    },
    onFrame: (frame) => frames.push(frame),
  });
  feed.start();
  await until(() => FakeSocket.made.length === 1);
  const socket = FakeSocket.made[0];
  assert.equal(socket.url, TICKET.ws_url);
  socket.onopen();
  socket.onmessage({ data: JSON.stringify({ type: "hello", feed: true }) });
  socket.onmessage({ data: JSON.stringify({ type: "unread", room: "lobby", unread: 0 }) });
  socket.onmessage({ data: "not json" });
  assert.equal(hellos, 1);
  assert.deepEqual(frames, [{ type: "unread", room: "lobby", unread: 0 }]);
  feed.stop();
});

test("a socket that never opens: long polls with the cursor; 403 fetches a new ticket", async () => {
  FakeSocket.made = [];
  const calls = [];
  const answers = [
    reply(200, { events: [{ type: "hello" }], cursor: "abcd0123.0" }),
    reply(200, { events: [{ type: "mention", room: "dev", id: 4 }], cursor: "abcd0123.1" }),
    reply(403, { error: "bad_ticket" }),
  ];
  let tickets = 0;
  const frames = [];
  let hellos = 0;
  let feed;
  const fetchImpl = async (url) => {
    if (url === "/api/feed/ticket/") {
      tickets += 1;
      return reply(200, TICKET);
    }
    calls.push(url);
    const answer = answers.shift();
    if (!answer) {
      feed.stop();
      return reply(200, { events: [], cursor: "abcd0123.1" });
    }
    return answer;
  };
  feed = new Feed({
    ticketUrl: "/api/feed/ticket/",
    fetchImpl,
    WebSocketImpl: FakeSocket,
    onHello: () => {
      hellos += 1;
    },
    onFrame: (frame) => frames.push(frame),
  });
  feed.start();
  await until(() => FakeSocket.made.length === 1);
  FakeSocket.made[0].onclose({ code: 1006 }); // blocked: never opened
  await until(() => calls.length >= 4, 8000);
  assert.equal(calls[0], TICKET.poll_url);
  assert.equal(calls[1], `${TICKET.poll_url}&cursor=abcd0123.0`);
  assert.equal(calls[2], `${TICKET.poll_url}&cursor=abcd0123.1`);
  assert.equal(calls[3], TICKET.poll_url); // after the 403: a new ticket, a fresh start
  assert.equal(tickets, 3);
  assert.equal(hellos, 1);
  assert.deepEqual(frames, [{ type: "mention", room: "dev", id: 4 }]);
  assert.equal(FakeSocket.made.length, 1); // polling from then on
});
