/**
 * Unread and mention counts per room, kept from the personal feed (docs/protocol.md,
 * "Personal feed"). Pure: no DOM, no network (tests/js/unread-state.test.js).
 *
 * `load(summary)` takes `GET /api/attention/`; `apply(event)` one feed event and returns the
 * slug of the room whose counts changed (null when none did):
 * - `unread`: the absolute state of a room (after a read on any device, a mute): replaces it.
 * - `room_message`: one more unread message, unless its id is at or below the read position or
 *   was already counted (the same message can be announced again after a reconnect).
 * - `mention`: the same, and one more mention.
 * Kinds this client does not know (a newer server: direct messages, invitations) change nothing.
 */

/** @typedef {{unread: number, mentions: number, lastReadId: number, newest: number, muted: boolean, name?: string}} RoomCounts */

export class UnreadState {
  constructor() {
    /** @type {Map<string, RoomCounts>} */
    this.rooms = new Map();
  }

  /** Replace everything with a summary `{"rooms": [unread event, ...]}`. */
  load(summary) {
    this.rooms.clear();
    for (const room of summary?.rooms || []) this.#set(room);
  }

  #set(event) {
    const old = this.rooms.get(event.room);
    this.rooms.set(event.room, {
      unread: Number(event.unread) || 0,
      mentions: Number(event.mentions) || 0,
      lastReadId: Number(event.last_read_id) || 0,
      newest: Math.max(Number(event.last_read_id) || 0, old?.newest || 0),
      muted: Boolean(event.muted),
      name: old?.name,
    });
  }

  /** @returns {string | null} the room whose counts changed */
  apply(event) {
    if (!event || typeof event.room !== "string") return null;
    switch (event.type) {
      case "unread":
        this.#set(event);
        return event.room;
      case "room_message":
      case "mention": {
        const room = this.rooms.get(event.room) || {
          unread: 0,
          mentions: 0,
          lastReadId: 0,
          newest: 0,
          muted: false,
        };
        const id = Number(event.id) || 0;
        if (id <= room.lastReadId || id <= room.newest) return null;
        room.newest = id;
        room.unread += 1;
        if (event.type === "mention") room.mentions += 1;
        if (event.room_name) room.name = event.room_name;
        this.rooms.set(event.room, room);
        return event.room;
      }
      default:
        return null;
    }
  }

  /** The room's counts (zeros for a room never seen). */
  get(slug) {
    return this.rooms.get(slug) || { unread: 0, mentions: 0, lastReadId: 0, newest: 0, muted: false };
  }

  /** Unread messages over every unmuted room, and mentions over all rooms (the page title). */
  total() {
    let unread = 0;
    let mentions = 0;
    for (const room of this.rooms.values()) {
      if (!room.muted) unread += room.unread;
      mentions += room.mentions;
    }
    return { unread, mentions };
  }
}

/** The page title with the total in front: "(3) Rooms", "(@2 · 5) Rooms", or the base title. */
export function titleWithTotal(base, { unread, mentions }) {
  if (mentions > 0) return `(@${mentions} · ${unread}) ${base}`;
  if (unread > 0) return `(${unread}) ${base}`;
  return base;
}

/**
 * Should a feed event raise a desktop notification? Only mentions (direct messages will join),
 * only while the tab is hidden, never for the reader's own message, a muted room, or the room
 * this tab shows while it is visible.
 */
export function shouldNotify(event, { hidden, meId, currentRoom, muted }) {
  if (!event) return false;
  // Mentions, and messages in a direct conversation (a direct message for the reader).
  if (event.type !== "mention" && !(event.type === "room_message" && event.direct === true)) return false;
  if (!hidden) return false;
  if (event.author?.id && event.author.id === meId) return false;
  if (muted) return false;
  if (currentRoom && event.room === currentRoom && !hidden) return false;
  return true;
}
