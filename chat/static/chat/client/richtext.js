/**
 * Message bodies as the server rendered them: the one place where HTML enters the page.
 *
 * Django renders each message's Markdown once, when it is stored or edited (chat/markdown.py:
 * CommonMark without raw HTML, then the nh3 allowlist), and every message carries the result as
 * `html` beside its source `body` (docs/protocol.md). The server-rendered page and live frames
 * therefore show the same thing. This module inserts only that string, never HTML built here
 * from message data, and keeps a second line of defence of its own:
 *
 * - the string becomes DOM through a Trusted Types policy (`chat-html`, the only policy the room
 *   page's CSP admits, with `require-trusted-types-for 'script'`: no other code on the page can
 *   hand a string to an HTML sink) and is parsed into an inert `<template>` (nothing in it loads
 *   or runs);
 * - the parsed tree is cut to the server's allowlist (tags, attributes, http/https/mailto links)
 *   before it is attached, so a fault upstream still cannot put script, handlers, images or
 *   `javascript:` links in a reader's page.
 *
 * The copy button of a code block is added here (not taken from message HTML), as a real
 * `<button>`, so it is reachable and usable by keyboard; the block itself is focusable so it
 * can be scrolled sideways without a mouse.
 */

/** The elements a body may hold (the server's `chat.markdown.ALLOWED_TAGS`). */
const TAGS = new Set(
  ["P", "BR", "STRONG", "EM", "S", "CODE", "PRE", "BLOCKQUOTE", "UL", "OL", "LI", "A", "SPAN"],
);
/** Attributes kept per element; every other attribute goes. */
const ATTRIBUTES = {
  A: new Set(["href", "title"]),
  OL: new Set(["start"]),
  CODE: new Set(["class"]),
  SPAN: new Set(["class", "data-mention"]),
};
/** Elements dropped with their content (the rest of what is not allowed leaves its text). */
const DROPPED = new Set(["SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT", "IFRAME", "OBJECT"]);
const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);
const LINK_REL = "nofollow noopener noreferrer ugc";
const LANGUAGE_CLASS_RE = /^language-[A-Za-z0-9_+#.-]{1,40}$/;
const START_RE = /^[0-9]{1,9}$/;
/** A mention's name (the server's `chat.markdown` mention rule). */
const MENTION_NAME_RE = /^[\p{L}\p{N}_.+-]{1,150}$/u;
/** How long the copy button says "Copied". */
const COPIED_MS = 2000;

let policy = null;
if (typeof globalThis.trustedTypes?.createPolicy === "function") {
  // The policy only marks the string as the server's rendering; `cleanTree` below is what
  // checks it, on an inert copy, before anything is attached to the page.
  policy = globalThis.trustedTypes.createPolicy("chat-html", { createHTML: (html) => html });
}

/**
 * The Markdown source of a shown message (what its edit box starts from), or "".
 * @param {HTMLElement} li a `li.message`.
 * @returns {string}
 */
export function bodySource(li) {
  const body = li.querySelector(":scope > .body");
  if (!body) return "";
  return body.dataset.body ?? body.textContent;
}

/**
 * Replaces the children of `target` with the server-rendered `html`, cut to the allowlist, with
 * copy buttons on code blocks. The only HTML sink of the client.
 * @param {HTMLElement} target
 * @param {string} html
 */
export function insertHtml(target, html) {
  const template = document.createElement("template");
  template.innerHTML = policy ? policy.createHTML(html) : html;
  cleanTree(template.content);
  target.replaceChildren(template.content);
  addCodeTools(target);
}

/**
 * Prepares a body the server rendered into the page: the same allowlist and copy buttons as a
 * live message gets, so a reload and a live message end up the same.
 * @param {HTMLElement} target
 */
export function adoptBody(target) {
  cleanTree(target);
  addCodeTools(target);
}

/**
 * Removes from `root` every element and attribute outside the allowlist: an unknown element is
 * replaced by its text (script, style and the like by nothing), links keep only an allowed
 * scheme and always get `rel` and `target`.
 * @param {ParentNode} root
 */
export function cleanTree(root) {
  for (const el of [...root.querySelectorAll("*")]) {
    if (!root.contains(el)) continue; // inside an element already replaced
    const tag = el.tagName.toUpperCase();
    if (!TAGS.has(tag)) {
      el.replaceWith(DROPPED.has(tag) ? "" : document.createTextNode(el.textContent));
      continue;
    }
    const allowed = ATTRIBUTES[tag];
    for (const { name, value } of [...el.attributes]) {
      if (!allowed?.has(name) || !attributeAllowed(tag, name, value)) el.removeAttribute(name);
    }
    if (tag === "A") {
      el.setAttribute("rel", LINK_REL);
      el.setAttribute("target", "_blank");
    }
  }
}

function attributeAllowed(tag, name, value) {
  if (tag === "A" && name === "href") return linkAllowed(value);
  if (tag === "CODE" && name === "class") return LANGUAGE_CLASS_RE.test(value);
  if (tag === "OL" && name === "start") return START_RE.test(value);
  if (tag === "SPAN" && name === "class") return value === "mention";
  if (tag === "SPAN" && name === "data-mention") return MENTION_NAME_RE.test(value);
  return true;
}

/**
 * True when `href` is an absolute http, https or mailto URL (as the browser parses it).
 * @param {string} href
 * @returns {boolean}
 */
export function linkAllowed(href) {
  try {
    return LINK_PROTOCOLS.has(new URL(href).protocol);
  } catch {
    return false; // relative or unparsable
  }
}

/** Gives each code block of `target` a copy button and keyboard scrolling (once). */
function addCodeTools(target) {
  for (const pre of target.querySelectorAll("pre")) {
    if (pre.parentElement?.classList.contains("code-block")) continue;
    const block = document.createElement("div");
    block.className = "code-block";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-code";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy code");
    button.addEventListener("click", () => copyCode(pre, button));
    // A focusable scroll container: a keyboard reader can scroll a long line sideways.
    pre.tabIndex = 0;
    pre.replaceWith(block);
    block.append(button, pre);
  }
}

async function copyCode(pre, button) {
  const text = (pre.querySelector("code") ?? pre).textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed";
  }
  clearTimeout(button.copiedTimer);
  button.copiedTimer = setTimeout(() => {
    button.textContent = "Copy";
  }, COPIED_MS);
}
