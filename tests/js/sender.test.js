/**
 * Unit tests for chat/static/chat/client/sender.js (run by `node --test tests/js/`, from `make test`).
 *
 * The sender is driven with a fake connection (only `send`: the sender never knows which
 * transport is live), fake timers and a recording timeline; the outbox is the real one, in
 * memory. What they pin: a room's outbox leaves strictly in typed order, one
 * message in flight at a time, a refused head holds back everything after it for exactly the
 * server's `retry_after` (or a jittered backoff without it), a final refusal lets the next go,
 * and an `ack` for a stored or deleted nonce acknowledges the head; over a (fake) Web Storage, a
 * reload resends what the last page left with the same nonces, in order.
 */

import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { test } from "node:test";

import { FakeStorage } from "./fake-storage.js";

if (!globalThis.crypto) globalThis.crypto = webcrypto;

const { Outbox } = await import("../../chat/static/chat/client/outbox.js");
const { Sender, retryDelay, RETRY_BASE_MS } = await import("../../chat/static/chat/client/sender.js");

class FakeTimers {
  constructor() {
    this.next = 1;
    this.pending = new Map();
  }
  setTimeout(fn, ms) {
    const id = this.next++;
    this.pending.set(id, { fn, ms });
    return id;
  }
  clearTimeout(id) {
    this.pending.delete(id);
  }
  /** The delays of the timers waiting now. */
  delays() {
    return [...this.pending.values()].map((t) => t.ms);
  }
  /** Fires every timer waiting for exactly `ms`. */
  fire(ms) {
    for (const [id, t] of [...this.pending]) {
      if (t.ms === ms) {
        this.pending.delete(id);
        t.fn();
      }
    }
  }
}

class FakeTimeline {
  constructor() {
    this.states = new Map();
    this.deleted = [];
  }
  addPending(entry) {
    this.states.set(entry.nonce, "pending");
  }
  scrollToBottom() {}
  setSending(nonce) {
    this.states.set(nonce, "sending");
  }
  setRetrying(nonce, code, seconds) {
    this.states.set(nonce, `retrying ${code} ${seconds}`);
  }
  setFailed(nonce, code) {
    this.states.set(nonce, `failed ${code}`);
  }
  removePending(nonce) {
    this.states.delete(nonce);
  }
  markDeleted(id) {
    this.deleted.push(id);
  }
}

/** A connection that records the frames sent; `live` false: no transport can take them. */
class FakeConnection {
  constructor(live = true) {
    this.live = live;
    this.frames = [];
  }
  send(frame) {
    if (!this.live) return false;
    this.frames.push(frame);
    return true;
  }
  bodies() {
    return this.frames.map((f) => f.body);
  }
}

function setup(live = true, storage = null) {
  const outbox = new Outbox("room", storage);
  const timeline = new FakeTimeline();
  const connection = new FakeConnection(live);
  const timers = new FakeTimers();
  const shown = [];
  const sender = new Sender({
    outbox,
    timeline,
    connection,
    me: () => "alice",
    timers,
    random: () => 0.5,
    onStored: (msg) => {
      shown.push(msg);
      sender.acknowledge(msg);
    },
  });
  /** The server stored the message in flight: its frame comes back to every member. */
  const store = (frame, id) => {
    const msg = { id, body: frame.body, nonce: frame.nonce };
    shown.push(msg);
    sender.acknowledge(msg);
    return msg;
  };
  return { outbox, timeline, connection, timers, sender, shown, store };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

test("one message in flight at a time, sent in typed order", () => {
  const { connection, sender, store, outbox } = setup();
  for (const body of ["one", "two", "three"]) sender.submit(body);
  assert.deepEqual(connection.bodies(), ["one"]);
  store(connection.frames[0], 1);
  assert.deepEqual(connection.bodies(), ["one", "two"]);
  store(connection.frames[1], 2);
  store(connection.frames[2], 3);
  assert.deepEqual(connection.bodies(), ["one", "two", "three"]);
  assert.deepEqual(outbox.all(), []);
});

test("a rate-limited head holds the rest back for exactly retry_after, then goes first", () => {
  const { connection, sender, timers, timeline, store } = setup();
  for (const body of ["a", "b", "c"]) sender.submit(body);
  const head = connection.frames[0];
  sender.refused(head.nonce, "rate_limited", 2.5);
  assert.equal(timeline.states.get(head.nonce), "retrying rate_limited 3");
  assert.deepEqual(timers.delays().filter((ms) => ms !== 30000), [2500]);
  assert.deepEqual(connection.bodies(), ["a"]);
  // Typing more while waiting changes nothing.
  sender.submit("d");
  assert.deepEqual(connection.bodies(), ["a"]);
  timers.fire(2500);
  assert.deepEqual(connection.bodies(), ["a", "a"]);
  assert.equal(connection.frames[1].nonce, head.nonce);
  store(connection.frames[1], 7);
  store(connection.frames[2], 8);
  store(connection.frames[3], 9);
  assert.deepEqual(connection.bodies(), ["a", "a", "b", "c", "d"]);
});

test("busy without retry_after backs off with jitter, doubling per refusal", () => {
  assert.equal(retryDelay(1, 3, () => 0), 3000);
  assert.equal(retryDelay(1, 0, () => 0.9), 0);
  assert.equal(retryDelay(1, undefined, () => 0), RETRY_BASE_MS / 2);
  assert.equal(retryDelay(1, undefined, () => 1), RETRY_BASE_MS);
  assert.equal(retryDelay(3, null, () => 1), RETRY_BASE_MS * 4);
  assert.equal(retryDelay(40, undefined, () => 1), 30000);

  const { connection, sender, timers } = setup();
  sender.submit("x");
  sender.submit("y");
  sender.refused(connection.frames[0].nonce, "busy");
  assert.ok(timers.delays().includes(750));
  timers.fire(750);
  sender.refused(connection.frames[1].nonce, "busy");
  assert.ok(timers.delays().includes(1500));
  assert.deepEqual(connection.bodies(), ["x", "x"]);
});

test("a final refusal marks the head failed and lets the next one go", () => {
  const { connection, sender, timeline, outbox } = setup();
  sender.submit("too long");
  sender.submit("fine");
  const head = connection.frames[0];
  sender.refused(head.nonce, "body_too_long");
  assert.equal(timeline.states.get(head.nonce), "failed body_too_long");
  assert.equal(outbox.get(head.nonce).failed, "body_too_long");
  assert.deepEqual(connection.bodies(), ["too long", "fine"]);
});

test("a reload resends what the last page left: same nonces, typed order, failures kept", () => {
  const storage = new FakeStorage();
  const before = setup(true, storage);
  for (const body of ["stored", "too long", "in flight", "typed last"]) before.sender.submit(body);
  before.store(before.connection.frames[0], 1);
  before.sender.refused(before.connection.frames[1].nonce, "body_too_long");
  const inFlight = before.connection.frames[2];
  assert.equal(inFlight.body, "in flight");
  const typedLast = before.outbox.all().at(-1);
  // The page goes away before "in flight" is answered; the next page starts offline.
  const after = setup(false, storage);
  after.sender.restore();
  assert.deepEqual(
    [...after.timeline.states.values()],
    ["failed body_too_long", "pending", "pending"],
  );
  after.connection.live = true;
  after.sender.flush();
  assert.deepEqual(after.connection.frames, [inFlight]);
  after.store(after.connection.frames[0], 2);
  assert.deepEqual(after.connection.bodies(), ["in flight", "typed last"]);
  assert.equal(after.connection.frames[1].nonce, typedLast.nonce);
  assert.deepEqual(
    after.outbox.all().map((e) => e.body),
    ["too long", "typed last"],
  );
});

test("refusals for a message that is not in flight are ignored", () => {
  const { connection, sender, timers } = setup();
  sender.submit("a");
  sender.submit("b");
  sender.refused("someone-else", "rate_limited", 1);
  sender.refused(connection.frames[0].nonce + "x", "body_too_long");
  assert.deepEqual(timers.delays(), [30000]);
  assert.deepEqual(connection.bodies(), ["a"]);
});

test("offline: nothing is sent until a transport is ready, then the head first", () => {
  const { connection, sender } = setup(false);
  sender.submit("first");
  sender.submit("second");
  assert.deepEqual(connection.bodies(), []);
  connection.live = true;
  sender.flush();
  assert.deepEqual(connection.bodies(), ["first"]);
});

test("a reconnect resends the head that was in flight, never a later one", () => {
  const { connection, sender, store } = setup();
  sender.submit("first");
  sender.submit("second");
  sender.flush(); // the socket was replaced: the old one may have lost the frame
  assert.deepEqual(connection.bodies(), ["first", "first"]);
  store(connection.frames[0], 1);
  assert.deepEqual(connection.bodies(), ["first", "first", "second"]);
});

test("the server asked us to wait: a reconnect does not cut the wait short", () => {
  const { connection, sender, timers } = setup();
  sender.submit("first");
  sender.refused(connection.frames[0].nonce, "rate_limited", 4);
  sender.flush();
  assert.deepEqual(connection.bodies(), ["first"]);
  timers.fire(4000);
  assert.deepEqual(connection.bodies(), ["first", "first"]);
});

test("an ack with the original message acknowledges the head and shows it", () => {
  const { connection, sender, shown, outbox } = setup();
  sender.submit("again");
  sender.submit("next");
  const head = connection.frames[0];
  const original = { id: 3, body: "again", nonce: head.nonce };
  sender.onAck({ type: "ack", nonce: head.nonce, id: 3, deleted: false, message: original });
  assert.deepEqual(shown, [original]);
  assert.equal(outbox.get(head.nonce), undefined);
  assert.deepEqual(connection.bodies(), ["again", "next"]);
});

test("an ack for a deleted original removes the pending copy and never shows its text", () => {
  const { connection, sender, shown, timeline, outbox } = setup();
  sender.submit("deleted by staff");
  sender.submit("next");
  const head = connection.frames[0];
  sender.onAck({ type: "ack", nonce: head.nonce, id: 12, deleted: true });
  assert.deepEqual(shown, []);
  assert.equal(timeline.states.has(head.nonce), false);
  assert.deepEqual(timeline.deleted, [12]);
  assert.equal(outbox.get(head.nonce), undefined);
  assert.deepEqual(connection.bodies(), ["deleted by staff", "next"]);
});

test("answers arrive as frames whatever the transport: error, ack for a deleted original", () => {
  const { connection, sender, timers, shown, timeline, store } = setup();
  for (const body of ["p1", "p2", "p3"]) sender.submit(body);
  // A refused POST comes back as the socket's error frame would.
  sender.refused(connection.frames[0].nonce, "rate_limited", 1);
  timers.fire(1000);
  assert.deepEqual(connection.bodies(), ["p1", "p1"]);
  store(connection.frames[1], 5);
  // p2 was stored before and deleted since: an ack without its text.
  const p2 = connection.frames[2];
  sender.onAck({ type: "ack", nonce: p2.nonce, id: 6, deleted: true });
  assert.equal(timeline.states.has(p2.nonce), false);
  store(connection.frames[3], 7);
  assert.deepEqual(
    shown.map((m) => m.id),
    [5, 7],
  );
  assert.deepEqual(connection.bodies(), ["p1", "p1", "p2", "p3"]);
});

test("a reply carries reply_to, survives a reload, and a refused parent is final", () => {
  const storage = new FakeStorage();
  const first = setup(true, storage);
  first.sender.submit("plain");
  first.store(first.connection.frames[0], 1);
  const entry = first.sender.submit("an answer", 1);
  assert.equal(entry.reply_to, 1);
  assert.deepEqual(first.connection.frames[1], {
    type: "message",
    body: "an answer",
    nonce: entry.nonce,
    reply_to: 1,
  });
  assert.equal("reply_to" in first.connection.frames[0], false);
  // Reloaded before the answer: the resend is the same reply, same nonce.
  const again = setup(true, storage);
  again.sender.restore();
  again.sender.flush();
  assert.deepEqual(again.connection.frames[0], first.connection.frames[1]);
  // Django refuses the parent: final (Discard only), and the next message leaves.
  again.sender.submit("next");
  again.sender.refused(entry.nonce, "unknown_parent");
  assert.equal(again.timeline.states.get(entry.nonce), "failed unknown_parent");
  assert.equal(again.connection.frames.at(-1).body, "next");
  assert.equal(again.timers.delays().includes(RETRY_BASE_MS), false);
});
