/**
 * Opening a search result in context (`/chats/<slug>/?around=<id>`): the server renders the
 * history around message `<id>`; this module scrolls to that message, marks it
 * (`.search-target`) and gives it focus, and keeps it in view while the newer messages the
 * live connection catches up with are added below, until the reader scrolls, types or clicks.
 *
 * main.js calls `openSearchTarget` once the room is started (after its own scroll to the bottom).
 */

/** The `around` id of the page URL, or null. @returns {number|null} */
export function aroundId(search = window.location.search) {
  const raw = new URLSearchParams(search).get("around");
  if (!raw || !/^[0-9]{1,16}$/.test(raw)) return null;
  const id = Number(raw);
  return Number.isSafeInteger(id) ? id : null;
}

/** Scrolls to and marks the message; returns the element, or null when it is not shown. */
export function showInContext(list, id) {
  const li = list.querySelector(`:scope > li.message[data-id="${id}"]`);
  if (!li) return null;
  li.classList.add("search-target");
  li.setAttribute("aria-current", "true");
  li.tabIndex = -1;
  li.scrollIntoView({ block: "center" });
  li.focus({ preventScroll: true });
  return li;
}

/** When the page was opened with `?around=<id>`, shows that message and keeps it in view. */
export function openSearchTarget(list) {
  const id = aroundId();
  if (!list || id === null) return;
  if (!showInContext(list, id)) return;
  // Catch-up pages and live messages land below; the client scrolls down only when the reader
  // is near the bottom. Keep the target centred until the reader takes over.
  const observer = new MutationObserver(() => showInContext(list, id));
  observer.observe(list, { childList: true });
  const stop = () => observer.disconnect();
  for (const type of ["wheel", "touchstart", "keydown", "pointerdown"]) {
    window.addEventListener(type, stop, { once: true, passive: true });
  }
}
