/**
 * The message list: one element per message id, in id order, with the reader's unsent messages
 * (no id yet) kept below the stored ones until the server hands them back with their nonce.
 *
 * Every way a message can arrive (server-rendered HTML, hello history, live frames, long-poll
 * batches, older pages) goes through `upsert`, which is what guarantees "never twice".
 */

import { showAttachments } from "./attachment-view.js";
import { buildAvatar } from "./avatar.js";
import { buildEditedMarker, buildMessage, setTime, showBody } from "./render.js";
import { adoptBody } from "./richtext.js";

/** How long the list stays quiet after older messages went in at the top. */
const QUIET_AFTER_OLDER_MS = 500;

/** Pixels from the bottom that still count as "reading the newest messages". */
const NEAR_BOTTOM_PX = 80;

const FAILURE_TEXT = {
  empty_body: "the message is empty",
  body_too_long: "the message is too long",
  room_archived: "the room is archived",
  unknown_room: "the room no longer exists",
  bad_nonce: "the client sent a bad id",
  bad_frame: "the client sent a bad message",
  rate_limited: "sending too fast",
  busy: "the server is busy",
  store_failed: "the server could not store it",
  unknown_parent: "the message it replies to is not in this room",
  bad_reply_to: "the client named a bad message to reply to",
  bad_attachments: "an attached file is unknown, not yours, or already sent",
};

/** Refusals that a resend can never turn into success: these offer Discard, not Retry. */
const NEVER_SUCCEEDS = new Set([
  "empty_body",
  "body_too_long",
  "bad_body",
  "bad_nonce",
  "bad_frame",
  "room_archived",
  "unknown_room",
  "unknown_parent",
  "bad_reply_to",
  "bad_attachments",
]);

/** Controller for `#message-list`. */
export class Timeline {
  /**
   * @param {HTMLOListElement} list the `#message-list` element.
   * @param {{onRetry: (nonce: string) => void, onDiscard: (nonce: string) => void}} actions
   */
  constructor(list, actions) {
    this.list = list;
    this.actions = actions;
    /** The body limit (`CHAT_MAX_BODY`), handed over by the page as `data-max-body`. */
    this.maxBody = Number(list.dataset.maxBody) || null;
    /** @type {Map<number, HTMLLIElement>} */
    this.byId = new Map();
    /** Ids of deleted messages: never shown again (a page read before the deletion). */
    this.gone = new Set();
    for (const li of list.querySelectorAll(":scope > li.message")) {
      this.adoptServerRendered(li);
    }
    list.addEventListener("click", (event) => this.onClick(event));
    // Pinned to the newest message while the reader is there: a resize (a phone's keyboard, a
    // turned screen, a wrapped header) keeps it in view instead of cutting it off.
    // Only the reader scrolling up unpins it: content that grows below after a scroll to the
    // bottom (times relabelled, message actions and day dividers added, fonts loaded) moves
    // the bottom away without any scrolling up, and must not unpin.
    this.pinned = true;
    this.lastScrollTop = list.scrollTop;
    this.lastBox = `${list.clientWidth}x${list.clientHeight}`;
    list.addEventListener("scroll", () => this.updatePinned());
    const keepPinned = () => {
      if (this.pinned && !this.isAtBottom()) this.scrollToBottom();
    };
    // A resize may move scrollTop up by itself (scroll anchoring while lines unwrap): that is
    // not the reader scrolling, so the pin holds.
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(keepPinned).observe(list);
    }
    if (typeof MutationObserver === "function") {
      // A scroll up not yet reported by a scroll event (a search result's scrollIntoView)
      // unpins it before new content could pull the list back down.
      new MutationObserver(() => {
        this.updatePinned();
        keepPinned();
      }).observe(list, {
        childList: true,
        subtree: true,
        characterData: true,
      });
    }
  }

  /**
   * Unpinned when scrolled up since last seen and not near the bottom; pinned near it. A scroll
   * that comes with a new size of the list's box (the window resized or turned, the header
   * wrapped) is the layout's, not the reader's: the browser fires it before the resize
   * observer, so without this rule a resize could unpin the list on the way.
   */
  updatePinned() {
    const el = this.list;
    const top = el.scrollTop;
    const box = `${el.clientWidth}x${el.clientHeight}`;
    const resized = this.lastBox !== undefined && box !== this.lastBox;
    this.lastBox = box;
    if (resized) {
      if (this.pinned && !this.isAtBottom()) this.scrollToBottom();
      else if (this.isNearBottom()) this.pinned = true;
    } else {
      this.pinned = this.isNearBottom() || (this.pinned && top >= this.lastScrollTop - 1);
    }
    this.lastScrollTop = el.scrollTop;
  }

  /** @returns {boolean} whether the list is scrolled all the way down. */
  isAtBottom() {
    const el = this.list;
    return el.scrollHeight - el.scrollTop - el.clientHeight <= 1;
  }

  /** Takes over a server-rendered item: index it and show its time in the reader's zone. */
  adoptServerRendered(li) {
    const id = Number(li.dataset.id);
    if (!Number.isSafeInteger(id)) {
      return;
    }
    if (this.byId.has(id)) {
      li.remove();
      return;
    }
    this.byId.set(id, li);
    const time = li.querySelector("time[datetime]");
    if (time) {
      setTime(time, time.getAttribute("datetime"));
    }
    // The server put its stored rendering in the page: it gets the same allowlist check and
    // code tools as a live message's, so a reload shows what the live reader saw.
    const body = li.querySelector(".body");
    if (body?.classList.contains("plain")) {
      showBody(body, { body: body.dataset.body ?? body.textContent });
    } else if (body) {
      adoptBody(body);
    }
  }

  /** @returns {number|null} the highest stored id shown (the `since` for resuming). */
  highestId() {
    let best = null;
    for (const id of this.byId.keys()) {
      if (best === null || id > best) best = id;
    }
    return best;
  }

  /** @returns {number|null} the lowest stored id shown (the `before` for older pages). */
  lowestId() {
    let best = null;
    for (const id of this.byId.keys()) {
      if (best === null || id < best) best = id;
    }
    return best;
  }

  /** @returns {boolean} whether the reader is at (or near) the bottom of the list. */
  isNearBottom() {
    const el = this.list;
    return el.scrollHeight - el.scrollTop - el.clientHeight <= NEAR_BOTTOM_PX;
  }

  scrollToBottom() {
    this.list.scrollTop = this.list.scrollHeight;
    this.lastScrollTop = this.list.scrollTop;
    this.pinned = true;
  }

  /**
   * Shows a stored message once: a known id is ignored, a pending element with the same nonce
   * becomes this message, anything else is inserted at its id's place.
   * @param {object} msg a message in the protocol's shape.
   * @returns {boolean} true when the message was not shown before.
   */
  upsert(msg) {
    if (!Number.isSafeInteger(msg.id)) return false;
    if (this.gone.has(msg.id)) {
      if (msg.nonce) this.removePending(msg.nonce);
      return false;
    }
    if (this.byId.has(msg.id)) {
      // Already shown (e.g. an `ack` for a resend of a message stored before a reload): the
      // unsent copy goes, so the message is never shown twice. A newer version (a history page
      // read after an edit) updates the body.
      if (msg.nonce) this.removePending(msg.nonce);
      this.applyEdit(msg);
      this.applyReactions(msg);
      this.applyReply(msg);
      return false;
    }
    let li = msg.nonce ? this.pendingElement(msg.nonce) : null;
    if (li) {
      li.classList.remove("pending", "failed", "retrying");
      delete li.dataset.state;
      li.querySelector(".message-state")?.remove();
      li.dataset.id = String(msg.id);
      const author = li.querySelector(".author");
      if (author) author.textContent = msg.user.name;
      li.querySelector(".avatar")?.replaceWith(buildAvatar(msg.user.id || "", msg.user.name));
      li.dataset.author = msg.user.id || "";
      const time = li.querySelector("time");
      if (time && msg.sent_at) setTime(time, msg.sent_at);
      if (msg.sent_at) li.dataset.sentAt = msg.sent_at;
      li.dataset.version = "0";
      // The typed text becomes the server's rendering of it.
      const body = li.querySelector(".body");
      if (body) showBody(body, msg);
      // The files as stored (the same ones: kept when the ids match, so nothing reloads).
      if (msg.attachments !== undefined) showAttachments(li, msg.attachments);
      this.applyEdit(msg);
    } else {
      li = buildMessage(msg);
    }
    this.byId.set(msg.id, li);
    this.placeById(li, msg.id);
    this.applyReactions(msg);
    this.applyReply(msg);
    return true;
  }

  /**
   * Inserts `li` right after the last stored item with a smaller id (at the top when there is
   * none), so it lands before stored items with larger ids and before unsent items, which always
   * stay below everything stored. Whatever order messages arrive in (catch-up pages after live
   * messages, older pages), the list stays in id order.
   *
   * The scan runs from the bottom: messages mostly arrive newest last, so a page of catch-up or
   * a live message costs a step or two, not a walk over the whole list.
   */
  placeById(li, id) {
    let after = null;
    for (let child = this.list.lastElementChild; child; child = child.previousElementSibling) {
      if (child === li || !child.dataset.id) continue;
      const childId = Number(child.dataset.id);
      if (Number.isSafeInteger(childId) && childId < id) {
        after = child;
        break;
      }
    }
    let before = after ? after.nextElementSibling : this.list.firstElementChild;
    if (before === li) before = li.nextElementSibling;
    if (li.parentNode !== this.list || li.nextElementSibling !== before) {
      this.list.insertBefore(li, before);
    }
  }

  /**
   * Inserts older messages at the top while keeping what the reader looks at in place.
   * @param {object[]} messages
   * @returns {number} how many were new.
   */
  prependOlder(messages) {
    const el = this.list;
    const heightBefore = el.scrollHeight;
    const topBefore = el.scrollTop;
    let added = 0;
    // The list is a live region (role="log"): old messages put at the top are not news, so it
    // is quiet (aria-live off, aria-busy) while they go in, and live again after a moment.
    clearTimeout(this.quietTimer);
    const log = el.closest('[role="log"]') ?? el;
    log.setAttribute("aria-busy", "true");
    log.setAttribute("aria-live", "off");
    for (const msg of messages) {
      if (this.upsert(msg)) added += 1;
    }
    el.scrollTop = topBefore + (el.scrollHeight - heightBefore);
    this.quietTimer = setTimeout(() => {
      log.setAttribute("aria-live", "polite");
      log.removeAttribute("aria-busy");
    }, QUIET_AFTER_OLDER_MS);
    return added;
  }

  /** @param {string} nonce @returns {HTMLLIElement|null} */
  pendingElement(nonce) {
    for (const li of this.list.querySelectorAll(":scope > li.pending")) {
      if (li.dataset.nonce === nonce) return li;
    }
    return null;
  }

  /**
   * Shows an unsent message (just typed, or restored from the outbox after a reload).
   * @param {{nonce: string, body: string, created: string, attachments?: object[]}} entry
   * @param {string|{id: string, name: string, guest: boolean}} author the reader (or its name).
   */
  addPending(entry, author) {
    let li = this.pendingElement(entry.nonce);
    if (li) return li;
    li = buildMessage({
      nonce: entry.nonce,
      user: typeof author === "string" ? { name: author } : author,
      body: entry.body,
      sent_at: entry.created,
      attachments: entry.attachments,
    });
    li.classList.add("pending", "own");
    this.list.append(li);
    this.setSending(entry.nonce);
    return li;
  }

  /** Why a message was refused, in words (the body limit as the page configured it). */
  failureText(code) {
    if (code === "body_too_long" && this.maxBody) {
      return `${FAILURE_TEXT[code]} (${this.maxBody.toLocaleString("en")} characters at most)`;
    }
    return FAILURE_TEXT[code] || code;
  }

  /** Marks an unsent message as on its way. */
  setSending(nonce) {
    this.setState(nonce, "sending", "Sending…", false, false);
  }

  /** Marks an unsent message as waiting for an automatic retry. */
  setRetrying(nonce, code, seconds) {
    const why = this.failureText(code);
    this.setState(nonce, "retrying", `Not sent yet (${why}), retrying in ${seconds} s…`, false, false);
  }

  /**
   * Marks an unsent message as failed; `final` failures also offer to discard it, and one that
   * can never succeed (too long, the room archived) offers only that.
   */
  setFailed(nonce, code, final) {
    const why = this.failureText(code);
    const hopeless = NEVER_SUCCEEDS.has(code);
    this.setState(nonce, "failed", `Failed — ${why}.`, !hopeless, final || hopeless);
  }

  setState(nonce, state, text, retry, discard) {
    const li = this.pendingElement(nonce);
    if (!li) return;
    li.dataset.state = state;
    li.classList.toggle("failed", state === "failed");
    li.classList.toggle("retrying", state === "retrying");
    li.querySelector(".message-state")?.remove();
    const box = document.createElement("span");
    box.className = "message-state";
    // Only a failure interrupts a screen reader; "sending" would be noise on every message.
    if (state === "failed") box.setAttribute("role", "alert");
    const label = document.createElement("span");
    label.className = "state-label";
    label.textContent = text;
    box.append(label);
    if (retry) {
      box.append(" ", actionButton("retry", "Retry", "Retry sending this message"));
    }
    if (discard) {
      box.append(" ", actionButton("discard", "Discard", "Discard this unsent message"));
    }
    li.append(box);
  }

  /** Removes an unsent message from view (the reader discarded it). */
  removePending(nonce) {
    this.pendingElement(nonce)?.remove();
  }

  /**
   * Shows an edit (an `edited` frame, or a message in a newer version than the one shown):
   * the new body and the "(edited)" marker. A version not above the shown one is ignored, so
   * whatever order edits arrive in, the newest stays.
   * @param {{id: number, version?: number, body?: string, html?: string,
   *   edited_at?: string|null}} edit
   * @returns {boolean} true when the message changed.
   */
  applyEdit(edit) {
    const li = this.byId.get(edit.id);
    const version = Number(edit.version) || 0;
    if (!li || typeof edit.body !== "string") return false;
    if (version <= (Number(li.dataset.version) || 0)) return false;
    li.dataset.version = String(version);
    const body = li.querySelector(".body");
    if (body) showBody(body, edit);
    if (edit.edited_at) {
      const marker = buildEditedMarker(edit.edited_at);
      const old = li.querySelector(".edited");
      if (old) old.replaceWith(marker);
      else (li.querySelector("time") || li.firstChild).after(" ", marker);
    }
    return true;
  }

  /**
   * Shows a message's reactions (a `reactions` frame, or a message listing them) when their
   * `reactions_version` is above the one shown; `onReactions` (static/chat/client/lifecycle.js)
   * draws them.
   * @param {{id: number, reactions_version?: number, reactions?: object[]}} update
   * @returns {boolean} true when they changed.
   */
  applyReactions(update) {
    const li = this.byId.get(update.id);
    const version = Number(update.reactions_version) || 0;
    if (!li || !Array.isArray(update.reactions)) return false;
    if (version <= (Number(li.dataset.reactionsVersion) || 0)) return false;
    li.dataset.reactionsVersion = String(version);
    this.onReactions?.(li, update.reactions);
    return true;
  }

  /**
   * Shows the quote of the message a reply answers (`reply_to`, docs/protocol.md); `onReply`
   * (static/chat/client/replies.js) draws it. A message without the field changes nothing.
   * @param {{id: number, reply_to?: object|null}} msg
   */
  applyReply(msg) {
    const li = this.byId.get(msg.id);
    if (li && msg.reply_to !== undefined) this.onReply?.(li, msg.reply_to);
  }

  /**
   * The author or a moderator deleted a message: it leaves the list, as it is absent from
   * every list after a reload (docs/protocol.md: a deleted message is never listed again), and
   * it is never shown again whatever page lists it later.
   */
  markDeleted(id) {
    this.gone.add(id);
    const li = this.byId.get(id);
    if (!li) return;
    this.byId.delete(id);
    li.remove();
  }

  onClick(event) {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const li = button.closest("li.pending");
    if (!li || !li.dataset.nonce) return;
    if (button.dataset.action === "retry") this.actions.onRetry(li.dataset.nonce);
    if (button.dataset.action === "discard") this.actions.onDiscard(li.dataset.nonce);
  }
}

function actionButton(action, text, label) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = `message-action ${action}`;
  button.dataset.action = action;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  return button;
}
