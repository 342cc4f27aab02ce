/**
 * Unit tests for chat/static/chat/client/unread-state.js (the room list's counts from the
 * personal feed) and the `@` query of mentions.js.
 *
 * What they pin: a summary loads the counts; `room_message` counts once per id and never at or
 * below the read position; `mention` also counts a mention; `unread` replaces the room's state
 * (a read on another device clears it); unknown kinds change nothing; muted rooms leave the
 * unread total; notifications only for others' mentions in a hidden tab of an unmuted room.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

const { UnreadState, shouldNotify, titleWithTotal } = await import(
  "../../chat/static/chat/client/unread-state.js"
);
const { mentionQuery } = await import("../../chat/static/chat/client/mentions.js");

const message = (id, type = "room_message", room = "lobby") => ({ type, room, id, author: { id: "u:2" } });

test("a summary loads, a message counts once, never at or below the read position", () => {
  const state = new UnreadState();
  state.load({ rooms: [{ room: "lobby", unread: 2, mentions: 0, last_read_id: 10, muted: false }] });
  assert.equal(state.get("lobby").unread, 2);
  assert.equal(state.apply(message(9)), null);
  assert.equal(state.apply(message(11)), "lobby");
  assert.equal(state.apply(message(11)), null);
  assert.equal(state.get("lobby").unread, 3);
});

test("a mention counts as unread and as a mention; an unread event replaces the state", () => {
  const state = new UnreadState();
  state.apply(message(5, "mention", "dev"));
  assert.deepEqual([state.get("dev").unread, state.get("dev").mentions], [1, 1]);
  state.apply({ type: "unread", room: "dev", unread: 0, mentions: 0, last_read_id: 5, muted: false });
  assert.deepEqual([state.get("dev").unread, state.get("dev").mentions], [0, 0]);
  assert.equal(state.apply(message(5, "mention", "dev")), null);
});

test("unknown kinds change nothing; muted rooms leave the unread total", () => {
  const state = new UnreadState();
  assert.equal(state.apply({ type: "invitation", room: "x" }), null);
  state.apply(message(1, "room_message", "a"));
  state.apply(message(2, "mention", "b"));
  state.apply({ type: "unread", room: "a", unread: 1, mentions: 0, last_read_id: 0, muted: true });
  assert.deepEqual(state.total(), { unread: 1, mentions: 1 });
  assert.equal(titleWithTotal("Rooms", state.total()), "(@1 · 1) Rooms");
  assert.equal(titleWithTotal("Rooms", { unread: 3, mentions: 0 }), "(3) Rooms");
  assert.equal(titleWithTotal("Rooms", { unread: 0, mentions: 0 }), "Rooms");
});

test("notifications: others' mentions, hidden tab, unmuted room only", () => {
  const mention = message(3, "mention");
  const base = { hidden: true, meId: "u:1", currentRoom: "", muted: false };
  assert.equal(shouldNotify(mention, base), true);
  assert.equal(shouldNotify(mention, { ...base, hidden: false }), false);
  assert.equal(shouldNotify(mention, { ...base, muted: true }), false);
  assert.equal(shouldNotify(mention, { ...base, meId: "u:2" }), false);
  assert.equal(shouldNotify(message(3), base), false);
});

test("notifications: direct messages notify like mentions", () => {
  const direct = { ...message(4), direct: true };
  const base = { hidden: true, meId: "u:1", currentRoom: "", muted: false };
  assert.equal(shouldNotify(direct, base), true);
  assert.equal(shouldNotify(direct, { ...base, hidden: false }), false);
  assert.equal(shouldNotify(direct, { ...base, muted: true }), false);
  assert.equal(shouldNotify(direct, { ...base, meId: "u:2" }), false);
});

test("the @ query before the caret", () => {
  assert.deepEqual(mentionQuery("hi @bo", 6), { prefix: "bo", start: 3 });
  assert.deepEqual(mentionQuery("@", 1), { prefix: "", start: 0 });
  assert.equal(mentionQuery("mail a@b", 8), null);
  assert.equal(mentionQuery("hi @bob there", 13), null);
});
