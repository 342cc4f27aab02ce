/**
 * Unit tests for static/chat/client/daygroups.js: which messages start a day (and the divider's
 * words) and which continue their author's group. Times are built in the local zone, as the
 * browser shows them.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

import { GROUP_GAP_MS, dayKey, dayLabel, planGroups } from "../../chat/static/chat/client/daygroups.js";

const at = (y, m, d, h = 12, min = 0, s = 0) => new Date(y, m - 1, d, h, min, s).getTime();
const NOW = at(2026, 12, 1, 9, 30);

test("dayKey is the local calendar day", () => {
  assert.equal(dayKey(at(2026, 12, 1, 0, 0)), "2026-12-01");
  assert.equal(dayKey(at(2026, 12, 1, 23, 59)), "2026-12-01");
  assert.equal(dayKey(at(2026, 1, 9, 8)), "2026-01-09");
});

test("dayLabel says Today, Yesterday, or the date (with the year only when it differs)", () => {
  assert.equal(dayLabel(at(2026, 12, 1, 0, 1), NOW, "en-US"), "Today");
  assert.equal(dayLabel(at(2026, 11, 30, 23, 59), NOW, "en-US"), "Yesterday");
  assert.equal(dayLabel(at(2026, 11, 30, 0, 0), NOW, "en-US"), "Yesterday");
  assert.equal(dayLabel(at(2026, 11, 29, 18), NOW, "en-US"), "Sunday, November 29");
  assert.equal(dayLabel(at(2025, 12, 31, 18), NOW, "en-US"), "Wednesday, December 31, 2025");
  // Yesterday across the turn of a month and a year.
  assert.equal(dayLabel(at(2025, 12, 31, 22), at(2026, 1, 1, 0, 5), "en-US"), "Yesterday");
});

test("a divider goes before the first message of each day, never twice for one day", () => {
  const plan = planGroups(
    [
      { author: "a", sentAt: at(2026, 11, 29, 10) },
      { author: "a", sentAt: at(2026, 11, 29, 10, 1) },
      { author: "b", sentAt: at(2026, 11, 30, 10) },
      { author: "b", sentAt: at(2026, 12, 1, 8) },
      { author: "c", sentAt: at(2026, 12, 1, 9) },
    ],
    NOW,
    "en-US",
  );
  assert.deepEqual(
    plan.map((p) => p.label),
    ["Sunday, November 29", null, "Yesterday", "Today", null],
  );
  assert.deepEqual(
    plan.map((p) => p.day),
    ["2026-11-29", null, "2026-11-30", "2026-12-01", null],
  );
});

test("one author's messages within the gap form a group; anything else starts a new one", () => {
  const t = at(2026, 12, 1, 9);
  const plan = planGroups(
    [
      { author: "a", sentAt: t },
      { author: "a", sentAt: t + 1000 },
      { author: "a", sentAt: t + 1000 + GROUP_GAP_MS }, // exactly the gap: still grouped
      { author: "a", sentAt: t + 2000 + 2 * GROUP_GAP_MS + 1 }, // more than the gap
      { author: "b", sentAt: t + 2000 + 2 * GROUP_GAP_MS + 2 }, // someone else
      { author: "a", sentAt: t + 2000 + 2 * GROUP_GAP_MS + 3 }, // back to a: new group
      { author: "", sentAt: t + 2000 + 2 * GROUP_GAP_MS + 4 }, // unknown author
      { author: "", sentAt: t + 2000 + 2 * GROUP_GAP_MS + 5 }, // unknown: never grouped
    ],
    NOW,
  );
  assert.deepEqual(
    plan.map((p) => p.continued),
    [false, true, true, false, false, false, false, false],
  );
});

test("a group never spans midnight, and a message without a time stays apart on the same day", () => {
  const plan = planGroups(
    [
      { author: "a", sentAt: at(2026, 11, 30, 23, 59) },
      { author: "a", sentAt: at(2026, 12, 1, 0, 1) },
      { author: "a", sentAt: Number.NaN },
      { author: "a", sentAt: at(2026, 12, 1, 0, 2) },
    ],
    NOW,
    "en-US",
  );
  assert.deepEqual(
    plan.map((p) => [p.label, p.continued]),
    [
      ["Yesterday", false],
      ["Today", false],
      [null, false],
      [null, false],
    ],
  );
});
