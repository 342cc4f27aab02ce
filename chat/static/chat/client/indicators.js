/**
 * Small views around the message list: the connection state badge, the typing indicator and the
 * unread count in the tab title.
 */

import { typingNodes, typingText } from "./render.js";

const STATE_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  polling: "Polling (fallback)",
  offline: "Offline",
  archived: "Room archived",
  deleted: "Room deleted",
  denied: "Sign in to chat in this room",
  forbidden: "You cannot join this room",
};

/** States after which nothing more will happen on this page. */
export const FINAL_STATES = new Set(["archived", "deleted", "denied", "forbidden"]);

/** Renders the connection state into `#connection-state`, with a live countdown. */
export class StatusView {
  /**
   * @param {HTMLElement} element `#connection-state`
   * @param {HTMLElement} root `#chat-room`, which gets `data-connection` for styling.
   */
  constructor(element, root) {
    this.element = element;
    this.root = root;
    this.timer = null;
  }

  /**
   * @param {string} state
   * @param {{at?: number}} [detail] `at`: when the next reconnect attempt happens.
   */
  show(state, detail = {}) {
    clearInterval(this.timer);
    this.timer = null;
    this.element.dataset.state = state;
    this.root.dataset.connection = state;
    if (state === "reconnecting" && detail.at && detail.at > Date.now()) {
      const tick = () => {
        const seconds = Math.ceil((detail.at - Date.now()) / 1000);
        if (seconds <= 0) {
          clearInterval(this.timer);
          this.timer = null;
          this.element.textContent = STATE_LABELS.reconnecting;
        } else {
          this.element.textContent = `Reconnecting in ${seconds}s…`;
        }
      };
      tick();
      this.timer = setInterval(tick, 1000);
      return;
    }
    this.element.textContent = STATE_LABELS[state] || state;
  }
}

/** How long "alice is typing…" stays without a new typing frame. */
const TYPING_SHOWN_MS = 4000;

/** Who is typing right now, shown in `#typing-indicator`. */
export class TypingIndicator {
  /** @param {HTMLElement} element */
  constructor(element) {
    this.element = element;
    /** @type {Map<string, number>} name -> timer */
    this.timers = new Map();
  }

  /** @param {string} name someone else started or kept typing. */
  show(name) {
    clearTimeout(this.timers.get(name));
    this.timers.set(
      name,
      setTimeout(() => this.stop(name), TYPING_SHOWN_MS),
    );
    this.render();
  }

  /** @param {string} name stopped typing (timed out, or their message arrived). */
  stop(name) {
    if (!this.timers.has(name)) return;
    clearTimeout(this.timers.get(name));
    this.timers.delete(name);
    this.render();
  }

  render() {
    const names = [...this.timers.keys()];
    if (this.element.textContent !== typingText(names)) {
      this.element.replaceChildren(...typingNodes(names));
    }
  }
}

/** Counts messages that arrive while the tab is hidden and shows them in the title. */
export class UnreadCounter {
  /** @param {Document} doc */
  constructor(doc) {
    this.doc = doc;
    this.baseTitle = doc.title;
    this.count = 0;
    doc.addEventListener("visibilitychange", () => {
      if (doc.visibilityState === "visible") this.reset();
    });
  }

  /** A message from someone else arrived. */
  bump() {
    if (this.doc.visibilityState !== "hidden") return;
    this.count += 1;
    this.doc.title = `(${this.count}) ${this.baseTitle}`;
  }

  reset() {
    this.count = 0;
    this.doc.title = this.baseTitle;
  }
}
