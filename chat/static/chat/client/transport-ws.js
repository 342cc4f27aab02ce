/**
 * The WebSocket transport: one socket, JSON frames in both directions (docs/protocol.md,
 * "WebSocket"). It knows nothing about reconnecting; connection.js decides what a close means.
 */

/** How long the socket may take to open and say hello before it counts as failed. */
const HELLO_TIMEOUT_MS = 10000;

/** One WebSocket connection to the chat server. */
export class WsTransport {
  /**
   * @param {string} url the complete `ws_url` (with `since` when resuming).
   * @param {{
   *   onHello: (frame: object) => void,
   *   onFrame: (frame: object) => void,
   *   onClose: (info: {code: number, reason: string, hadHello: boolean}) => void,
   * }} handlers
   */
  constructor(url, handlers) {
    this.handlers = handlers;
    this.hadHello = false;
    this.closed = false;
    try {
      this.socket = new WebSocket(url);
    } catch {
      // A malformed or blocked URL throws synchronously; report it like a failed connection.
      this.socket = null;
      queueMicrotask(() => this.finish(1006, ""));
      return;
    }
    this.helloTimer = setTimeout(() => this.abort(), HELLO_TIMEOUT_MS);
    this.socket.addEventListener("message", (event) => this.onMessage(event));
    this.socket.addEventListener("close", (event) => this.finish(event.code, event.reason));
    // "error" is always followed by "close", which carries the code; nothing to do here.
  }

  /** @returns {boolean} whether frames can be sent now. */
  isOpen() {
    return !this.closed && this.hadHello && this.socket?.readyState === WebSocket.OPEN;
  }

  /**
   * Sends one frame; false when the socket is not open (the caller keeps the data).
   * @param {object} frame
   * @returns {boolean}
   */
  send(frame) {
    if (!this.isOpen()) return false;
    try {
      this.socket.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the socket without reporting it (the caller already moved on). */
  close(code = 1000) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.helloTimer);
    try {
      this.socket?.close(code);
    } catch {
      // Already closing.
    }
  }

  abort() {
    try {
      this.socket?.close(4000, "no hello");
    } catch {
      // Already closing.
    }
    this.finish(1006, "no hello");
  }

  onMessage(event) {
    if (this.closed || typeof event.data !== "string") return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!frame || typeof frame !== "object") return;
    if (frame.type === "hello" && !this.hadHello) {
      this.hadHello = true;
      clearTimeout(this.helloTimer);
      this.handlers.onHello(frame);
      return;
    }
    if (this.hadHello) this.handlers.onFrame(frame);
  }

  finish(code, reason) {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.helloTimer);
    this.handlers.onClose({ code, reason: reason || "", hadHello: this.hadHello });
  }
}
