/**
 * DOM rendering of the message list, presence and typing indicator.
 *
 * Message data reaches the page through textContent / text nodes (names, the source of a body not
 * stored yet, with links built as elements around text nodes), except a stored body's `html`, the
 * server's sanitized rendering, which only `showBody` inserts, through richtext.js.
 * Names and bodies are bidi-isolated (`<bdi>`, `dir="auto"`, client.css `unicode-bidi: isolate`;
 * UAX #9 section 2.7), so a right-to-left override inside them cannot reorder the text around.
 * Guests carry a visible "guest" badge: a guest's name proves nothing about who it is.
 * Messages and presence start with the person's avatar (./avatar.js); a message's attachments
 * follow its body (./attachment-view.js).
 */

import { buildAttachments } from "./attachment-view.js";
import { buildAvatar } from "./avatar.js";
import { insertHtml } from "./richtext.js";

const LINK_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
// Punctuation that usually ends a sentence rather than a URL ("see https://x.org.").
const TRAILING_PUNCT_RE = /[.,;:!?)\]}'"]+$/;

// hour "numeric": "9:05 AM" in 12-hour locales (no leading zero), the locale's own form in
// 24-hour ones ("09:05" or "9:05").
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

/**
 * Local-time label for an ISO timestamp: the time of day (the list's day dividers,
 * daygroups.js, say which day), and the full date and time for its title.
 * @param {string} iso
 * @returns {{short: string, full: string}|null}
 */
export function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) {
    return null;
  }
  return { short: timeFormat.format(when), full: fullFormat.format(when) };
}

/** `@name` as Django records it (chat/attention.py, MENTION_RE): not after a word character or @. */
const MENTION_RE = /(?<![\p{L}\p{N}_@])@([\p{L}\p{N}_.+-]{1,150})/gu;

/**
 * Appends `text`, each `@name` in it as `<span class="mention" data-mention="name">` (the
 * name lower-cased, a trailing dot left outside): mentions.js marks the reader's own.
 * @param {HTMLElement} target
 * @param {string} text
 */
export function appendText(target, text) {
  let last = 0;
  for (const match of text.matchAll(MENTION_RE)) {
    const name = match[1].replace(/\.+$/, "");
    if (!name) continue;
    if (match.index > last) target.append(document.createTextNode(text.slice(last, match.index)));
    const span = document.createElement("span");
    span.className = "mention";
    span.dataset.mention = name.toLowerCase();
    span.textContent = `@${name}`;
    target.append(span);
    last = match.index + 1 + name.length;
  }
  if (last < text.length) target.append(document.createTextNode(text.slice(last)));
}

/**
 * Fills `target` with `text`, turning http(s) URLs into safe links and `@name` into mentions.
 * @param {HTMLElement} target
 * @param {string} text
 */
export function renderBody(target, text) {
  target.replaceChildren();
  let last = 0;
  for (const match of text.matchAll(LINK_RE)) {
    let url = match[0];
    const trailing = url.match(TRAILING_PUNCT_RE);
    if (trailing) {
      url = url.slice(0, url.length - trailing[0].length);
    }
    let parsed = null;
    try {
      parsed = new URL(url);
    } catch {
      parsed = null;
    }
    if (!parsed || (parsed.protocol !== "http:" && parsed.protocol !== "https:")) {
      continue;
    }
    if (match.index > last) {
      appendText(target, text.slice(last, match.index));
    }
    const a = document.createElement("a");
    a.href = parsed.href;
    a.rel = "noopener noreferrer nofollow";
    a.target = "_blank";
    a.append(document.createTextNode(url));
    target.append(a);
    last = match.index + url.length;
  }
  if (last < text.length) {
    appendText(target, text.slice(last));
  }
}

/**
 * Shows a message's body in its `.body` element: the server's rendering (`html`) when the
 * message carries one, else the source as text with http(s) links (the reader's own message
 * before it is stored, or a message stored without a rendering). Keeps the source in
 * `data-body` (the edit box starts from it; richtext.js `bodySource`).
 * @param {HTMLElement} target
 * @param {{body: string, html?: string}} msg
 */
export function showBody(target, msg) {
  target.dataset.body = msg.body;
  const rendered = typeof msg.html === "string" && msg.html !== "";
  target.classList.toggle("plain", !rendered);
  if (rendered) insertHtml(target, msg.html);
  else renderBody(target, msg.body);
}

/**
 * The author's name, isolated from the text around it, as a `<bdi class="author">`.
 * @param {string} name
 * @returns {HTMLElement}
 */
export function buildName(name) {
  const author = document.createElement("bdi");
  author.className = "author";
  author.dir = "auto";
  author.textContent = name;
  return author;
}

/** @returns {HTMLElement} the visible "guest" badge shown after a guest's name. */
export function buildGuestBadge() {
  const badge = document.createElement("span");
  badge.className = "guest-badge";
  badge.textContent = "guest";
  badge.title = "A guest: not a registered account";
  return badge;
}

/**
 * Builds the `<li class="message">` for a message (same shape as the server-rendered items).
 * `data-author` is the author's stable id (`user.id`): "own message" is decided by it.
 * @param {{id?: number, nonce?: string, user: {id?: string, name: string, guest?: boolean},
 *   body: string, html?: string, sent_at?: string, edited_at?: string|null, version?: number,
 *   attachments?: object[]}} msg
 * @returns {HTMLLIElement}
 */
export function buildMessage(msg) {
  const li = document.createElement("li");
  li.className = "message";
  if (msg.id != null) {
    li.dataset.id = String(msg.id);
  }
  if (msg.nonce) {
    li.dataset.nonce = msg.nonce;
  }
  li.dataset.author = msg.user.id || "";
  const parts = [buildAvatar(msg.user.id || "", msg.user.name), buildName(msg.user.name)];
  if (msg.user.guest) {
    li.classList.add("by-guest");
    parts.push(document.createTextNode(" "), buildGuestBadge());
  }
  const time = document.createElement("time");
  setTime(time, msg.sent_at || new Date().toISOString());
  if (msg.sent_at) li.dataset.sentAt = msg.sent_at;
  li.dataset.version = String(msg.version || 0);
  // A <div>: a rendered body may hold paragraphs, lists, quotes and code blocks.
  const body = document.createElement("div");
  body.className = "body";
  body.dir = "auto";
  showBody(body, msg);
  li.append(...parts, document.createTextNode(" "), time);
  if (msg.edited_at) li.append(" ", buildEditedMarker(msg.edited_at));
  li.append(body);
  // Under the body (attachment-view.js), as the server renders them.
  const attachments = buildAttachments(msg.attachments);
  if (attachments) li.append(attachments);
  return li;
}

/**
 * The "(edited)" marker shown after a message's time (the server renders the same span).
 * @param {string} [editedAt] when it was last edited (ISO), shown as its title.
 * @returns {HTMLElement}
 */
export function buildEditedMarker(editedAt) {
  const marker = document.createElement("span");
  marker.className = "edited";
  marker.textContent = "(edited)";
  const label = editedAt ? formatTime(editedAt) : null;
  if (label) marker.title = `Edited ${label.full}`;
  return marker;
}

/**
 * @param {HTMLTimeElement} time
 * @param {string} iso
 */
export function setTime(time, iso) {
  const label = formatTime(iso);
  time.dateTime = iso;
  if (label) {
    time.textContent = label.short;
    time.title = label.full;
    // Focusable, so the full date is reachable without a mouse (shown on focus, client.css).
    time.tabIndex = 0;
  }
}

/**
 * Replaces the children of the `#presence` list with one item per person.
 * @param {HTMLElement} list
 * @param {{id: string, name: string, guest: boolean}[]} people one entry per stable id.
 * @param {string} meId the reader's own stable id (`u:<pk>` or `g:<hex>`).
 */
export function renderPresence(list, people, meId) {
  const seen = new Set();
  const unique = people.filter((p) => p && !seen.has(p.id) && seen.add(p.id));
  unique.sort((a, b) => a.name.localeCompare(b.name) || (a.id < b.id ? -1 : 1));
  const items = unique.map((person) => {
    const li = document.createElement("li");
    li.dataset.id = person.id;
    li.append(buildAvatar(person.id, person.name), buildName(person.name));
    if (person.guest) {
      li.classList.add("guest");
      li.append(document.createTextNode(" "), buildGuestBadge());
    }
    if (person.id === meId) {
      li.classList.add("me");
      const you = document.createElement("span");
      you.className = "visually-hidden";
      you.textContent = " (you)";
      li.append(you);
    }
    return li;
  });
  list.replaceChildren(...items);
  list.dataset.count = String(items.length);
}

/**
 * The typing sentence as nodes, each name in its own `<bdi dir="auto">` (bidi-isolated).
 * @param {string[]} names
 * @returns {(Node|string)[]}
 */
export function typingNodes(names) {
  const bdi = (name) => {
    const el = document.createElement("bdi");
    el.dir = "auto";
    el.textContent = name;
    return el;
  };
  if (names.length === 0) return [];
  if (names.length === 1) return [bdi(names[0]), " is typing…"];
  if (names.length === 2) return [bdi(names[0]), " and ", bdi(names[1]), " are typing…"];
  return [typingText(names)];
}

/**
 * Sentence for the typing indicator, or "" when nobody types.
 * @param {string[]} names
 * @returns {string}
 */
export function typingText(names) {
  if (names.length === 0) return "";
  if (names.length === 1) return `${names[0]} is typing…`;
  if (names.length === 2) return `${names[0]} and ${names[1]} are typing…`;
  return "Several people are typing…";
}
