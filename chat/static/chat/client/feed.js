/**
 * The personal feed of a signed-in user (docs/protocol.md, "Personal feed"): a socket on
 * `/ws/@me`, or long polls of `/poll/@me` when the socket cannot open, both with a user ticket
 * from `GET /api/feed/ticket/`. Every frame goes to `onFrame`; a `hello` (a new connection, or a
 * poll cursor the server could not continue) means "read the state again" (`onHello`).
 *
 * Reconnects with full-jitter backoff (the room connection's `backoffDelay`); a poll refused
 * with 403 fetches a fresh ticket. `stop()` ends it.
 */

import { backoffDelay } from "./connection.js";

export class Feed {
  /**
   * @param {{ticketUrl: string, onFrame: (frame: object) => void, onHello?: () => void,
   *   fetchImpl?: typeof fetch, WebSocketImpl?: typeof WebSocket}} options
   */
  constructor({ ticketUrl, onFrame, onHello, fetchImpl, WebSocketImpl }) {
    this.ticketUrl = ticketUrl;
    this.onFrame = onFrame;
    this.onHello = onHello || (() => {});
    this.fetch = fetchImpl || ((...args) => fetch(...args));
    this.WebSocket = WebSocketImpl || globalThis.WebSocket;
    this.attempt = 0;
    this.stopped = false;
    this.polling = false;
    this.socket = null;
  }

  start() {
    this.#connect();
  }

  stop() {
    this.stopped = true;
    this.socket?.close(1000);
  }

  #frame(frame) {
    if (!frame || typeof frame.type !== "string") return;
    if (frame.type === "hello") {
      this.attempt = 0;
      this.onHello();
      return;
    }
    this.onFrame(frame);
  }

  async #ticket() {
    const response = await this.fetch(this.ticketUrl, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`ticket ${response.status}`);
    return response.json();
  }

  #retry(next) {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt++);
    setTimeout(next, delay);
  }

  async #connect() {
    if (this.stopped) return;
    let ticket;
    try {
      ticket = await this.#ticket();
    } catch {
      this.#retry(() => this.#connect());
      return;
    }
    if (this.polling || !this.WebSocket) {
      this.#poll(ticket.poll_url, null);
      return;
    }
    let opened = false;
    const socket = new this.WebSocket(ticket.ws_url);
    this.socket = socket;
    socket.onopen = () => {
      opened = true;
    };
    socket.onmessage = (message) => {
      try {
        this.#frame(JSON.parse(message.data));
      } catch {
        // A frame that is not JSON is ignored (the server never sends one).
      }
    };
    socket.onclose = () => {
      this.socket = null;
      if (this.stopped) return;
      if (!opened) this.polling = true; // blocked socket (proxy): long polls from now on
      this.#retry(() => this.#connect());
    };
  }

  async #poll(url, cursor) {
    while (!this.stopped) {
      let response;
      try {
        const target = cursor ? `${url}&cursor=${encodeURIComponent(cursor)}` : url;
        response = await this.fetch(target, { credentials: "omit" });
      } catch {
        this.#retry(() => this.#poll(url, cursor));
        return;
      }
      if (response.status === 403) {
        // The user ticket expired (or the user signed out): a fresh one decides.
        this.#retry(() => this.#connect());
        return;
      }
      if (!response.ok) {
        this.#retry(() => this.#poll(url, cursor));
        return;
      }
      const answer = await response.json();
      cursor = answer.cursor;
      for (const frame of answer.events || []) this.#frame(frame);
    }
  }
}
