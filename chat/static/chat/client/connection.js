/**
 * The connection state machine: which transport is in use and what happens when it drops.
 *
 *   connecting ──hello──> live ──close──> reconnecting (backoff + full jitter, fresh ticket,
 *        │                                  resume with since) ──hello──> live
 *        ├─ socket fails before hello (once when no socket of this page ever said hello, else
 *        │  twice in a row) ──> polling (long-poll fallback) at once
 *        └─ socket open but no hello after `socketGiveUpMs` ──> polling, the socket kept as a
 *           probe until its own hello timeout
 *   polling: "live" as soon as the chat server answers the first poll (`wait=0`, at once); a
 *           socket is retried in the background every 30 s; on its hello ──> live
 *   close 4004 / ticket 404 room_archived ──> archived (final)
 *   close 4005 ──> deleted (final)      ticket 403 ──> denied (final)
 *   ticket 404 unknown_room (deleted, or a private room one is no longer a member of: Django
 *        answers both alike, on purpose) ──> forbidden (final)
 *   close 4003 (access revoked or the room's rules changed) ──> reconnecting with a fresh
 *        ticket: Django decides (403 ──> denied, 404 ──> archived/forbidden, a ticket ──> live)
 *
 * Both transports deliver the same frames (docs/protocol.md, "WebSocket"): a socket's frames and
 * a long-poll answer's `events` (and the answers to what was sent) all go to one handler,
 * `onFrame`; `send(frame)` takes a frame for whichever transport is live, so the sender never
 * knows which one it is.
 *
 * Catching up (docs/protocol.md, "Catching up"): hello and long-poll answers carry one bounded
 * page of missed messages and `has_more`. While more follow, the connection asks for the next
 * page (a `history` frame on a socket; the poll loop polls again at once), and it resumes from
 * the last page it holds (`cursor`), never from a newer live message shown meanwhile, so a
 * reconnect during the catch-up loses nothing.
 *
 * It reports states and incoming data through handlers and never touches the DOM.
 */

import { fetchTicket, withParam } from "./api.js";
import { PollTransport } from "./transport-poll.js";
import { WsTransport } from "./transport-ws.js";

export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 15000;
/** After this many sockets in a row failed before hello, try long polling. */
export const FALLBACK_AFTER = 2;
/**
 * A socket without hello after this long is given up on (long polling starts, the socket goes
 * on as a probe); the room page passes the site's setting (CHAT_SOCKET_GIVE_UP_MS).
 */
export const SOCKET_GIVE_UP_MS = 2000;
/** While polling, how often to try to get back to a socket. */
export const SOCKET_RETRY_WHILE_POLLING_MS = 30000;
/** Close 1001 (server going away): reconnect within this jittered window. */
const GOING_AWAY_JITTER_MS = 1000;
/** A history request refused for now (`rate_limited`, `busy`) is asked again after this. */
const HISTORY_RETRY_MS = 1000;

/**
 * Exponential backoff with full jitter: a uniform delay in [0, min(cap, base * 2^attempt)).
 * @param {number} attempt 0 for the first retry.
 * @param {() => number} [random]
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, random = Math.random) {
  return random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(attempt, 16));
}

/**
 * @typedef {object} ConnectionHandlers
 * @property {(state: string, detail?: object) => void} onState
 * @property {(frame: object) => void} onFrame every frame, from either transport: `hello`
 *   (a socket opened), `history`, `message`, `presence`, `typing`, `deleted`, `ack`, `error`.
 * @property {() => void} onReady a transport can take messages now: flush the outbox.
 * @property {(user: {name: string, guest: boolean}) => void} onUser the ticket's identity.
 */

/** Keeps one room connected, by socket when possible and by long polling otherwise. */
export class Connection {
  /**
   * @param {object} options
   * @param {string} options.ticketUrl
   * @param {() => number|null} options.getSince the highest message id shown (every message up
   *   to it is shown once no catch-up is under way).
   * @param {ConnectionHandlers} options.handlers
   * @param {number} [options.socketGiveUpMs] how long a socket may stay silent before polling.
   */
  constructor({ ticketUrl, getSince, handlers, socketGiveUpMs = SOCKET_GIVE_UP_MS }) {
    this.ticketUrl = ticketUrl;
    this.socketGiveUpMs = socketGiveUpMs;
    /** True once any socket of this page said hello: sockets can work from here. */
    this.everHello = false;
    this.giveUpTimer = null;
    /** True while `connect` waits for its ticket. */
    this.ticketPending = false;
    this.getSince = getSince;
    this.handlers = handlers;
    /** "ws", "poll" or null: which transport can take messages right now. */
    this.mode = null;
    this.state = null;
    this.ws = null;
    this.poll = null;
    this.probe = null;
    this.attempt = 0;
    this.earlyFailures = 0;
    this.reconnectTimer = null;
    this.probeTimer = null;
    this.finished = false;
    /** True while pages of missed messages are still to come (`has_more`). */
    this.catchingUp = false;
    /** While catching up: the last id of the last page, below which nothing is missing. */
    this.cursor = null;
    this.historyTimer = null;
    /** True once a hello or poll answer came: from then on an empty list means "nothing yet". */
    this.synced = false;
  }

  start() {
    window.addEventListener("online", () => this.onBrowserOnline());
    window.addEventListener("offline", () => {
      if (this.mode === null && !this.finished) this.setState("offline");
    });
    this.connect();
  }

  setState(state, detail = {}) {
    this.state = state;
    this.handlers.onState(state, detail);
  }

  /** Stops for good (archived room, no permission). */
  finish(state) {
    this.finished = true;
    this.mode = null;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.probeTimer);
    clearTimeout(this.historyTimer);
    clearTimeout(this.giveUpTimer);
    this.ws?.close();
    this.probe?.close();
    this.poll?.stop();
    this.ws = this.probe = this.poll = null;
    this.setState(state);
  }

  /**
   * A fresh ticket; final answers (403, 404) finish the connection and return null.
   * @returns {Promise<object|null>}
   */
  async ticket() {
    try {
      const ticket = await fetchTicket(this.ticketUrl);
      this.handlers.onUser(ticket.user);
      return ticket;
    } catch (err) {
      if (err.status === 403) {
        this.finish(err.code === "sign_in_required" ? "denied" : "forbidden");
        return null;
      }
      if (err.status === 404) {
        // `unknown_room` is also a private room this user may no longer enter (a removed
        // member): Django does not say which, so neither does the page.
        this.finish(err.code === "room_archived" ? "archived" : "forbidden");
        return null;
      }
      throw err;
    }
  }

  /**
   * Where to resume: the last catch-up page while one is under way (newer live messages may
   * be shown above a gap), else the highest id shown; 0 when the room was empty when last
   * heard from (without `since` the server would send only the newest messages).
   * @returns {number|null}
   */
  resumeSince() {
    if (this.catchingUp) return this.cursor;
    return this.getSince() ?? (this.synced ? 0 : null);
  }

  /**
   * After a page of catch-up (hello's, a `history` frame's, a poll answer's): note where it
   * ends and whether more follow. On a socket, asks for the next page at once.
   * @param {object[]} messages the page, in id order.
   * @param {boolean} hasMore
   * @param {WsTransport|null} ws the socket it came on (null for long polling).
   */
  caughtUpTo(messages, hasMore, ws) {
    this.synced = true;
    const last = messages?.length ? messages[messages.length - 1].id : null;
    if (!hasMore || !Number.isSafeInteger(last)) {
      this.catchingUp = false;
      this.cursor = null;
      return;
    }
    this.catchingUp = true;
    this.cursor = last;
    if (ws) this.requestHistory(ws);
  }

  /** Asks the socket for the page after `cursor` (one request at a time). */
  requestHistory(ws) {
    clearTimeout(this.historyTimer);
    if (ws !== this.ws || !this.catchingUp) return;
    // When the socket is no longer open this sends nothing: the reconnect resumes from `cursor`.
    ws.send({ type: "history", after: this.cursor });
  }

  /** Every frame after hello, from the live socket or the probe that became it. */
  onSocketFrame(ws, frame) {
    if (ws !== this.ws) {
      this.handlers.onFrame(frame);
      return;
    }
    if (frame.type === "history") {
      if (!Array.isArray(frame.messages)) return;
      this.handlers.onFrame(frame);
      this.caughtUpTo(frame.messages, frame.has_more === true, ws);
      return;
    }
    if (frame.type === "error" && !frame.nonce && this.catchingUp) {
      if (frame.code === "rate_limited" || frame.code === "busy") {
        // Our history request was refused for now: ask again when the server says.
        const seconds = Number(frame.retry_after);
        const ms = Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : HISTORY_RETRY_MS;
        clearTimeout(this.historyTimer);
        this.historyTimer = setTimeout(() => this.requestHistory(ws), ms);
      }
    }
    this.handlers.onFrame(frame);
  }

  socketUrl(ticket) {
    const since = this.resumeSince();
    return since == null ? ticket.ws_url : withParam(ticket.ws_url, "since", since);
  }

  /** A fresh ticket; when Django does not answer, `onFailure` runs and the result is null. */
  async ticketOr(onFailure) {
    try {
      return await this.ticket();
    } catch {
      onFailure();
      return null;
    }
  }

  async connect() {
    // One attempt at a time ("Reconnect now" pressed while a ticket is on its way).
    if (this.finished || this.ticketPending) return;
    clearTimeout(this.reconnectTimer);
    this.setState(this.state === null || this.state === "connecting" ? "connecting" : "reconnecting", {
      inMs: 0,
    });
    // Django did not answer: same treatment as a socket that did not open.
    this.ticketPending = true;
    let ticket;
    try {
      ticket = await this.ticketOr(() => this.scheduleReconnect());
    } finally {
      this.ticketPending = false;
    }
    if (!ticket || this.finished) return;
    const ws = this.openSocket(ticket);
    this.ws = ws;
    clearTimeout(this.giveUpTimer);
    this.giveUpTimer = setTimeout(() => this.giveUpOnSocket(ws), this.socketGiveUpMs);
  }

  /**
   * A socket whose events go to the live path while it is `this.ws` and to the probe path
   * while it is `this.probe` (a socket given up on keeps trying as a probe).
   */
  openSocket(ticket) {
    const ws = new WsTransport(this.socketUrl(ticket), {
      onHello: (frame) => {
        if (ws === this.probe) this.probeHello(ws, frame);
        else this.onSocketHello(ws, frame);
      },
      onFrame: (frame) => this.onSocketFrame(ws, frame),
      onClose: (info) => {
        if (ws === this.probe) {
          this.probe = null;
          if (this.poll) this.scheduleProbe();
        } else {
          this.onSocketClose(ws, info);
        }
      },
    });
    return ws;
  }

  /**
   * The socket opened (or is still opening) but said nothing for `socketGiveUpMs`: a proxy that
   * accepts sockets and never forwards them, or a very slow server. Poll now; the socket goes
   * on as a probe and takes over if its hello still comes.
   */
  giveUpOnSocket(ws) {
    if (ws !== this.ws || this.finished || ws.hadHello || ws.closed) return;
    this.ws = null;
    this.probe?.close();
    this.probe = ws;
    this.startPolling();
  }

  /** A probe said hello: it takes over from polling. */
  probeHello(probe, frame) {
    this.probe = null;
    clearTimeout(this.reconnectTimer);
    if (this.ws && this.ws !== probe) this.ws.close();
    this.poll?.stop();
    this.poll = null;
    this.ws = probe;
    this.onSocketHello(probe, frame);
  }

  onSocketHello(ws, frame) {
    if (ws !== this.ws) return;
    clearTimeout(this.giveUpTimer);
    this.everHello = true;
    this.attempt = 0;
    this.earlyFailures = 0;
    this.mode = "ws";
    this.setState("live");
    this.handlers.onFrame(frame);
    this.caughtUpTo(frame.history, frame.has_more === true, ws);
    this.handlers.onReady();
  }

  onSocketClose(ws, { code, hadHello }) {
    if (ws !== this.ws || this.finished) return;
    this.ws = null;
    this.mode = null;
    if (code === 4004) {
      this.finish("archived");
      return;
    }
    if (code === 4005) {
      this.finish("deleted");
      return;
    }
    // 4003 (access revoked) takes the ordinary path below: the reconnect fetches a fresh ticket,
    // and Django's answer decides whether this page may stay in the room.
    clearTimeout(this.giveUpTimer);
    if (!hadHello) {
      this.earlyFailures += 1;
      // A page whose sockets never worked falls back at the first refusal (a proxy that blocks
      // WebSockets); one that had a socket allows one more try (a restart of the chat server).
      if (!this.everHello || this.earlyFailures >= FALLBACK_AFTER) {
        this.startPolling();
        return;
      }
    } else {
      this.attempt = 0;
    }
    if (code === 1001 && hadHello) {
      // The server is restarting on purpose: come back soon, spread out over a second.
      this.scheduleReconnect(Math.random() * GOING_AWAY_JITTER_MS);
      return;
    }
    this.scheduleReconnect();
  }

  /** Waits (backoff + jitter unless `delay` is given), then connects with a fresh ticket. */
  scheduleReconnect(delay) {
    if (this.finished) return;
    clearTimeout(this.reconnectTimer);
    const ms = delay ?? backoffDelay(this.attempt);
    this.attempt += 1;
    if (navigator.onLine === false) {
      this.setState("offline");
    } else {
      this.setState("reconnecting", { inMs: ms, at: Date.now() + ms });
    }
    this.reconnectTimer = setTimeout(() => this.connect(), ms);
  }

  /**
   * Long polling, kept only once a poll actually answers: when the chat server is down entirely,
   * polling fails too and the socket backoff goes on instead.
   */
  async startPolling() {
    if (this.finished || this.poll) return;
    const ticket = await this.ticketOr(() => this.scheduleReconnect());
    if (!ticket || this.finished || this.poll) return;
    let healthy = false;
    const poll = new PollTransport({
      pollUrl: ticket.poll_url,
      since: this.resumeSince(),
      renewTicket: async () => {
        const fresh = await this.ticket();
        // No ticket: Django refused and `ticket()` already finished the connection (which
        // stopped this poll loop); the loop sees it stopped.
        if (!fresh) throw new Error("no ticket");
        return fresh;
      },
      onFrame: (frame) => this.handlers.onFrame(frame),
      onAnswer: (messages, hasMore) => {
        // The poll loop itself polls again at once after a page with more to come.
        this.caughtUpTo(messages, hasMore, null);
      },
      onGone: (state) => {
        if (!this.finished) this.finish(state);
      },
      onHealthy: () => {
        if (healthy || poll !== this.poll) return;
        healthy = true;
        this.attempt = 0;
        this.mode = "poll";
        this.setState("polling");
        this.handlers.onReady();
        this.scheduleProbe();
      },
      onTrouble: () => {
        if (poll !== this.poll) return;
        if (!healthy) {
          // Neither transport works: the server is down, not just its sockets blocked.
          poll.stop();
          this.poll = null;
          this.earlyFailures = 0;
          this.scheduleReconnect();
        } else if (this.mode === "poll") {
          this.mode = null;
          healthy = false;
          this.setState("reconnecting", { inMs: 0 });
        }
      },
    });
    this.poll = poll;
    poll.start();
  }

  scheduleProbe() {
    clearTimeout(this.probeTimer);
    this.probeTimer = setTimeout(() => this.probeSocket(), SOCKET_RETRY_WHILE_POLLING_MS);
  }

  /** While polling, tries a socket in the background; on hello it takes over from polling. */
  async probeSocket() {
    if (this.finished || !this.poll || this.probe) return;
    const ticket = await this.ticketOr(() => this.scheduleProbe());
    if (!ticket || this.finished || !this.poll || this.probe) return;
    this.probe = this.openSocket(ticket);
  }

  /**
   * The reader pressed "Reconnect now": skip the rest of the backoff wait and try at once (a
   * fresh ticket, a socket; the usual fallback applies). Nothing to do while connected.
   */
  reconnectNow() {
    if (this.finished || this.mode !== null || this.ws || this.poll) return;
    this.attempt = 0;
    this.connect();
  }

  onBrowserOnline() {
    if (this.finished) return;
    if (this.poll && !this.probe) {
      // The network changed: a socket may work now, so try it without waiting for the timer.
      clearTimeout(this.probeTimer);
      this.probeSocket();
      return;
    }
    if (this.mode === null && !this.ws && !this.poll) {
      this.attempt = 0;
      this.connect();
    }
  }

  /**
   * Sends a frame (`message`, `typing`) over whichever transport is live: a socket frame, or a
   * long-poll POST whose answer comes back through `onFrame` (the stored `message`, an `ack`,
   * or an `error` with the nonce) like a socket's.
   * @param {object} frame
   * @returns {boolean} false when no transport can take it now (nothing was sent).
   */
  send(frame) {
    if (this.mode === "ws" && this.ws) return this.ws.send(frame);
    if (this.mode === "poll" && this.poll) {
      this.poll.send(frame);
      return true;
    }
    return false;
  }
}
