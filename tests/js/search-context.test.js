/**
 * Unit tests for chat/static/chat/client/search-context.js: which `?around=` values open a message in
 * context. Only a plain decimal id by the protocol's number rule (docs/protocol.md, "Numbers in
 * URLs") counts; anything else leaves the page at its newest messages.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { installFakeDocument } from "./fake-dom.js";

installFakeDocument();
const { aroundId } = await import("../../chat/static/chat/client/search-context.js");

test("a decimal id is taken", () => {
  assert.equal(aroundId("?around=812"), 812);
  assert.equal(aroundId("?q=x&around=0"), 0);
  assert.equal(aroundId("?around=9007199254740991"), 9007199254740991);
});

test("anything else is ignored", () => {
  for (const value of ["", "abc", "-1", "+1", " 12", "1.5", "1e3", "12345678901234567", "٣"]) {
    assert.equal(aroundId(`?around=${encodeURIComponent(value)}`), null, value);
  }
  assert.equal(aroundId(""), null);
  assert.equal(aroundId("?around=9007199254740992"), null);
});
