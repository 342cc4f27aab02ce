/**
 * Unit tests for the pure helpers of chat/static/chat/client/direct.js: which people get a
 * "Message" button (registered users by their stable `u:<id>`, never guests or made-up ids) and
 * the form action built from the page's URL template.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

const { userIdOf, directUrl } = await import("../../chat/static/chat/client/direct.js");

test("only a registered user's stable id gives a user id", () => {
  assert.equal(userIdOf("u:7"), "7");
  assert.equal(userIdOf("u:1234567890123456789"), "1234567890123456789");
  for (const uid of ["g:0123456789abcdef", "u:0", "u:07", "u:7/../x", "name:alice", "", null, undefined]) {
    assert.equal(userIdOf(uid), null, String(uid));
  }
});

test("the action replaces the template's trailing 0 only", () => {
  assert.equal(directUrl("/chats/direct/0/", "12"), "/chats/direct/12/");
  assert.equal(directUrl("/app/chats/direct/0/", "3"), "/app/chats/direct/3/");
});
