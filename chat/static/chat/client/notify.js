/**
 * Opt-in desktop notifications (the browser Notification API) for feed events.
 *
 * Permission is asked only from a click on the button this module wires (a user gesture), never
 * on load. `maybeNotify(event, context)` shows one notification when `shouldNotify` says so
 * (unread-state.js: mentions and direct messages, tab hidden, not your own message, room not
 * muted); clicking it
 * opens the room. The button hides once permission is granted or denied for good.
 */

import { shouldNotify } from "./unread-state.js";

/** @param {HTMLButtonElement | null} button */
export function wireNotificationButton(button) {
  const api = globalThis.Notification;
  if (!button) return;
  if (!api) {
    button.hidden = true;
    return;
  }
  const refresh = () => {
    button.hidden = api.permission !== "default";
  };
  button.addEventListener("click", async () => {
    try {
      await api.requestPermission();
    } finally {
      refresh();
    }
  });
  refresh();
}

/**
 * @param {object} event a feed event
 * @param {{meId: string, currentRoom?: string, muted: boolean, roomUrl: (slug: string) => string}} context
 * @returns {Notification | null}
 */
export function maybeNotify(event, context) {
  const api = globalThis.Notification;
  if (!api || api.permission !== "granted") return null;
  const hidden = document.visibilityState === "hidden";
  if (!shouldNotify(event, { hidden, ...context })) return null;
  const where = event.room_name || event.room;
  const who = event.author?.name || "Someone";
  let title = event.here ? `@here in ${where}` : `${who} mentioned you in ${where}`;
  if (event.type === "room_message") title = `${who} sent you a direct message`;
  const notification = new api(title, { body: event.excerpt || "", tag: `${event.type}-${event.room}-${event.id}` });
  notification.onclick = () => {
    globalThis.focus?.();
    globalThis.location.assign(context.roomUrl(event.room));
  };
  return notification;
}
