/**
 * Sending messages, strictly in the order they were typed (typed order = stored order = shown
 * order), on the socket and on the long-poll POST alike: the sender hands a frame to
 * `connection.send` and learns the outcome from frames (`message`, `ack`, `error`) whichever
 * transport carried it; it never knows which one that was.
 *
 * Stop-and-wait on the head of the room's outbox: one message is in flight at a time, and the
 * next one leaves only once the head is acknowledged (its stored message came back: socket frame,
 * poll batch, POST answer, hello history, or an `ack` for a nonce the server had already stored)
 * or finally refused (e.g. `body_too_long`: marked failed, the next ones go). While the head is
 * refused for a while (`rate_limited`, `busy`, `store_failed`, offline) everything typed later
 * waits behind it. The server's `retry_after` (seconds) says exactly how long to wait; without it
 * the wait is an exponential backoff with jitter. Resending is always safe: same nonce, one row.
 */

/** Refusals that mean "later": the head is resent with the same nonce. */
const TEMPORARY = new Set(["busy", "store_failed", "rate_limited", "network", "not_connected"]);
export const RETRY_BASE_MS = 1000;
export const RETRY_CAP_MS = 30000;
/** A sent head without any answer for this long is sent again (same nonce: never a duplicate). */
export const IN_FLIGHT_TIMEOUT_MS = 30000;

/**
 * How long to wait before resending a refused head.
 * @param {number} refusals temporary refusals of this head so far (1 for the first).
 * @param {number|undefined|null} retryAfter the server's `retry_after` in seconds, if any.
 * @param {() => number} [random]
 * @returns {number} milliseconds
 */
export function retryDelay(refusals, retryAfter, random = Math.random) {
  if (typeof retryAfter === "number" && Number.isFinite(retryAfter) && retryAfter >= 0) {
    return retryAfter * 1000;
  }
  const ms = Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** Math.min(refusals - 1, 16));
  return ms / 2 + (random() * ms) / 2;
}

/** Moves typed messages from the composer to the server, one at a time, in order. */
export class Sender {
  /**
   * @param {object} options
   * @param {import("./outbox.js").Outbox} options.outbox
   * @param {import("./timeline.js").Timeline} options.timeline
   * @param {{send: (frame: object) => boolean}} options.connection the connection
   *   (connection.js): `send` is false when no transport can take the frame now.
   * @param {() => string} options.me the reader's display name.
   * @param {(msg: object) => void} options.onStored the original message of an `ack`: show it
   *   like any other (which acknowledges it here).
   * @param {{setTimeout: Function, clearTimeout: Function}} [options.timers] defaults to the
   *   window's (tests pass fake ones).
   * @param {() => number} [options.random]
   */
  constructor({ outbox, timeline, connection, me, onStored, timers, random }) {
    this.outbox = outbox;
    this.timeline = timeline;
    this.connection = connection;
    this.me = me;
    this.onStored = onStored;
    this.timers = timers || globalThis;
    this.random = random || Math.random;
    /** Nonce of the head that was sent and has no answer yet, or null. */
    this.inFlight = null;
    /** Timer of the wait before resending a refused head, or of the in-flight timeout. */
    this.waitTimer = null;
    /** Nonce of the refused head the wait timer is for. */
    this.waitingFor = null;
    this.flightTimer = null;
    /** Temporary refusals of the current head (for the backoff). */
    this.refusals = 0;
  }

  /** Shows what a previous page left unsent (failed ones stay failed until the reader retries). */
  restore() {
    for (const entry of this.outbox.all()) {
      this.timeline.addPending(entry, this.me());
      if (entry.failed) this.timeline.setFailed(entry.nonce, entry.failed, true);
    }
  }

  /**
   * Queues a message the reader typed; it leaves when everything typed before it has.
   * @param {string} body
   * @param {number|null} [replyTo] the id of the message it answers (docs/protocol.md `reply_to`).
   * @param {object[]} [attachments] uploaded files it carries (attachment shapes); the frame
   *   names their ids, on every resend too (same nonce: stored once, with them).
   * @returns {import("./outbox.js").OutboxEntry} its outbox entry.
   */
  submit(body, replyTo = null, attachments = []) {
    const entry = this.outbox.add(body, replyTo, attachments);
    this.timeline.addPending(entry, this.me());
    this.timeline.scrollToBottom();
    this.pump();
    return entry;
  }

  /**
   * A transport just became ready (first connect, reconnect, switch to or from polling): what
   * was in flight on the old one may be lost, so the head is sent again, unless the server asked
   * us to wait.
   */
  flush() {
    this.land();
    this.pump();
  }

  /** The first entry that is neither acknowledged nor finally failed. */
  head() {
    return this.outbox.all().find((entry) => !entry.failed);
  }

  /** Sends the head when nothing is in flight, nothing is waited for and a transport is ready. */
  pump() {
    if (this.inFlight !== null || this.waitTimer !== null) return;
    const entry = this.head();
    if (!entry) return;
    const frame = { type: "message", body: entry.body, nonce: entry.nonce };
    if (entry.reply_to) frame.reply_to = entry.reply_to;
    if (entry.attachments?.length) frame.attachments = entry.attachments.map((a) => a.id);
    if (!this.connection.send(frame)) {
      return; // not sent: it goes out on the next "ready"
    }
    // Answers always come later (a socket frame, a POST's answer): never inside `send`.
    this.takeOff(entry.nonce);
  }

  takeOff(nonce) {
    this.inFlight = nonce;
    this.timeline.setSending(nonce);
    this.timers.clearTimeout(this.flightTimer);
    this.flightTimer = this.timers.setTimeout(() => {
      this.flightTimer = null;
      if (this.inFlight === nonce) this.flush();
    }, IN_FLIGHT_TIMEOUT_MS);
  }

  /** Nothing is in flight any more (answered, or the transport it left on is gone). */
  land() {
    this.inFlight = null;
    this.timers.clearTimeout(this.flightTimer);
    this.flightTimer = null;
  }

  /** The head is done (acknowledged or finally refused): the next one may go. */
  settled(nonce) {
    if (this.inFlight === nonce) {
      this.land();
      this.refusals = 0;
    }
    if (this.waitingFor === nonce) {
      // An earlier attempt got through after all: no need to wait before the next one.
      this.timers.clearTimeout(this.waitTimer);
      this.waitTimer = this.waitingFor = null;
      this.refusals = 0;
    }
    this.pump();
  }

  /**
   * The server handed back a stored message: if it is ours, it is acknowledged.
   * @param {object} msg
   */
  acknowledge(msg) {
    if (!msg.nonce || !this.outbox.get(msg.nonce)) return;
    this.outbox.remove(msg.nonce);
    this.settled(msg.nonce);
  }

  /**
   * The server had already stored this nonce (`ack` frame, or a POST `repeat` answer): the
   * original message counts as the acknowledgement; a deleted original only removes the unsent
   * copy (its text is never shown again).
   * @param {{nonce: string, id: number, deleted: boolean, message?: object}} ack
   */
  onAck(ack) {
    if (!ack || typeof ack.nonce !== "string") return;
    if (!ack.deleted && ack.message) {
      this.onStored(ack.message);
      this.acknowledge(ack.message);
      return;
    }
    this.outbox.remove(ack.nonce);
    this.timeline.removePending(ack.nonce);
    if (typeof ack.id === "number") this.timeline.markDeleted(ack.id);
    this.settled(ack.nonce);
  }

  /**
   * The server refused the head (error frame or POST error).
   * @param {string} nonce
   * @param {string} code
   * @param {number} [retryAfter] seconds, from the server's `retry_after`.
   */
  refused(nonce, code, retryAfter) {
    if (nonce !== this.inFlight || !this.outbox.get(nonce)) return; // stale or not ours
    const temporary = TEMPORARY.has(code) || /^http_5\d\d$/.test(code);
    if (!temporary) {
      this.outbox.setFailed(nonce, code);
      this.timeline.setFailed(nonce, code, true);
      this.settled(nonce);
      return;
    }
    this.land();
    if (code === "not_connected") {
      this.pump(); // no transport right now: the next "ready" sends it
      return;
    }
    this.refusals += 1;
    const ms = retryDelay(this.refusals, retryAfter, this.random);
    this.timeline.setRetrying(nonce, code, Math.max(1, Math.ceil(ms / 1000)));
    this.timers.clearTimeout(this.waitTimer);
    this.waitingFor = nonce;
    this.waitTimer = this.timers.setTimeout(() => {
      this.waitTimer = this.waitingFor = null;
      this.pump();
    }, ms);
  }

  /** The reader pressed "Retry" on a failed message: it takes its typed place in the queue. */
  retry(nonce) {
    if (!this.outbox.get(nonce)) return;
    this.outbox.setFailed(nonce, null);
    this.timeline.setSending(nonce);
    this.pump();
  }

  /** The reader pressed "Discard" on a failed message. */
  discard(nonce) {
    this.outbox.remove(nonce);
    this.timeline.removePending(nonce);
    this.settled(nonce);
  }
}
