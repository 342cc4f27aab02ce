/**
 * Sending messages: outbox bookkeeping, the "sending / retrying / failed" states, automatic
 * retries for temporary refusals, and resending everything unacknowledged after a (re)connect.
 *
 * A message leaves the outbox only when a stored message with its nonce comes back (socket frame,
 * poll batch, POST answer or hello history), so resending is always safe: same nonce, one row.
 */

/** Refusals that mean "later": retried automatically with the same nonce. */
const TEMPORARY = new Set(["busy", "store_failed", "rate_limited", "network", "not_connected"]);
const RETRY_BASE_MS = 1000;
const RETRY_CAP_MS = 30000;
/** A rate-limited client waits at least this long before trying again. */
const RATE_LIMIT_MIN_MS = 3000;

/** Moves typed messages from the composer to the server. */
export class Sender {
  /**
   * @param {object} options
   * @param {import("./outbox.js").Outbox} options.outbox
   * @param {import("./timeline.js").Timeline} options.timeline
   * @param {import("./connection.js").Connection} options.connection
   * @param {() => string} options.me the reader's display name.
   * @param {(msg: object) => void} options.onStored a POST answered with the stored message.
   */
  constructor({ outbox, timeline, connection, me, onStored }) {
    this.outbox = outbox;
    this.timeline = timeline;
    this.connection = connection;
    this.me = me;
    this.onStored = onStored;
    /** nonce -> number of temporary refusals so far */
    this.refusals = new Map();
    /** nonce -> timer of a scheduled automatic retry */
    this.timers = new Map();
  }

  /** Shows what a previous page left unsent (failed ones stay failed until the reader retries). */
  restore() {
    for (const entry of this.outbox.all()) {
      this.timeline.addPending(entry, this.me());
      if (entry.failed) this.timeline.setFailed(entry.nonce, entry.failed, true);
    }
  }

  /**
   * Queues a message the reader typed and tries to send it now.
   * @param {string} body
   */
  submit(body) {
    const entry = this.outbox.add(body);
    this.timeline.addPending(entry, this.me());
    this.timeline.scrollToBottom();
    this.trySend(entry);
  }

  /** Sends every unacknowledged, not finally failed message (a transport just became ready). */
  flush() {
    for (const entry of this.outbox.all()) {
      if (!entry.failed && !this.timers.has(entry.nonce)) this.trySend(entry);
    }
  }

  trySend(entry) {
    if (this.connection.mode === "ws") {
      if (this.connection.sendFrame({ type: "message", body: entry.body, nonce: entry.nonce })) {
        this.timeline.setSending(entry.nonce);
      }
      // Not sent: it stays in the outbox and goes out on the next "ready".
      return;
    }
    if (this.connection.mode === "poll") {
      this.timeline.setSending(entry.nonce);
      this.connection.postMessage(entry.body, entry.nonce).then((result) => {
        if (result.ok) {
          this.onStored(result.message);
        } else if (result.code !== "not_connected") {
          this.refused(entry.nonce, result.code);
        }
      });
    }
  }

  /**
   * The server handed back a stored message: if it is ours, it is acknowledged.
   * @param {object} msg
   */
  acknowledge(msg) {
    if (!msg.nonce) return;
    clearTimeout(this.timers.get(msg.nonce));
    this.timers.delete(msg.nonce);
    this.refusals.delete(msg.nonce);
    this.outbox.remove(msg.nonce);
  }

  /**
   * The server refused one of our messages (error frame or POST error).
   * @param {string} nonce
   * @param {string} code
   */
  refused(nonce, code) {
    const entry = this.outbox.get(nonce);
    if (!entry) return;
    const temporary = TEMPORARY.has(code) || /^http_5\d\d$/.test(code);
    if (!temporary) {
      this.outbox.setFailed(nonce, code);
      this.timeline.setFailed(nonce, code, true);
      return;
    }
    const count = (this.refusals.get(nonce) || 0) + 1;
    this.refusals.set(nonce, count);
    let ms = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** (count - 1));
    if (code === "rate_limited") ms = Math.max(ms, RATE_LIMIT_MIN_MS);
    ms = ms / 2 + (Math.random() * ms) / 2;
    this.timeline.setRetrying(nonce, code, Math.ceil(ms / 1000));
    clearTimeout(this.timers.get(nonce));
    this.timers.set(
      nonce,
      setTimeout(() => {
        this.timers.delete(nonce);
        const current = this.outbox.get(nonce);
        if (current && !current.failed) this.trySend(current);
      }, ms),
    );
  }

  /** The reader pressed "Retry" on a failed message. */
  retry(nonce) {
    const entry = this.outbox.get(nonce);
    if (!entry) return;
    this.outbox.setFailed(nonce, null);
    this.refusals.delete(nonce);
    this.timeline.setSending(nonce);
    this.trySend({ ...entry, failed: null });
  }

  /** The reader pressed "Discard" on a failed message. */
  discard(nonce) {
    clearTimeout(this.timers.get(nonce));
    this.timers.delete(nonce);
    this.outbox.remove(nonce);
    this.timeline.removePending(nonce);
  }
}
