/**
 * DOM rendering of the message list, presence and typing indicator.
 *
 * Message data only ever reaches the page through textContent / text nodes: bodies are plain text
 * (docs/protocol.md), and links are built as elements around text nodes, never from HTML strings.
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

/**
 * Fills `target` with `text`, turning http(s) URLs into safe links.
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
      target.append(document.createTextNode(text.slice(last, match.index)));
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
    target.append(document.createTextNode(text.slice(last)));
  }
}

/**
 * Builds the `<li class="message">` for a message (same shape as the server-rendered items).
 * @param {{id?: number, nonce?: string, user: {name: string}, body: string, sent_at?: string}} msg
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
  const author = document.createElement("span");
  author.className = "author";
  author.textContent = msg.user.name;
  const time = document.createElement("time");
  setTime(time, msg.sent_at || new Date().toISOString());
  const body = document.createElement("p");
  body.className = "body";
  renderBody(body, msg.body);
  li.append(author, document.createTextNode(" "), time, body);
  return li;
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
  }
}

/**
 * Replaces the children of the `#presence` list with one item per name.
 * @param {HTMLElement} list
 * @param {string[]} names
 * @param {string} me the reader's own display name.
 */
export function renderPresence(list, names, me) {
  const items = [...new Set(names)].sort((a, b) => a.localeCompare(b)).map((name) => {
    const li = document.createElement("li");
    li.textContent = name;
    if (name === me) {
      li.className = "me";
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
