/**
 * Unit tests for the reconnect backoff of chat/static/chat/client/connection.js (`backoffDelay`; the
 * sender's resend delay, `retryDelay`, is pinned in sender.test.js).
 *
 * What they pin: full jitter (a uniform delay from 0 up to the bound, so a crowd of clients
 * dropped together does not come back together), a bound that doubles per attempt from
 * `BACKOFF_BASE_MS` and stops at `BACKOFF_CAP_MS`, and a finite delay however many attempts.
 */

import assert from "node:assert/strict";
import { test } from "node:test";

const { backoffDelay, BACKOFF_BASE_MS, BACKOFF_CAP_MS } = await import(
  "../../chat/static/chat/client/connection.js"
);

const justBelowOne = 1 - Number.EPSILON;

test("the bound doubles per attempt from the base and stops at the cap", () => {
  const bounds = [0, 1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelay(attempt, () => 1));
  assert.deepEqual(
    bounds,
    [0, 1, 2, 3, 4, 5, 6, 7].map((n) => Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** n)),
  );
  assert.equal(bounds[0], BACKOFF_BASE_MS);
  assert.equal(bounds.at(-1), BACKOFF_CAP_MS);
});

test("full jitter: the delay is the random fraction of the bound, from 0", () => {
  assert.equal(backoffDelay(3, () => 0), 0);
  assert.equal(backoffDelay(3, () => 0.25), BACKOFF_BASE_MS * 2);
  assert.ok(backoffDelay(3, () => justBelowOne) < BACKOFF_BASE_MS * 8);
});

test("a client that has failed for hours still waits a finite, capped time", () => {
  for (const attempt of [20, 1000, 1e9, Number.MAX_SAFE_INTEGER]) {
    const delay = backoffDelay(attempt, () => justBelowOne);
    assert.ok(Number.isFinite(delay) && delay > 0 && delay < BACKOFF_CAP_MS, String(attempt));
  }
});

test("with Math.random, delays spread over the whole window", () => {
  const delays = Array.from({ length: 2000 }, () => backoffDelay(4));
  const bound = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 16);
  assert.ok(delays.every((ms) => ms >= 0 && ms < bound));
  // Each quarter of the window is hit (the chance that one is missed is about 4 * 0.75^2000).
  const quarters = new Set(delays.map((ms) => Math.floor((ms / bound) * 4)));
  assert.deepEqual([...quarters].sort(), [0, 1, 2, 3]);
});
