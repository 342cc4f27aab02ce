/**
 * The long-polling fallback (docs/protocol.md, "Long polling"): a loop of GET requests that the
 * chat server holds until something happens, and a POST per frame sent (a message, a typing
 * notice). Every answer comes out as the frames a socket would have delivered: a GET's `events`,
 * a POST's `events` (the stored `message` or an `ack`), and a refused POST as an `error` frame
 * with the nonce and `retry_after`.
 *
 * Requests are cross-origin (Django's page, the chat server's port) and carry the ticket in the
 * URL, not cookies. A 403 means the ticket expired or was revoked (`bad_ticket`,
 * `access_revoked`): a fresh one is fetched and the loop goes on, unless Django refuses it. A 404
 * or 410 means the room is gone: `room_archived`, or `room_deleted`.
 *
 * `since` moves only with this loop's own answers (their `cursor`): each answer is every message
 * after `since` up to its last one (a page of catch-up when `has_more`, then the loop polls again
 * at once), so a message that arrived another way (the answer to a POST) must not move it past a
 * gap.
 *
 * `eventCursor` is handed back the same way: it names the edits, reactions and deletions the
 * loop was answered with, so one that arrived between two polls answers the next poll at once.
 */

import { withParam } from "./api.js";

const MAX_ERROR_DELAY_MS = 15000;
/** An empty answer faster than this is not a real long poll (e.g. the server is stopping). */
const MIN_EMPTY_POLL_MS = 1000;

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * The server's wait before a resend, in seconds: the body's `retry_after`, else the
 * `Retry-After` header (whole seconds); undefined when it gave none.
 * @param {object|null} data
 * @param {Response} response
 * @returns {number|undefined}
 */
export function retryAfterSeconds(data, response) {
  if (data && typeof data.retry_after === "number") return data.retry_after;
  const header = Number.parseInt(response.headers?.get?.("Retry-After") ?? "", 10);
  return Number.isFinite(header) && header >= 0 ? header : undefined;
}

/**
 * The frames of a GET answer: its `events`; for a chat server of the previous release (during an
 * upgrade) the same frames rebuilt from `messages`, `deleted` and the presence fields.
 * @param {object} answer
 * @returns {object[]}
 */
export function answerFrames(answer) {
  if (Array.isArray(answer?.events)) return answer.events;
  const frames = (answer?.messages || []).map((msg) => ({ type: "message", ...msg }));
  for (const id of answer?.deleted || []) frames.push({ type: "deleted", id });
  if (Array.isArray(answer?.online)) {
    frames.push({ type: "presence", online: answer.online, people: answer.people });
  }
  return frames;
}

/** Raised inside the loop when the room is gone for good; `state` is "archived" or "deleted". */
class RoomGone extends Error {
  /** @param {string} state */
  constructor(state) {
    super(state);
    this.state = state;
  }
}

/**
 * The final state a 404/410 answer means, from its `error` code.
 * @param {Response} response
 * @returns {Promise<string>}
 */
async function goneState(response) {
  try {
    const data = await response.json();
    return data && data.error === "room_deleted" ? "deleted" : "archived";
  } catch {
    return "archived";
  }
}

/** One long-polling session for a room. */
export class PollTransport {
  /**
   * @param {object} options
   * @param {string} options.pollUrl the ticket's `poll_url`.
   * @param {number|null} options.since the highest id already shown.
   * @param {() => Promise<{poll_url: string}>} options.renewTicket fetches a fresh ticket.
   * @param {(frame: object) => void} options.onFrame every frame of every answer, in order.
   * @param {(messages: object[], hasMore: boolean) => void} options.onAnswer after a GET
   *   answer's frames: its messages (a page of catch-up when `hasMore`).
   * @param {(state: string) => void} options.onGone the room was archived or deleted (404/410):
   *   "archived" or "deleted".
   * @param {(failures: number) => void} options.onTrouble requests keep failing.
   * @param {() => void} options.onHealthy a poll answered normally.
   */
  constructor(options) {
    this.options = options;
    this.pollUrl = options.pollUrl;
    this.since = options.since;
    /** The last answer's `event_cursor` (the room's remembered events it carried). */
    this.eventCursor = null;
    this.stopped = false;
    this.controller = new AbortController();
    /** nonce -> the number of its latest POST: an answer to an earlier one is stale. */
    this.posted = new Map();
    this.posts = 0;
    /** Until a GET answers: ask with `wait=0`, so the first answer comes at once. */
    this.answered = false;
  }

  start() {
    this.loop();
  }

  stop() {
    this.stopped = true;
    this.controller.abort();
  }

  /** @param {number|null} id raise `since` past a message this loop received. */
  advance(id) {
    if (id != null && (this.since == null || id > this.since)) this.since = id;
  }

  async renew() {
    const ticket = await this.options.renewTicket();
    this.pollUrl = ticket.poll_url;
  }

  async loop() {
    let failures = 0;
    while (!this.stopped) {
      const started = Date.now();
      const first = !this.answered;
      try {
        const batch = await this.pollOnce();
        if (this.stopped) return;
        if (batch === null) continue; // the ticket was renewed; poll again at once
        failures = 0;
        this.options.onHealthy();
        const frames = answerFrames(batch);
        const messages = frames.filter((frame) => frame.type === "message");
        for (const msg of messages) this.advance(msg.id);
        if (Number.isSafeInteger(batch.cursor)) this.advance(batch.cursor);
        if (typeof batch.event_cursor === "string") this.eventCursor = batch.event_cursor;
        // Without `since` the first answer is the newest page; from now on wait for newer ones.
        if (this.since == null) this.since = 0;
        for (const frame of frames) this.options.onFrame(frame);
        this.options.onAnswer(messages, batch.has_more === true);
        // Presence rides along with every answer: only other frames make it a real answer.
        const empty = frames.every((frame) => frame.type === "presence");
        if (empty && !first && Date.now() - started < MIN_EMPTY_POLL_MS) {
          await pause(MIN_EMPTY_POLL_MS, this.controller.signal);
        }
      } catch (err) {
        if (this.stopped) return;
        if (err instanceof RoomGone) {
          this.stopped = true;
          this.options.onGone(err.state);
          return;
        }
        failures += 1;
        // Back from trouble, the first answer must come at once again (it says "healthy").
        this.answered = false;
        this.options.onTrouble(failures);
        const cap = Math.min(MAX_ERROR_DELAY_MS, 500 * 2 ** failures);
        await pause(Math.random() * cap, this.controller.signal);
      }
    }
  }

  /** One GET; null when the ticket had to be renewed. */
  async pollOnce() {
    let url = this.since == null ? this.pollUrl : withParam(this.pollUrl, "since", this.since);
    if (this.eventCursor !== null) url = withParam(url, "event_cursor", this.eventCursor);
    // The first answer tells that the chat server took the poll (the page can send from then
    // on): it must not wait for the room's next event (docs/protocol.md, "Long polling").
    if (!this.answered) url = withParam(url, "wait", 0);
    const response = await fetch(url, {
      credentials: "omit",
      cache: "no-store",
      signal: this.controller.signal,
    });
    if (response.status === 403) {
      // Expired or revoked: a fresh ticket, if Django still hands one out (when it does not,
      // the connection has already finished and stopped this loop).
      await this.renew();
      return null;
    }
    if (response.status === 404 || response.status === 410) {
      throw new RoomGone(await goneState(response));
    }
    if (!response.ok) {
      throw new Error(`poll answered ${response.status}`);
    }
    const answer = await response.json();
    this.answered = true;
    return answer;
  }

  /**
   * Sends one frame with a POST (`{"body", "nonce"}` for a message, with `reply_to` for a
   * reply and `attachments` (ids) for files; `{"type": "typing"}`);
   * what it answers goes to `onFrame`: the frames of its `events`, or an `error` frame (with the
   * nonce and `retry_after`) when it was refused. An answer to a POST of a nonce that was posted
   * again since is dropped (the later one answers).
   * @param {object} frame
   */
  async send(frame) {
    const nonce = typeof frame.nonce === "string" ? frame.nonce : null;
    const number = ++this.posts;
    if (nonce) this.posted.set(nonce, number);
    const frames = await this.post(frame);
    if (nonce) {
      if (this.posted.get(nonce) !== number) return;
      this.posted.delete(nonce);
    }
    for (const answer of frames) this.options.onFrame(answer);
  }

  /**
   * One POST, renewing the ticket once on 403.
   * @param {object} frame
   * @returns {Promise<object[]>} the frames it answers.
   */
  async post(frame) {
    const nonce = frame.nonce;
    const refused = (code, retryAfter) =>
      nonce ? [{ type: "error", code, nonce, retry_after: retryAfter }] : [];
    const body = frame.type === "message" ? { body: frame.body, nonce } : frame;
    if (frame.type === "message" && frame.reply_to != null) body.reply_to = frame.reply_to;
    if (frame.type === "message" && Array.isArray(frame.attachments) && frame.attachments.length) {
      body.attachments = frame.attachments;
    }
    for (let attempt = 0; attempt < 2; attempt += 1) {
      let response;
      try {
        response = await fetch(this.pollUrl, {
          method: "POST",
          credentials: "omit",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
      } catch {
        return refused("network");
      }
      if (response.status === 403 && attempt === 0) {
        try {
          await this.renew();
        } catch {
          return refused("network");
        }
        continue;
      }
      let data = null;
      try {
        data = await response.json();
      } catch {
        data = null;
      }
      if (response.ok && data && Array.isArray(data.events)) return data.events;
      if (response.ok && data?.repeat) {
        // A chat server of the previous release (during an upgrade): its repeat answer.
        const id = data.id ?? data.message?.id;
        return [{ type: "ack", nonce, id, deleted: data.deleted === true, message: data.message }];
      }
      if (response.ok && data?.message) return [{ type: "message", ...data.message }];
      const fallback =
        response.status === 410 || response.status === 404 ? "room_archived" : `http_${response.status}`;
      return refused((data && data.error) || fallback, retryAfterSeconds(data, response));
    }
    return refused("http_403");
  }
}
