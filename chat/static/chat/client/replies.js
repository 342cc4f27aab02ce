/**
 * Replies (docs/protocol.md, `reply_to`): the quote a reply shows of the message it answers,
 * the composer's "Replying to …" state, and jumping from a quote to its message.
 *
 * The quote is drawn exactly as the room page renders it on the server
 * (chat/templatetags/chat_messages.py `reply_quote`): a button "Reply to <name>: <snippet>"
 * before the body, or, when the parent was deleted, a plain note that says so. Django cuts the
 * snippet; the client never builds one from a body (except the provisional quote of a reply not
 * stored yet). When the parent is edited or deleted, the `edited` / `deleted` frame changes
 * every quote of it on the page (with the event's `quote` when Django sent one).
 *
 * Clicking a quote (or Enter on it) scrolls to the parent and marks it (`.reply-target`,
 * focused). A parent older than the page is loaded first: pages before the oldest message shown
 * (so the list stays without gaps) up to `MAX_PAGES`; one further back opens the room around it
 * (`?around=<id>`, the history API's `around`, as a search result does).
 */

import { fetchOlder } from "./api.js";
import { bodySource } from "./richtext.js";

/** The text of the quote of a deleted parent (the server renders the same). */
export const DELETED_QUOTE_TEXT = "Reply to a deleted message";
/** Pages of older history loaded to reach a parent before opening the room around it. */
export const MAX_PAGES = 5;
/** Messages per page of those (the public history API's maximum). */
const PAGE = 100;
/** How many characters of the parent a provisional quote (reply not stored yet) shows. */
const PROVISIONAL_CHARS = 100;

/** Links this module's stylesheet once (kept apart from client.css). */
function ensureStylesheet() {
  if (document.querySelector('link[rel="stylesheet"][href*="/client/replies."]')) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("./replies.css", import.meta.url).href;
  document.head.append(link);
}

/**
 * The quote element for `replyTo` (the protocol's `reply_to`, not null).
 * @param {{id: number, author: {name: string}|null, snippet: string, deleted: boolean}} replyTo
 * @returns {HTMLElement}
 */
export function buildQuote(replyTo) {
  if (replyTo.deleted || !replyTo.author) {
    const note = document.createElement("div");
    note.className = "reply-quote deleted";
    note.dataset.replyTo = String(replyTo.id);
    note.textContent = DELETED_QUOTE_TEXT;
    return note;
  }
  const button = document.createElement("button");
  button.type = "button";
  button.className = "reply-quote";
  button.dataset.replyTo = String(replyTo.id);
  button.title = "Show the message";
  const hidden = document.createElement("span");
  hidden.className = "visually-hidden";
  hidden.textContent = "Reply to ";
  const author = document.createElement("bdi");
  author.className = "reply-author";
  author.dir = "auto";
  author.textContent = replyTo.author.name;
  const snippet = document.createElement("span");
  snippet.className = "reply-snippet";
  snippet.dir = "auto";
  snippet.textContent = replyTo.snippet;
  button.append(hidden, author, ": ", snippet);
  return button;
}

/**
 * Puts the quote of `replyTo` in `li` (before the body), replacing the one shown; null removes
 * it. A parent the page knows as deleted (`gone`) is quoted as deleted whatever a stale page
 * of history says.
 * @param {HTMLLIElement} li
 * @param {object|null} replyTo
 * @param {Set<number>} [gone] ids of messages deleted while the page was open.
 */
export function showQuote(li, replyTo, gone) {
  const old = li.querySelector(":scope > .reply-quote");
  if (!replyTo || !Number.isSafeInteger(replyTo.id)) {
    old?.remove();
    return;
  }
  const quote = gone?.has(replyTo.id) ? { id: replyTo.id, author: null, snippet: "", deleted: true } : replyTo;
  const fresh = buildQuote(quote);
  if (old) {
    if (old.outerHTML === fresh.outerHTML) return;
    old.replaceWith(fresh);
  } else {
    const body = li.querySelector(":scope > .body");
    if (body) body.before(fresh);
    else li.append(fresh);
  }
}

/**
 * Wires replies into the room page.
 * @param {{list: HTMLOListElement, timeline: import("./timeline.js").Timeline,
 *   form: HTMLFormElement, input: HTMLTextAreaElement, messagesUrl: string,
 *   navigate?: (url: string) => void}} options
 * @returns {{start: (li: HTMLLIElement) => void, take: () => {id: number, name: string,
 *   snippet: string}|null, decoratePending: (nonce: string, target: object) => void,
 *   parentChanged: (frame: object) => void, jump: (id: number) => Promise<boolean>}}
 */
export function wireReplies({ list, timeline, form, input, messagesUrl, navigate }) {
  ensureStylesheet();
  timeline.onReply = (li, replyTo) => showQuote(li, replyTo, timeline.gone);

  // The composer's "Replying to <name>: <snippet>" bar, with its cancel button.
  const bar = document.createElement("div");
  bar.className = "reply-bar";
  bar.id = "reply-bar";
  bar.hidden = true;
  const text = document.createElement("span");
  text.className = "reply-bar-text";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "reply-cancel";
  cancel.textContent = "✕";
  cancel.setAttribute("aria-label", "Cancel the reply (Escape)");
  bar.append(text, cancel);
  form.prepend(bar);

  /** @type {{id: number, name: string, snippet: string}|null} */
  let target = null;

  const clear = () => {
    target = null;
    bar.hidden = true;
    text.replaceChildren();
    input.removeAttribute("aria-describedby");
  };

  const start = (li) => {
    const id = Number(li.dataset.id);
    if (!Number.isSafeInteger(id)) return;
    const name = li.querySelector(":scope > .author")?.textContent || "";
    target = { id, name, snippet: bodySource(li) };
    const who = document.createElement("bdi");
    who.dir = "auto";
    who.textContent = name;
    const what = document.createElement("span");
    what.className = "reply-bar-snippet";
    what.dir = "auto";
    what.textContent = target.snippet;
    text.replaceChildren("Replying to ", who, ": ", what);
    bar.hidden = false;
    input.setAttribute("aria-describedby", bar.id);
    input.focus();
  };

  cancel.addEventListener("click", () => {
    clear();
    input.focus();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && target && !event.isComposing) {
      event.preventDefault();
      clear();
    }
  });

  /** The reply being written (and forget it: the composer sends it now), or null. */
  const take = () => {
    const taken = target;
    clear();
    return taken;
  };

  /** Shows a provisional quote on the reader's reply until the stored one replaces it. */
  const decoratePending = (nonce, taken) => {
    const li = timeline.pendingElement(nonce);
    if (!li || !taken) return;
    const chars = Array.from(taken.snippet);
    const snippet =
      chars.length > PROVISIONAL_CHARS ? `${chars.slice(0, PROVISIONAL_CHARS).join("")}…` : taken.snippet;
    showQuote(li, { id: taken.id, author: { name: taken.name }, snippet, deleted: false }, timeline.gone);
  };

  /** An `edited` or `deleted` frame: every quote of that message shows it as it is now. */
  const parentChanged = (frame) => {
    if (!Number.isSafeInteger(frame?.id)) return;
    let quote = frame.quote && frame.quote.id === frame.id ? frame.quote : null;
    if (frame.type === "deleted") quote = { id: frame.id, author: null, snippet: "", deleted: true };
    if (!quote) return;
    for (const li of list.querySelectorAll(`:scope > li.message > .reply-quote[data-reply-to="${frame.id}"]`)) {
      showQuote(li.parentElement, quote, timeline.gone);
    }
    if (target?.id === frame.id && frame.type === "deleted") clear();
  };

  const mark = (li) => {
    for (const old of list.querySelectorAll(":scope > li.reply-target")) {
      old.classList.remove("reply-target");
      old.removeAttribute("aria-current");
    }
    li.classList.add("reply-target");
    li.setAttribute("aria-current", "true");
    li.tabIndex = -1;
    li.scrollIntoView({ block: "center" });
    li.focus({ preventScroll: true });
  };

  /** Scrolls to message `id` (loading older pages when needed); false when it is not shown. */
  const jump = async (id) => {
    for (let pages = 0; ; pages += 1) {
      const li = timeline.byId.get(id);
      if (li) {
        mark(li);
        return true;
      }
      const lowest = timeline.lowestId();
      if (timeline.gone.has(id) || (lowest !== null && lowest < id)) return false;
      if (pages >= MAX_PAGES || lowest === null || !messagesUrl) break;
      let page;
      try {
        page = await fetchOlder(messagesUrl, lowest, PAGE);
      } catch {
        return false;
      }
      const messages = page?.messages || [];
      timeline.prependOlder(messages);
      if (!messages.length) return false;
    }
    // Far back: open the room around the message (the server renders the page around it).
    const url = new URL(window.location.href);
    url.searchParams.set("around", String(id));
    (navigate || ((to) => window.location.assign(to)))(url.toString());
    return false;
  };

  list.addEventListener("click", (event) => {
    const quote = event.target.closest("button.reply-quote[data-reply-to]");
    if (!quote || !list.contains(quote)) return;
    const id = Number(quote.dataset.replyTo);
    if (Number.isSafeInteger(id)) jump(id);
  });

  return { start, take, decoratePending, parentChanged, jump };
}
