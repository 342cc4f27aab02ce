/**
 * A stand-in for `window.localStorage` (the Web Storage interface) for `node --test`: keys and
 * string values, plus switches to make it refuse writes (quota exceeded) or hold garbage.
 */

export class FakeStorage {
  constructor() {
    /** @type {Map<string, string>} */
    this.items = new Map();
    /** While true, `setItem` throws like a full or revoked storage. */
    this.full = false;
    this.writes = 0;
  }

  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }

  setItem(key, value) {
    if (this.full) {
      const error = new Error("The quota has been exceeded.");
      error.name = "QuotaExceededError";
      throw error;
    }
    this.writes += 1;
    this.items.set(key, String(value));
  }

  removeItem(key) {
    this.items.delete(key);
  }

  /** The parsed JSON kept under `key` (what a reload would find). */
  json(key) {
    return JSON.parse(this.getItem(key));
  }
}
