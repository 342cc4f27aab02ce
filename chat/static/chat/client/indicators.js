/**
 * Small views around the message list: the connection state badge (with its "Reconnect now"
 * button and a screen-reader announcement per change of state), the outbox summary during an
 * outage, the typing indicator and the unread count in the tab title.
 */

import { typingNodes, typingText } from "./render.js";

const STATE_LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  polling: "Live (polling)",
  offline: "Offline",
  archived: "Room archived",
  deleted: "Room deleted",
  denied: "Sign in to chat in this room",
  forbidden: "You cannot join this room",
};

/** States after which nothing more will happen on this page. */
export const FINAL_STATES = new Set(["archived", "deleted", "denied", "forbidden"]);

/** States in which "Reconnect now" is offered. */
const RECONNECTABLE = new Set(["reconnecting", "offline"]);

/**
 * Renders the connection state into `#connection-state`, with a live countdown. The badge is not
 * a live region (its countdown would be read out every second): `#connection-announce`, a
 * visually hidden `role="status"`, gets the state's words once per change of state.
 */
export class StatusView {
  /**
   * @param {HTMLElement} element `#connection-state`
   * @param {HTMLElement} root `#chat-room`, which gets `data-connection` for styling.
   */
  constructor(element, root) {
    this.element = element;
    this.root = root;
    this.timer = null;
    this.announcer = root.querySelector("#connection-announce");
    this.reconnectButton = root.querySelector("#reconnect-now");
    this.announced = null;
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
    if (this.reconnectButton) this.reconnectButton.hidden = !RECONNECTABLE.has(state);
    if (this.announcer && state !== this.announced) {
      this.announced = state;
      this.announcer.textContent = STATE_LABELS[state] || state;
    }
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

/**
 * `#outbox-status`: during an outage, how many typed messages wait, instead of an endless
 * "Sending…" on each ("Offline — 2 messages will be sent when you're back").
 */
export class OutboxStatus {
  /**
   * @param {HTMLElement} element `#outbox-status`
   * @param {HTMLElement} list `#message-list`, whose `li.pending` items (not failed) wait.
   */
  constructor(element, list) {
    this.element = element;
    this.list = list;
    this.state = null;
    new MutationObserver(() => this.render()).observe(list, {
      childList: true,
      attributes: true,
      attributeFilter: ["class"],
      subtree: true,
    });
  }

  /** @param {string} state the connection's state. */
  setState(state) {
    this.state = state;
    this.render();
  }

  render() {
    const waiting = this.list.querySelectorAll(":scope > li.pending:not(.failed)").length;
    const down = RECONNECTABLE.has(this.state);
    let text = "";
    if (waiting && down) {
      const what = waiting === 1 ? "1 message" : `${waiting} messages`;
      const when = this.state === "offline" ? "you're back" : "the connection is back";
      text = `${this.state === "offline" ? "Offline" : "Not connected"} — ${what} will be sent when ${when}`;
    }
    if (this.element.textContent !== text) this.element.textContent = text;
    this.element.hidden = !text;
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

  /** Nobody is shown typing any more (the room was archived). */
  clear() {
    for (const name of [...this.timers.keys()]) this.stop(name);
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
