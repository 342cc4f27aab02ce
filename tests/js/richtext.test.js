/**
 * Unit tests for chat/static/chat/client/richtext.js's link check (run by `node --test`).
 *
 * The rest of the module (the Trusted Types policy, the inert template, the allowlist walk, the
 * copy button) needs a real DOM and is tested in Chromium (tests/browser/test_formatting.py).
 */

import assert from "node:assert/strict";
import { test } from "node:test";

const { linkAllowed } = await import("../../chat/static/chat/client/richtext.js");

test("links keep only absolute http, https and mailto URLs, read as the browser reads them", () => {
  for (const href of ["https://example.org/a", "HTTP://EXAMPLE.ORG", "mailto:a@example.org"]) {
    assert.equal(linkAllowed(href), true, href);
  }
  for (const href of [
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " \u0001javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:x",
    "file:///etc/passwd",
    "/relative",
    "//example.org",
    "",
  ]) {
    assert.equal(linkAllowed(href), false, JSON.stringify(href));
  }
});
