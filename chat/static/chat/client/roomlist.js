/**
 * The room list, live (`<script type="module">` on chat/room_list.html, signed-in users only):
 * unread and mention badges per room from `GET /api/attention/`, kept current by the personal
 * feed (feed.js); rooms with unread messages move up (direct messages first, once they exist:
 * `data-kind="direct"`); the tab title shows the total; mentions and direct messages may raise
 * desktop notifications (notify.js). A direct message in a conversation not on the page, or an
 * `invitation` event, refills that section (`[data-live-section]`) from a fresh copy of the page.
 */

import { Feed } from "./feed.js";
import { maybeNotify, wireNotificationButton } from "./notify.js";
import { titleWithTotal, UnreadState } from "./unread-state.js";

/** Badge text: counts over 99 are "99+". */
const countText = (n) => (n > 99 ? "99+" : String(n));

export function startRoomList(root) {
  const state = new UnreadState();
  const baseTitle = document.title;
  const cards = new Map();
  const collect = () => {
    cards.clear();
    [...root.querySelectorAll(".room-card[data-slug]")].forEach((li, i) => {
      cards.set(li.dataset.slug, li);
      li.dataset.index = String(i);
    });
  };
  collect();
  const meId = root.dataset.userId || "";
  const roomUrl = (slug) => cards.get(slug)?.querySelector("a.room-link")?.href || `./${slug}/`;

  const draw = (slug) => {
    const li = cards.get(slug);
    if (!li) return;
    const counts = state.get(slug);
    let badge = li.querySelector(".unread-badge");
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "unread-badge";
      li.querySelector("a.room-link").after(badge);
    }
    badge.hidden = counts.unread === 0;
    badge.textContent = countText(counts.unread);
    badge.setAttribute("aria-label", `${counts.unread} unread`);
    badge.classList.toggle("muted", counts.muted);
    let mention = li.querySelector(".mention-badge");
    if (!mention) {
      mention = document.createElement("span");
      mention.className = "mention-badge";
      badge.after(mention);
    }
    mention.hidden = counts.mentions === 0;
    mention.textContent = `@${countText(counts.mentions)}`;
    mention.setAttribute("aria-label", `${counts.mentions} mentions`);
    li.classList.toggle("has-unread", counts.unread > 0 && !counts.muted);
  };

  const order = () => {
    // Stable, within each list (direct messages have their own, above the rooms): unread
    // direct messages, then unread rooms, then the rest, each in page order.
    const rank = (li) => {
      const unread = li.classList.contains("has-unread");
      if (unread && li.dataset.kind === "direct") return 0;
      return unread ? 1 : 2;
    };
    const lists = new Map();
    for (const li of cards.values()) {
      const parent = li.parentElement;
      if (!parent) continue;
      if (!lists.has(parent)) lists.set(parent, []);
      lists.get(parent).push(li);
    }
    for (const [parent, items] of lists) {
      const sorted = items.sort(
        (a, b) => rank(a) - rank(b) || Number(a.dataset.index) - Number(b.dataset.index),
      );
      if (sorted.some((li, i) => parent.children[i] !== li)) parent.append(...sorted);
    }
  };

  const drawAll = () => {
    for (const slug of cards.keys()) draw(slug);
    order();
    document.title = titleWithTotal(baseTitle, state.total());
    root.dataset.feedReady = "true";
  };

  const reload = async () => {
    try {
      const response = await fetch(root.dataset.attentionUrl, { credentials: "same-origin" });
      if (response.ok) state.load(await response.json());
    } catch {
      return; // the next hello reads again
    }
    drawAll();
  };

  // A new direct conversation or invitation: the server renders the sections (one template),
  // this replaces their slots from a fresh copy of the page; repeated events share one fetch.
  let refilling = null;
  const refill = (names) => {
    if (refilling) return refilling.then(() => refill(names));
    refilling = (async () => {
      try {
        const response = await fetch(window.location.href, { credentials: "same-origin" });
        if (!response.ok) return;
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        for (const name of names) {
          const slot = root.querySelector(`[data-live-section="${name}"]`);
          const next = fresh.querySelector(`[data-live-section="${name}"]`);
          if (slot && next) slot.replaceChildren(...[...next.childNodes].map((n) => document.importNode(n, true)));
        }
      } catch {
        return; // the next event or page load shows it
      } finally {
        refilling = null;
      }
      collect();
      drawAll();
    })();
    return refilling;
  };

  wireNotificationButton(document.getElementById("enable-notifications"));
  const feed = new Feed({
    ticketUrl: root.dataset.feedTicketUrl,
    onHello: reload,
    onFrame: (event) => {
      if (event?.type === "invitation") {
        refill(["invitations"]);
        return;
      }
      if (event?.direct === true && typeof event.room === "string" && !cards.has(event.room)) {
        refill(["direct"]);
      }
      const slug = state.apply(event);
      if (slug === null) return;
      draw(slug);
      order();
      document.title = titleWithTotal(baseTitle, state.total());
      maybeNotify(event, { meId, muted: state.get(slug).muted, roomUrl });
    },
  });
  feed.start();
  return { state, feed };
}

const root = document.getElementById("room-list-page");
if (root?.dataset.feedTicketUrl) startRoomList(root);
