/**
 * Unit tests for chat/static/chat/client/avatar.js: the browser draws the same avatar as the
 * server-rendered page. Every worked example of tests/contract/avatar_vectors.json (which
 * tests/chat/test_avatars.py checks against chat/avatars.py) must come out the same here.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { installFakeDocument } from "./fake-dom.js";

installFakeDocument();
const { avatarFor, buildAvatar, fnv1a32, PALETTE_SIZE } = await import(
  "../../chat/static/chat/client/avatar.js"
);

const vectors = JSON.parse(
  readFileSync(new URL("../contract/avatar_vectors.json", import.meta.url), "utf-8"),
);

test("FNV-1a 32 over UTF-8 matches the shared vectors (and the published ones)", () => {
  assert.equal(fnv1a32("a"), 0xe40c292c);
  assert.equal(fnv1a32("foobar"), 0xbf9cf968);
  for (const { text, hash } of vectors.fnv1a32) {
    assert.equal(fnv1a32(text), hash, text);
  }
});

test("initials and colour of every worked example agree with chat/avatars.py", () => {
  assert.ok(vectors.avatars.length >= 20);
  for (const { uid, name, initials, colour } of vectors.avatars) {
    assert.deepEqual(avatarFor(uid, name), { initials, colour }, `${uid} ${name}`);
  }
});

test("the avatar element is decorative and carries only text and a palette class", () => {
  const span = buildAvatar("u:2", "<b>Bob</b> Builder");
  assert.equal(span.getAttribute("aria-hidden"), "true");
  assert.equal(span.textContent, "BB");
  const index = Number(span.className.replace("avatar avatar-c", ""));
  assert.ok(Number.isInteger(index) && index >= 0 && index < PALETTE_SIZE);
});
