/**
 * Messages typed but not yet acknowledged, kept in localStorage per room.
 *
 * An entry stays until the server sends back a stored message with its nonce, so nothing typed is
 * lost across reconnects or page reloads. Resends reuse the same nonce, and the server stores a
 * (room, nonce) pair at most once, so a resend never creates a duplicate.
 */

const KEY_PREFIX = "dtc.outbox.";

/**
 * A nonce matching the protocol's `[A-Za-z0-9_-]{1,64}`.
 * `crypto.randomUUID` exists only in secure contexts, so plain-http deployments fall back to
 * `getRandomValues`, which is available everywhere.
 * @returns {string}
 */
export function newNonce() {
  if (typeof crypto.randomUUID === "function") {
    return crypto.randomUUID();
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * @typedef {object} OutboxEntry
 * @property {string} nonce
 * @property {string} body
 * @property {string} created ISO time the user pressed send.
 * @property {string|null} failed error code of a final failure, or null while still trying.
 * @property {number} [reply_to] the id of the message it answers (a reply), when it is one.
 * @property {object[]} [attachments] the uploaded files it carries (attachment shapes, as the
 *   upload answered), when it carries any: their ids go in every (re)send of the frame, their
 *   shapes show the unsent message with its files.
 */

/** The unsent messages of one room. */
export class Outbox {
  /**
   * @param {string} room the room slug (one storage key per room).
   * @param {Storage|null} [storage] defaults to localStorage when it is usable.
   */
  constructor(room, storage) {
    this.key = KEY_PREFIX + room;
    this.storage = storage === undefined ? usableLocalStorage() : storage;
    /** @type {OutboxEntry[]} */
    this.memory = [];
  }

  /** @returns {OutboxEntry[]} entries in the order they were typed. */
  all() {
    if (!this.storage) {
      return this.memory.slice();
    }
    try {
      const parsed = JSON.parse(this.storage.getItem(this.key) || "[]");
      return Array.isArray(parsed) ? parsed.filter(isEntry) : [];
    } catch {
      return [];
    }
  }

  /**
   * Adds a message and returns its entry.
   * @param {string} body
   * @param {number|null} [replyTo] the id of the message it answers.
   * @param {object[]} [attachments] uploaded files (attachment shapes) it carries.
   * @returns {OutboxEntry}
   */
  add(body, replyTo = null, attachments = []) {
    const entry = { nonce: newNonce(), body, created: new Date().toISOString(), failed: null };
    if (Number.isSafeInteger(replyTo) && replyTo > 0) entry.reply_to = replyTo;
    if (Array.isArray(attachments) && attachments.length) entry.attachments = attachments.slice();
    this.write([...this.all(), entry]);
    return entry;
  }

  /** @param {string} nonce @returns {OutboxEntry|undefined} */
  get(nonce) {
    return this.all().find((e) => e.nonce === nonce);
  }

  /** Forgets an entry (acknowledged or discarded). @param {string} nonce */
  remove(nonce) {
    const entries = this.all();
    const kept = entries.filter((e) => e.nonce !== nonce);
    if (kept.length !== entries.length) {
      this.write(kept);
    }
  }

  /**
   * Records a final failure (or clears it with null) so a reload shows it as failed instead of
   * resending something the server will refuse again.
   * @param {string} nonce
   * @param {string|null} code
   */
  setFailed(nonce, code) {
    this.write(this.all().map((e) => (e.nonce === nonce ? { ...e, failed: code } : e)));
  }

  /** @param {OutboxEntry[]} entries */
  write(entries) {
    if (!this.storage) {
      this.memory = entries;
      return;
    }
    try {
      if (entries.length) {
        this.storage.setItem(this.key, JSON.stringify(entries));
      } else {
        this.storage.removeItem(this.key);
      }
    } catch {
      // Quota exceeded or storage revoked: keep going in memory for this page.
      this.storage = null;
      this.memory = entries;
    }
  }
}

function isEntry(e) {
  return e && typeof e.nonce === "string" && typeof e.body === "string";
}

function usableLocalStorage() {
  try {
    const probe = "dtc.probe";
    window.localStorage.setItem(probe, "1");
    window.localStorage.removeItem(probe);
    return window.localStorage;
  } catch {
    // Disabled storage (privacy settings): the outbox still works for the life of the page.
    return null;
  }
}
