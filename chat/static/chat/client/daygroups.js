/**
 * Day dividers and author groups in the message list, as other chats show them: a divider
 * ("Today", "Yesterday", or the date) before the first message of each local day, and a run of
 * messages from the same author within a few minutes shown as one group, the name and time on
 * its first message only (later ones keep them for screen readers, and their time is still a
 * focusable element that shows on hover and keyboard focus: conversation.css).
 *
 * `planGroups` is pure (items in, decisions out: node --test covers it); `applyGroups` brings the
 * list's DOM in line with the plan, so every way messages arrive (the server's page, hello,
 * live frames, polls, older pages, the reader's unsent ones) ends up drawn the same way, live and
 * after a reload alike.
 */

/** Messages from one author at most this far apart (milliseconds) form one group. */
export const GROUP_GAP_MS = 5 * 60 * 1000;

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The local calendar day of a time, as a sortable key.
 * @param {number} ms milliseconds since the epoch.
 * @returns {string} "YYYY-MM-DD" in the browser's time zone.
 */
export function dayKey(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/**
 * The divider's words for a day.
 * @param {number} ms any time on that day (milliseconds since the epoch).
 * @param {number} now the current time (milliseconds).
 * @param {string|undefined} [locale] defaults to the browser's.
 * @returns {string} "Today", "Yesterday", or e.g. "Monday, November 30" (the year added when it
 *   is not this year's).
 */
export function dayLabel(ms, now, locale) {
  const key = dayKey(ms);
  if (key === dayKey(now)) return "Today";
  // Noon today minus a day is yesterday whatever daylight-saving change lies between.
  const noon = new Date(now);
  noon.setHours(12, 0, 0, 0);
  if (key === dayKey(noon.getTime() - DAY_MS)) return "Yesterday";
  const withYear = new Date(ms).getFullYear() !== new Date(now).getFullYear();
  return dateFormat(locale, withYear).format(new Date(ms));
}

/** Formatters by locale and year-or-not: every pass over the list labels every day again. */
const formats = new Map();

function dateFormat(locale, withYear) {
  const key = `${locale || ""}|${withYear}`;
  if (!formats.has(key)) {
    const options = { weekday: "long", month: "long", day: "numeric" };
    if (withYear) options.year = "numeric";
    formats.set(key, new Intl.DateTimeFormat(locale, options));
  }
  return formats.get(key);
}

/**
 * Decides dividers and groups for messages in list order.
 * @param {{author: string, sentAt: number}[]} items `author` the stable author id ("" when
 *   unknown), `sentAt` milliseconds (NaN when unknown: such a message stays on the day before
 *   and starts a group of its own).
 * @param {number} now milliseconds.
 * @param {string} [locale]
 * @returns {{day: string|null, label: string|null, continued: boolean}[]} per item: the day key
 *   and label when a divider goes before it (else null), and whether it continues the group of
 *   the message before it.
 */
export function planGroups(items, now, locale) {
  const plan = [];
  let day = null;
  let prev = null;
  for (const item of items) {
    const known = Number.isFinite(item.sentAt);
    const key = known ? dayKey(item.sentAt) : day;
    const newDay = known && key !== day;
    const continued =
      !newDay &&
      known &&
      prev !== null &&
      Number.isFinite(prev.sentAt) &&
      Boolean(item.author) &&
      item.author === prev.author &&
      item.sentAt - prev.sentAt >= 0 &&
      item.sentAt - prev.sentAt <= GROUP_GAP_MS;
    plan.push({
      day: newDay ? key : null,
      label: newDay ? dayLabel(item.sentAt, now, locale) : null,
      continued,
    });
    day = key;
    prev = item;
  }
  return plan;
}

/**
 * Brings `#message-list` in line with the plan: inserts, relabels and removes the
 * `<li class="day-divider">` items and toggles `continued` on the messages. Touches the DOM only
 * where something changed.
 * @param {HTMLElement} list
 * @param {number} [now] milliseconds.
 */
export function applyGroups(list, now = Date.now()) {
  const messages = [...list.querySelectorAll(":scope > li.message")];
  const plan = planGroups(
    messages.map((li) => ({
      author: li.dataset.author || "",
      sentAt: Date.parse(li.dataset.sentAt || li.querySelector("time")?.dateTime || ""),
    })),
    now,
  );
  const kept = new Set();
  messages.forEach((li, i) => {
    const { day, label, continued } = plan[i];
    if (li.classList.contains("continued") !== continued) li.classList.toggle("continued", continued);
    if (!day) return;
    let divider = li.previousElementSibling;
    if (!divider || !divider.classList.contains("day-divider") || kept.has(divider)) {
      divider = document.createElement("li");
      divider.className = "day-divider";
      const text = document.createElement("span");
      divider.append(text);
      li.before(divider);
    }
    divider.dataset.day = day;
    const text = divider.firstElementChild;
    if (text.textContent !== label) text.textContent = label;
    kept.add(divider);
  });
  for (const divider of list.querySelectorAll(":scope > li.day-divider")) {
    if (!kept.has(divider)) divider.remove();
  }
}

/**
 * Keeps the list's dividers and groups up to date: after every change to the list, and at
 * local midnight ("Today" becomes "Yesterday").
 * @param {HTMLElement} list
 * @returns {() => void} applies the plan now.
 */
export function watchGroups(list) {
  const observer = new MutationObserver(() => update());
  const observe = () =>
    observer.observe(list, {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ["data-sent-at", "data-author", "data-id"],
    });
  let midnight = null;
  const update = () => {
    observer.disconnect();
    applyGroups(list);
    observe();
    clearTimeout(midnight);
    const next = new Date();
    next.setHours(24, 0, 1, 0);
    midnight = setTimeout(update, next.getTime() - Date.now());
  };
  update();
  return update;
}
