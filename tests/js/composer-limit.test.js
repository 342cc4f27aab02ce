/**
 * Unit tests for static/chat/client/composer-limit.js: the composer counts what the server counts
 * (code points of the trimmed body, not UTF-16 units), shows a counter near the limit, and refuses
 * a body over it with a visible reason while keeping the text.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { installFakeDocument } from "./fake-dom.js";

installFakeDocument();
const { countChars, limitState, nearFrom, wireComposerLimit } = await import(
  "../../chat/static/chat/client/composer-limit.js"
);

test("countChars counts code points of the trimmed body, as Python's len(body.strip())", () => {
  assert.equal(countChars("abc"), 3);
  assert.equal(countChars("  abc \n"), 3);
  // An emoji outside the BMP is two UTF-16 units but one character for the server.
  assert.equal("😀".length, 2);
  assert.equal(countChars("😀"), 1);
  assert.equal(countChars("😀".repeat(2000)), 2000);
  assert.equal(countChars("e\u0301"), 2); // a combining mark is a code point of its own
});

test("the counter shows only near the limit, and says how far over it is", () => {
  assert.equal(nearFrom(4000), 3600);
  assert.deepEqual(limitState(3599, 4000), { show: false, over: false, text: "" });
  assert.deepEqual(limitState(3600, 4000), {
    show: true,
    over: false,
    text: "400 characters left",
  });
  assert.equal(limitState(3999, 4000).text, "1 character left");
  assert.equal(limitState(4000, 4000).text, "0 characters left");
  assert.deepEqual(limitState(4001, 4000), {
    show: true,
    over: true,
    text: "1 character over the limit of 4,000",
  });
  assert.equal(limitState(5234, 4000).text, "1,234 characters over the limit of 4,000");
  // A small limit warns in its last fifth, never from the start.
  assert.equal(nearFrom(200), 180);
  assert.equal(nearFrom(50), 40);
  assert.equal(nearFrom(10), 8);
});

function fakeInput(value) {
  const listeners = {};
  const attributes = new Map();
  return {
    value,
    addEventListener: (type, fn) => {
      listeners[type] = fn;
    },
    type(text) {
      this.value = text;
      listeners.input();
    },
    setAttribute: (name, v) => attributes.set(name, String(v)),
    removeAttribute: (name) => attributes.delete(name),
    getAttribute: (name) => (attributes.has(name) ? attributes.get(name) : null),
  };
}

test("over the limit: refused with a visible alert, the text kept; under it: allowed", () => {
  const input = fakeInput("");
  const output = document.createElement("p");
  const limit = wireComposerLimit({ input, output, max: 10 });
  assert.equal(output.hidden, true);
  input.type("😀".repeat(9));
  assert.equal(output.hidden, false);
  assert.equal(output.textContent, "1 character left");
  assert.equal(limit.allows(), true);

  input.type("😀".repeat(12));
  assert.equal(output.textContent, "2 characters over the limit of 10");
  assert.equal(input.getAttribute("aria-invalid"), "true");
  assert.equal(limit.allows(), false);
  assert.equal(input.value, "😀".repeat(12));
  const alert = output.children[0];
  assert.equal(alert.getAttribute("role"), "alert");
  assert.match(alert.textContent, /^Not sent: the message is 12 characters long, 10 at most\./);

  input.type("short");
  assert.equal(output.hidden, true);
  assert.equal(input.getAttribute("aria-invalid"), null);
  assert.equal(limit.allows(), true);
});
