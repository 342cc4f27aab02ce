"""Who is in which room: pure bookkeeping, no I/O.

`RoomRegistry` keeps, per room: the members that receive broadcasts (socket connections and held
long-polls), presence as display names counted by uid (a person with two tabs is online once), a
buffer of recent messages complete back to a known id (to answer `since` without asking Django),
the newest remembered events (chatserver/events.py: `remembered` kinds, e.g. deletions) and
the newest version seen per message of versioned kinds, and the set of archived rooms.
Remembered events are numbered (one counter for the process, `event_cursor`), so a long poll
can say which of them it has seen and a poll that missed one is answered at once.
Per-connection cost is one set entry.
With Redis, it also holds the people other instances reported per room (`set_remote_presence`):
`online` is the union, each uid counted once.
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Callable, Iterable

from chatserver.events import REMEMBERED


class _Room:
    __slots__ = (
        "members",
        "presence",
        "recent",
        "recent_ids",
        "complete_after",
        "remembered",
        "last_event",
        "versions",
    )

    def __init__(self, recent_size: int) -> None:
        self.members: set = set()
        # uid -> [display name, number of live holders (sockets, poll leases)]
        self.presence: dict[str, list] = {}
        self.recent: deque[dict] = deque(maxlen=recent_size)
        self.recent_ids: set[int] = set()
        # Every message of the room with id > complete_after is in `recent`; None: unknown yet.
        self.complete_after: int | None = None
        self.remembered: deque[dict] = deque(maxlen=REMEMBERED)
        self.last_event = 0  # the registry's number of the newest remembered event
        # (kind, message id) -> newest version seen (versioned kinds only)
        self.versions: dict[tuple[str, int], int] = {}


class RoomRegistry:
    """Rooms by slug; rooms are created on first use and dropped when nothing refers to them."""

    def __init__(self, recent_size: int = 200) -> None:
        self._recent_size = recent_size
        # Event cursors name this process (`epoch`) and count its remembered events: a cursor
        # from another instance or an earlier run never passes for "seen everything".
        self._epoch = secrets.token_hex(4)
        self._events = 0
        self._rooms: dict[str, _Room] = {}
        self.archived: set[str] = set()
        # slug -> origin instance -> ({uid: name}, expiry time); kept apart from `_rooms` so a
        # room nobody here is in yet still knows who is online elsewhere when someone joins.
        self._remote: dict[str, dict[str, tuple[dict[str, str], float]]] = {}
        # Told when a room gets its first member or holder of presence here, and when it loses
        # its last (the Redis fan-out subscribes to the room's channel only in between).
        self.on_open: Callable[[str], object] = lambda slug: None
        self.on_close: Callable[[str], object] = lambda slug: None

    def _room(self, slug: str) -> _Room:
        room = self._rooms.get(slug)
        if room is None:
            room = self._rooms[slug] = _Room(self._recent_size)
            self.on_open(slug)
        return room

    def _maybe_drop(self, slug: str) -> None:
        room = self._rooms.get(slug)
        if room is not None and not room.members and not room.presence:
            # Keep nothing for rooms nobody is in: a room with no listeners needs no buffer.
            del self._rooms[slug]
            # Nor other instances' reports: nothing refreshes them while nobody is here
            # (a room's first member asks the others to announce again).
            self._remote.pop(slug, None)
            self.on_close(slug)

    # members -------------------------------------------------------------------------------

    def add_member(self, slug: str, member: object) -> None:
        """Start delivering broadcasts of `slug` to `member`."""
        self._room(slug).members.add(member)

    def remove_member(self, slug: str, member: object) -> None:
        """Stop delivering to `member` (no-op when absent)."""
        room = self._rooms.get(slug)
        if room is not None:
            room.members.discard(member)
            self._maybe_drop(slug)

    def members(self, slug: str) -> Iterable:
        """The members of a room (a live view; copy before mutating the registry)."""
        room = self._rooms.get(slug)
        return room.members if room is not None else ()

    def rooms(self) -> list[str]:
        """Slugs of rooms with members or presence."""
        return list(self._rooms)

    def forget_room(self, slug: str) -> None:
        """The room was deleted: drop everything kept about it (members, presence, recent
        buffer, remembered events, archived flag, other instances' presence reports)."""
        known = self._rooms.pop(slug, None)
        self.archived.discard(slug)
        self._remote.pop(slug, None)
        if known is not None:
            self.on_close(slug)

    def is_archived(self, slug: str) -> bool:
        """True once the room was archived."""
        return slug in self.archived

    def generation(self, slug: str) -> object | None:
        """An object that stays the same while the room is continuously known here.

        A room dropped and created again is a new generation, so per-room state kept elsewhere
        (the Redis ordering) can tell it must start afresh.
        """
        return self._rooms.get(slug)

    # presence ------------------------------------------------------------------------------

    def add_presence(self, slug: str, uid: str, name: str) -> bool:
        """Count one more holder for `uid`; True when the room's online set changed.

        The newest name wins: a holder that joins under another name than the one shown (the
        guest renamed itself) renames the person at once.
        """
        presence = self._room(slug).presence
        entry = presence.get(uid)
        if entry is None:
            presence[uid] = [name, 1]
            return True
        entry[1] += 1
        if entry[0] != name:
            entry[0] = name
            return True
        return False

    def rename(self, uid: str, name: str, slug: str | None = None) -> list[str]:
        """Show `uid` as `name` in every room it is present in (or only `slug`).

        Returns the rooms whose online set changed. Holders are not counted.
        """
        changed = []
        for room_slug in [slug] if slug is not None else list(self._rooms):
            room = self._rooms.get(room_slug)
            entry = room.presence.get(uid) if room is not None else None
            if entry is not None and entry[0] != name:
                entry[0] = name
                changed.append(room_slug)
        return changed

    def remove_presence(self, slug: str, uid: str) -> bool:
        """Count one holder less for `uid`; True when the room's online set changed."""
        room = self._rooms.get(slug)
        if room is None or uid not in room.presence:
            return False
        entry = room.presence[uid]
        entry[1] -= 1
        if entry[1] > 0:
            return False
        del room.presence[uid]
        self._maybe_drop(slug)
        return True

    def online(self, slug: str) -> list[str]:
        """Sorted display names of the people in a room, each once (here and elsewhere)."""
        room = self._rooms.get(slug)
        remote = self._remote.get(slug)
        if not remote:
            if room is None:
                return []
            return sorted({entry[0] for entry in room.presence.values()})
        return sorted({person["name"] for person in self.people(slug)})

    def people(self, slug: str) -> list[dict]:
        """The people in a room, each uid once: `{"id": uid, "name": ..., "guest": bool}`.

        Sorted by name, then id. A uid is a guest when it starts with `g:` (docs/protocol.md,
        tickets). This instance's own name for a uid wins over another instance's report.
        """
        found: dict[str, str] = {}
        for people, _expires in (self._remote.get(slug) or {}).values():
            found.update(people)
        found.update(self.local_presence(slug))
        return [
            {"id": uid, "name": name, "guest": uid.startswith("g:")}
            for uid, name in sorted(found.items(), key=lambda item: (item[1], item[0]))
        ]

    def local_presence(self, slug: str) -> dict[str, str]:
        """uid -> display name of the people connected to this process."""
        room = self._rooms.get(slug)
        if room is None:
            return {}
        return {uid: entry[0] for uid, entry in room.presence.items()}

    def set_remote_presence(
        self, slug: str, origin: str, people: dict[str, str], expires: float
    ) -> bool:
        """Replace what instance `origin` reported for a room; True when `online` changed."""
        before = self.people(slug)
        if people:
            self._remote.setdefault(slug, {})[origin] = (people, expires)
        else:
            self._drop_remote(slug, origin)
        return self.people(slug) != before

    def _drop_remote(self, slug: str, origin: str) -> None:
        remote = self._remote.get(slug)
        if remote is not None:
            remote.pop(origin, None)
            if not remote:
                del self._remote[slug]

    def expire_remote(self, now: float | None = None) -> list[str]:
        """Forget remote reports past their expiry (all of them when `now` is None).

        Returns the rooms whose online set changed.
        """
        changed = []
        for slug in list(self._remote):
            before = self.people(slug)
            for origin, (_people, expires) in list(self._remote[slug].items()):
                if now is None or expires <= now:
                    self._drop_remote(slug, origin)
            if self.people(slug) != before:
                changed.append(slug)
        return changed

    # recent messages -----------------------------------------------------------------------

    def remember(self, slug: str, message: dict) -> bool:
        """Append a stored message to the recent buffer; False when it was already there."""
        room = self._rooms.get(slug)
        if room is None:
            return True
        return self._append(room, message)

    def _append(self, room: _Room, message: dict) -> bool:
        message_id = message["id"]
        if message_id in room.recent_ids:
            return False
        if room.recent and room.recent[-1]["id"] > message_id:
            # Out of order (should not happen for one room): keep the buffer sorted, and give up
            # the completeness claim rather than answer `since` wrongly.
            room.complete_after = None
        if len(room.recent) == room.recent.maxlen:
            evicted = room.recent.popleft()
            room.recent_ids.discard(evicted["id"])
            if room.complete_after is not None:
                room.complete_after = max(room.complete_after, evicted["id"])
        room.recent.append(message)
        room.recent_ids.add(message_id)
        return True

    def seed(self, slug: str, messages: list[dict], complete_after: int) -> None:
        """Merge messages read from Django; the union is complete for ids > `complete_after`."""
        room = self._rooms.get(slug)
        if room is None:
            return
        merged = {m["id"]: m for m in messages}
        merged.update((m["id"], m) for m in room.recent)
        ordered = sorted(merged.values(), key=lambda m: m["id"])
        kept = ordered[-self._recent_size :]
        if len(kept) < len(ordered):
            complete_after = max(complete_after, ordered[-len(kept) - 1]["id"])
        room.recent = deque(kept, maxlen=self._recent_size)
        room.recent_ids = {m["id"] for m in kept}
        if room.complete_after is None or complete_after < room.complete_after:
            room.complete_after = complete_after

    def history(self, slug: str, since: int | None, limit: int) -> list[dict] | None:
        """Answer from the buffer, or None when the buffer cannot prove it has everything.

        With `since`: every message after it. Without: the newest `limit` messages.
        """
        room = self._rooms.get(slug)
        if room is None or room.complete_after is None:
            return None
        if since is None:
            if len(room.recent) >= limit:
                return list(room.recent)[-limit:]
            if room.complete_after == 0:
                return list(room.recent)
            return None
        if since < room.complete_after:
            return None
        return [m for m in room.recent if m["id"] > since]

    def retract(self, slug: str, message_id: int) -> None:
        """Drop a message from the recent buffer (it was deleted)."""
        room = self._rooms.get(slug)
        if room is not None and message_id in room.recent_ids:
            room.recent_ids.discard(message_id)
            room.recent = deque(
                (m for m in room.recent if m["id"] != message_id), maxlen=self._recent_size
            )

    def revise(self, slug: str, message_id: int, fields: dict) -> None:
        """A buffered message takes `fields` (an edit): history from memory shows it as it is.

        The message dict is replaced, not changed in place: a history page already handed out
        (or being encoded) keeps the message as it was when it was read.
        """
        room = self._rooms.get(slug)
        if room is None or message_id not in room.recent_ids:
            return
        room.recent = deque(
            ({**m, **fields} if m["id"] == message_id else m for m in room.recent),
            maxlen=self._recent_size,
        )

    def requote(self, slug: str, parent_id: int, quote: dict) -> None:
        """Buffered replies to `parent_id` (`reply_to.id`) take `quote` as their `reply_to`
        (the parent was edited or deleted). Replaced, not changed in place, as in `revise`."""
        room = self._rooms.get(slug)
        if room is None:
            return

        def quotes(message: dict) -> bool:
            reply_to = message.get("reply_to")
            return isinstance(reply_to, dict) and reply_to.get("id") == parent_id

        if not any(quotes(m) for m in room.recent):
            return
        room.recent = deque(
            ({**m, "reply_to": quote} if quotes(m) else m for m in room.recent),
            maxlen=self._recent_size,
        )

    def remember_event(self, slug: str, event: dict) -> None:
        """Keep an event for long polls that come back later (the newest `REMEMBERED`)."""
        room = self._rooms.get(slug)
        if room is not None:
            room.remembered.append(event)
            self._events += 1
            room.last_event = self._events

    def event_cursor(self, slug: str) -> str:
        """`"<epoch>.<n>"`: names the room's remembered events as they are now (long-poll
        answers hand it out; the next poll brings it back, see `missed_events`)."""
        room = self._rooms.get(slug)
        return f"{self._epoch}.{room.last_event if room is not None else 0}"

    def missed_events(self, slug: str, cursor: tuple[str, int] | None) -> bool:
        """True when the room remembers an event the holder of `cursor` (a parsed
        `event_cursor`; None: a client that sends none) has not been answered with: one
        remembered after this process handed the cursor out.

        A cursor of another process (another instance, or an earlier run of this one) says
        nothing here: the poll is held as without one. Answering it at once would make a client
        whose polls alternate between instances (no sticky sessions, deploy/nginx/chat.conf)
        poll in a busy loop while the room remembers anything."""
        room = self._rooms.get(slug)
        if cursor is None or room is None or not room.remembered:
            return False
        epoch, seen = cursor
        return epoch == self._epoch and room.last_event > seen

    def remembered(self, slug: str) -> list[dict]:
        """A room's remembered events, oldest first (long-poll answers repeat them)."""
        room = self._rooms.get(slug)
        return list(room.remembered) if room is not None else []

    def newest_version(self, slug: str, kind: str, message_id: int, version: int) -> bool:
        """Record `version` for (kind, message); False when a newer or equal one was seen."""
        room = self._rooms.get(slug)
        if room is None:
            return True  # nobody here to deliver to: nothing to compare
        key = (kind, message_id)
        seen = room.versions.get(key)
        if seen is not None and seen >= version:
            return False
        room.versions[key] = version
        return True

    def known_last(self, slug: str) -> int | None:
        """The newest id every message up to which is known here, or None.

        The newest buffered id; 0 for a room that was read from Django and found empty.
        A client's `since` never counts (the buffer's completeness claim may come from one).
        """
        room = self._rooms.get(slug)
        if room is None:
            return None
        if room.recent:
            return room.recent[-1]["id"]
        return 0 if room.complete_after == 0 else None
