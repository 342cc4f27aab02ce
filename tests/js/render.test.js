/**
 * Unit tests for chat/static/chat/client/render.js (run by `node --test tests/js/`, from `make test`).
 *
 * Rendering runs against a small fake DOM (tests/js/fake-dom.js) whose markup-parsing entry
 * points throw. What they pin: message data stays text (names, link texts, bodies without the
 * server's `html`; inserting that is richtext.js's, tested in Chromium), only http(s)
 * URLs become links, names and bodies are bidi-isolated, guests carry a visible badge, and "own"
 * and "me" are decided by the stable id, never by the display name.
 */

import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { FakeText, installFakeDocument } from "./fake-dom.js";

let doc = installFakeDocument();
const { buildMessage, renderBody, renderPresence, typingNodes, typingText } = await import(
  "../../chat/static/chat/client/render.js"
);

beforeEach(() => {
  doc = installFakeDocument();
});

const HOSTILE = [
  '<img src=x onerror="alert(1)">',
  "<script>alert(document.cookie)</script>",
  "&lt;b&gt; &amp; <b>bold</b>",
  '"><svg/onload=alert(1)>',
];

function message(overrides = {}) {
  return {
    id: 7,
    nonce: "n-7",
    user: { id: "u:1", name: "alice", guest: false },
    body: "hello",
    sent_at: "2026-11-22T09:14:03.512Z",
    ...overrides,
  };
}

/** Every text node under `node`, in order. */
function texts(node) {
  if (node instanceof FakeText) return [node.data];
  return node.childNodes.flatMap(texts);
}

for (const body of HOSTILE) {
  test(`a body that looks like markup stays text: ${body}`, () => {
    const li = buildMessage(message({ body }));
    const p = li.all("div")[0];
    assert.equal(p.className, "body plain");
    assert.equal(p.children.length, 0, "no element was made from the body");
    assert.deepEqual(texts(p), [body]);
    assert.equal(p.dataset.body, body, "the source is kept for the edit box");
    assert.ok(!doc.created.includes("img") && !doc.created.includes("script"));
  });

  test(`a name that looks like markup stays text: ${body}`, () => {
    const li = buildMessage(message({ user: { id: "g:1", name: body, guest: true } }));
    const author = li.all("bdi")[0];
    assert.equal(author.children.length, 0);
    assert.equal(author.textContent, body);
  });
}

test("http(s) URLs become links around a text node; other schemes stay text", () => {
  const p = doc.createElement("p");
  renderBody(p, "see https://example.org/a?b=1&c=<2>. or javascript:alert(1) and http://x.test");
  const links = p.all("a");
  assert.deepEqual(
    links.map((a) => a.href),
    ["https://example.org/a?b=1&c=", "http://x.test/"],
  );
  for (const a of links) {
    assert.equal(a.rel, "noopener noreferrer nofollow");
    assert.equal(a.target, "_blank");
    assert.ok(a.childNodes.every((node) => node instanceof FakeText));
  }
  // The sentence's full stop is not part of the link, and nothing of the text is lost.
  assert.equal(links[0].textContent, "https://example.org/a?b=1&c=");
  assert.equal(
    p.textContent,
    "see https://example.org/a?b=1&c=<2>. or javascript:alert(1) and http://x.test",
  );
});

test("a body without the server's rendering (not stored yet) is text; never parsed", () => {
  for (const html of [undefined, ""]) {
    const li = buildMessage(message({ body: "**not yet** <b>x</b>", html }));
    const body = li.all("div")[0];
    assert.ok(body.classList.contains("plain"));
    assert.deepEqual(texts(body), ["**not yet** <b>x</b>"]);
  }
});

test("rendering a body again replaces what was there", () => {
  const p = doc.createElement("p");
  renderBody(p, "first https://a.test");
  renderBody(p, "second");
  assert.deepEqual(texts(p), ["second"]);
});

test("names and bodies are bidi-isolated so they cannot reorder the text around them", () => {
  const name = "\u202Eevil\u202C";
  const body = "\u2067مرحبا\u2069 then \u202Etext";
  const li = buildMessage(message({ user: { id: "u:2", name, guest: false }, body }));
  const author = li.all("bdi")[0];
  assert.equal(author.className, "author");
  assert.equal(author.dir, "auto");
  assert.equal(author.textContent, name, "the override stays inside the isolate");
  const p = li.all("div")[0];
  assert.equal(p.dir, "auto");
  assert.equal(p.textContent, body);
});

test("typing names are each isolated; three or more become one sentence", () => {
  const nodes = typingNodes(["\u202Eab", "cd"]);
  const isolated = nodes.filter((node) => typeof node !== "string");
  assert.deepEqual(
    isolated.map((el) => [el.tagName, el.dir, el.textContent]),
    [
      ["BDI", "auto", "\u202Eab"],
      ["BDI", "auto", "cd"],
    ],
  );
  assert.deepEqual(nodes.filter((node) => typeof node === "string"), [" and ", " are typing…"]);
  assert.deepEqual(typingNodes([]), []);
  assert.deepEqual(typingNodes(["a", "b", "c"]), ["Several people are typing…"]);
  assert.equal(typingText(["a"]), "a is typing…");
});

test("a guest's message carries the visible guest badge; a user's does not", () => {
  const guest = buildMessage(message({ user: { id: "g:0123456789abcdef", name: "x", guest: true } }));
  assert.ok(guest.classList.contains("by-guest"));
  const badges = guest.all("span").filter((el) => el.className === "guest-badge");
  assert.equal(badges.length, 1);
  assert.equal(badges[0].textContent, "guest");
  assert.ok(badges[0].title);
  const user = buildMessage(message());
  assert.ok(!user.classList.contains("by-guest"));
  assert.equal(user.all("span").filter((el) => el.className === "guest-badge").length, 0);
});

test("a message and a presence entry start with the author's avatar, hidden from readers", () => {
  const li = buildMessage(message({ user: { id: "u:9", name: "Bob Builder", guest: false } }));
  const [avatar] = li.all("span").filter((el) => el.className.startsWith("avatar "));
  assert.equal(li.children[0], avatar);
  assert.equal(avatar.textContent, "BB");
  assert.match(avatar.className, /^avatar avatar-c([0-9]|1[01])$/);
  assert.equal(avatar.getAttribute("aria-hidden"), "true");
  const list = doc.createElement("ul");
  renderPresence(list, [{ id: "u:9", name: "Bob Builder", guest: false }], "u:1");
  const [entry] = list.children;
  assert.equal(entry.children[0].className, avatar.className);
  assert.equal(entry.children[0].textContent, "BB");
});

test("a message carries its id, nonce and the author's stable id, not only a name", () => {
  const li = buildMessage(message({ user: { id: "u:9", name: "alice", guest: false } }));
  assert.deepEqual(
    { ...li.dataset },
    { id: "7", nonce: "n-7", author: "u:9", sentAt: li.dataset.sentAt, version: "0" },
  );
  assert.equal(li.className, "message");
  const pending = buildMessage({ user: { name: "alice" }, body: "typed" });
  assert.deepEqual({ ...pending.dataset }, { author: "", version: "0" });
  assert.equal(pending.all("time").length, 1);
});

test("an edited message shows its version and the (edited) marker; an unedited one neither", () => {
  const plain = buildMessage(message());
  assert.equal(plain.all("span").filter((el) => el.className === "edited").length, 0);
  const edited = buildMessage(
    message({ body: "fixed", version: 3, edited_at: "2026-11-22T09:15:00.000Z" }),
  );
  assert.equal(edited.dataset.version, "3");
  const [marker] = edited.all("span").filter((el) => el.className === "edited");
  assert.equal(marker.textContent, "(edited)");
});

test("presence: one item per stable id, 'me' by id even when another has my name", () => {
  const list = doc.createElement("ul");
  const people = [
    { id: "g:bbbbbbbbbbbbbbbb", name: "alice", guest: true },
    { id: "u:1", name: "alice", guest: false },
    { id: "u:1", name: "alice", guest: false },
    { id: "u:2", name: "zed <b>", guest: false },
    null,
  ];
  renderPresence(list, people, "u:1");
  assert.equal(list.dataset.count, "3");
  const items = list.children;
  // By name, then by id for equal names.
  assert.deepEqual(
    items.map((li) => li.dataset.id),
    ["g:bbbbbbbbbbbbbbbb", "u:1", "u:2"],
  );
  const me = items.filter((li) => li.classList.contains("me"));
  assert.deepEqual(
    me.map((li) => li.dataset.id),
    ["u:1"],
  );
  assert.ok(me[0].textContent.endsWith(" (you)"));
  const guest = items.find((li) => li.dataset.id.startsWith("g:"));
  assert.ok(guest.classList.contains("guest") && !guest.classList.contains("me"));
  assert.ok(guest.all("span").some((el) => el.className === "guest-badge"));
  const bob = items.find((li) => li.dataset.id === "u:2");
  assert.equal(bob.all("bdi")[0].textContent, "zed <b>");
  assert.equal(bob.all("bdi")[0].children.length, 0);
});

test("presence of someone else under my name is not me", () => {
  const list = doc.createElement("ul");
  renderPresence(list, [{ id: "u:5", name: "alice", guest: false }], "u:1");
  assert.equal(list.children[0].classList.contains("me"), false);
  renderPresence(list, [{ id: "u:5", name: "alice", guest: false }], "");
  assert.equal(list.children[0].classList.contains("me"), false);
});
