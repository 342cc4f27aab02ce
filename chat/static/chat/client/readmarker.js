/**
 * Read state on the room page (signed-in readers): the "New messages" divider, the
 * "Jump to newest ↓" button, and moving the read position (docs/protocol.md, "Read state").
 *
 * The divider marks the first message from someone else after the position the page was
 * rendered with (`data-last-read-id`; none when the reader never opened the room). The position
 * moves (`POST <read-url>` with the newest id) when the newest message has been on screen: the
 * tab visible and the list scrolled to the bottom; checked after scrolling, new messages and the
 * tab becoming visible, at most once per `READ_EVERY_MS`. Opening the room posts once at
 * once, and a visible tab again every `SEEN_EVERY_MS` (each post marks the room seen, which
 * @here and autocomplete read).
 */

import { csrfToken } from "./api.js";

const READ_EVERY_MS = 500;
/** While the tab is visible the room counts as open (seen) for @here: refreshed this often. */
const SEEN_EVERY_MS = 120_000;

export function wireReadMarker({ list, timeline, readUrl, lastReadId, meId, button }) {
  let sent = lastReadId ?? 0;
  let timer = null;
  let divided = lastReadId === null;

  const post = async (id) => {
    try {
      await fetch(readUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ last_read_id: id }),
      });
    } catch {
      // The next check sends it again (sent is only moved on success below).
      return false;
    }
    return true;
  };

  const divide = () => {
    if (divided) return;
    for (const li of list.querySelectorAll(":scope > li.message[data-id]")) {
      if (Number(li.dataset.id) > lastReadId && li.dataset.author !== meId) {
        li.classList.add("first-unread");
        li.setAttribute("aria-describedby", "new-messages-label");
        divided = true;
        return;
      }
    }
  };

  const check = () => {
    timer = null;
    button.hidden = timeline.isNearBottom();
    if (document.visibilityState !== "visible" || !timeline.isNearBottom()) return;
    const newest = timeline.highestId();
    if (newest === null || newest <= sent) return;
    const previous = sent;
    sent = newest;
    post(newest).then((ok) => {
      if (!ok && sent === newest) sent = previous;
    });
  };

  const soon = () => {
    button.hidden = timeline.isNearBottom();
    if (timer === null) timer = setTimeout(check, READ_EVERY_MS);
  };

  button.addEventListener("click", () => {
    timeline.scrollToBottom();
    soon();
  });
  list.addEventListener("scroll", soon);
  document.addEventListener("visibilitychange", soon);
  new MutationObserver(() => {
    divide();
    soon();
  }).observe(list, { childList: true });
  divide();
  post(sent);
  soon();
  setInterval(() => {
    if (document.visibilityState === "visible") post(sent);
  }, SEEN_EVERY_MS);
}
