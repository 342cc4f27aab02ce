/**
 * DOM rendering of the message list, presence and typing indicator.
 *
 * Message data only ever reaches the page through textContent / text nodes: bodies are plain text
 * (docs/protocol.md), and links are built as elements around text nodes, never from HTML strings.
 * Names and bodies are bidi-isolated (`<bdi>`, `dir="auto"`, client.css `unicode-bidi: isolate`;
 * UAX #9 section 2.7), so a right-to-left override inside them cannot reorder the text around.
 * Guests carry a visible "guest" badge: a guest's name proves nothing about who it is.
 */

const LINK_RE = /\bhttps?:\/\/[^\s<>"']+/gi;
// Punctuation that usually ends a sentence rather than a URL ("see https://x.org.").
const TRAILING_PUNCT_RE = /[.,;:!?)\]}'"]+$/;

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "short",
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });

/**
 * Local-time label for an ISO timestamp: the time alone today, date and time otherwise.
 * @param {string} iso
 * @returns {{short: string, full: string}|null}
 */
export function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) {
    return null;
  }
  const today = new Date().toDateString() === when.toDateString();
  return {
    short: (today ? timeFormat : dateTimeFormat).format(when),
    full: fullFormat.format(when),
  };
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
 *   body: string, sent_at?: string, edited_at?: string|null, version?: number}} msg
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
  const parts = [buildName(msg.user.name)];
  if (msg.user.guest) {
    li.classList.add("by-guest");
    parts.push(document.createTextNode(" "), buildGuestBadge());
  }
  const time = document.createElement("time");
  setTime(time, msg.sent_at || new Date().toISOString());
  if (msg.sent_at) li.dataset.sentAt = msg.sent_at;
  li.dataset.version = String(msg.version || 0);
  const body = document.createElement("p");
  body.className = "body";
  body.dir = "auto";
  renderBody(body, msg.body);
  li.append(...parts, document.createTextNode(" "), time);
  if (msg.edited_at) li.append(" ", buildEditedMarker(msg.edited_at));
  li.append(body);
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
    li.append(buildName(person.name));
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
