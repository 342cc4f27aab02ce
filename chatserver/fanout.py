"""Delivering to a room: the two fan-out operations and one encoded frame per broadcast.

`Fanout` (a `typing.Protocol`) is what the hub publishes through: `publish` is the ordered,
de-duplicated path for new messages (id order, exactly once; across instances
chatserver/ordering.py fills gaps), `publish_event` the generic path for every other room event
(a frame `{"type": ...}`), whose per-kind behaviour comes from the table in chatserver/events.py.
Presence and typing are thin helpers over the generic path. `LocalFanout` is the single-process
implementation; with `CHAT_REDIS_URL`, `chatserver.redisfanout.RedisFanout` wraps it.

`Broadcast` encodes lazily and once: the WebSocket frame (prepared by Autobahn) for sockets, the
long-poll answer for held polls. Members implement `deliver(broadcast)`.

Presence is coalesced per room (`Coalescer`): a change is sent at once when the room sent none
in the last `presence_interval` seconds, otherwise once when the interval ends, with the state
of that moment. So a connect/disconnect loop costs each member at most one presence frame per
interval, and the last state always goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Protocol

import orjson
from twisted.internet.defer import Deferred, succeed

from chatserver.events import KINDS, Kind, kind_of, referred_id
from chatserver.rooms import RoomRegistry
from chatserver.users import UserBroadcast, UserRegistry


class Fanout(Protocol):
    """What the hub publishes through (`LocalFanout`, `RedisFanout`)."""

    def publish(self, room: str, message: dict, prev_id: int | None = None) -> Any:
        """A message Django stored: to the room in id order, exactly once."""

    def publish_event(self, room: str, event: dict, sender: object = None) -> int:
        """Any other room event (a frame): to the room, never back to `sender`."""

    def publish_state(self, event: dict) -> None:
        """A process-wide state change this process already applied (revoked, archived,
        unarchived, room_deleted, renamed): to the other instances."""

    def publish_presence(self, room: str) -> None:
        """The room's presence changed here (coalesced)."""

    def buffer_trusted(self, room: str) -> bool:
        """May the recent buffer answer `since` for the room?"""

    def ready(self, room: str) -> Deferred:
        """Fires once the room's events reach this process (a history read may start)."""

    def publish_user_event(self, users: list[int], event: dict) -> int:
        """A user event (a feed frame) for the listed user ids: to their feed connections,
        here and on every instance. Returns connections reached here."""


class Broadcast:
    """One room event, encoded at most once per transport.

    `sender` is the connection (socket) or the uid (long poll) the event came from: it never
    goes back there (`sent_by`).
    """

    __slots__ = ("kind", "frame", "sender", "_prepare", "_prepared", "_cached")

    def __init__(self, frame: dict, prepare: Callable[[bytes], Any], sender: object = None) -> None:
        self.kind: Kind = KINDS[frame["type"]]
        self.frame = frame
        self.sender = sender
        self._prepare = prepare
        self._prepared = None
        self._cached: dict[str, Any] = {}

    @property
    def message_id(self) -> int | None:
        """Id of the carried message (None for other events)."""
        return self.frame["id"] if self.kind.ordered else None

    def sent_by(self, member: object) -> bool:
        """True when `member` (a connection, or a held poll of the same uid) sent the event."""
        sender = self.sender
        return sender is not None and (
            member is sender or (isinstance(sender, str) and getattr(member, "uid", None) == sender)
        )

    def prepared(self) -> Any:
        """The WebSocket frame, framed once for every socket."""
        if self._prepared is None:
            self._prepared = self._prepare(orjson.dumps(self.frame))
        return self._prepared

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """`build()` once per broadcast (e.g. the long-poll answer shared by all held polls)."""
        if key not in self._cached:
            self._cached[key] = build()
        return self._cached[key]


class Coalescer:
    """At most one `send(key)` per `interval` seconds per key; the last request always runs.

    The first request for a key runs at once and opens a quiet period of `interval` (one
    `callLater` on the injected clock); requests during it only set a pending flag, and when it
    ends a pending key runs once more (opening a new quiet period). `send` reads the state when
    it runs, so the newest state goes out. Memory: one timer per key active in the last interval.
    With `interval` 0 every request runs at once.
    """

    def __init__(self, clock: Any, interval: float, send: Callable[[Any], Any]) -> None:
        self._clock = clock
        self._interval = interval
        self._send = send
        self._quiet: dict[Hashable, Any] = {}  # key -> the delayed call ending its quiet period
        self._pending: set = set()

    def request(self, key: Hashable) -> None:
        """Ask for `send(key)`: now, or at the end of the key's quiet period."""
        if key in self._quiet:
            self._pending.add(key)
            return
        self._run(key)

    def _run(self, key: Hashable) -> None:
        if self._interval > 0 and self._clock is not None:
            self._quiet[key] = self._clock.callLater(self._interval, self._quiet_ended, key)
        self._send(key)

    def _quiet_ended(self, key: Hashable) -> None:
        del self._quiet[key]
        if key in self._pending:
            self._pending.discard(key)
            self._run(key)


class LocalFanout:
    """Publishes to the members of this process's `RoomRegistry`."""

    def __init__(
        self,
        registry: RoomRegistry,
        prepare: Callable[[bytes], Any],
        metrics: Any = None,
        *,
        clock: Any = None,
        presence_interval: float = 0.0,
        users: UserRegistry | None = None,
    ) -> None:
        self._registry = registry
        self.users = users if users is not None else UserRegistry()
        self._prepare = prepare
        self._metrics = metrics
        self._presence = Coalescer(clock, presence_interval, self._send_presence)

    def _deliver(self, room: str, broadcast: Broadcast) -> int:
        # Copy: a delivery may close a member (slow reader) and so change the set.
        members = list(self._registry.members(room))
        for member in members:
            if not broadcast.sent_by(member):
                member.deliver(broadcast)
        return len(members)

    def publish(self, room: str, message: dict, prev_id: int | None = None) -> int:
        """Send a stored message to the room (sender included); returns members reached.

        `prev_id` matters only across instances: one process publishes a room's messages in
        the order Django stored them (the persistence queue keeps a room in one batch at once).
        """
        if not self._registry.remember(room, message):
            return 0  # already delivered (a retried batch or a resent nonce)
        frame = {"type": "message", **message}
        count = self._deliver(room, Broadcast(frame, self._prepare))
        if self._metrics is not None and count:
            self._metrics.messages_out.inc(count)
        return count

    def publish_event(self, room: str, event: dict, sender: object = None) -> int:
        """Send a room event to its members (never back to `sender`); returns members reached.

        What the registry keeps about it follows its row in `chatserver.events.KINDS`: a
        retracted message leaves the recent buffer, a revised one takes the event's fields
        there, replies quoting a requoted one take its `quote`, a remembered event is kept for
        returning polls, a versioned event older than one already seen is dropped (returns 0).
        """
        kind = kind_of(event)
        message_id = referred_id(event)
        if kind.versioned:
            version = event.get("version")
            if message_id is None or not isinstance(version, int):
                return 0
            if not self._registry.newest_version(room, kind.name, message_id, version):
                return 0
        if kind.retracts and message_id is not None:
            self._registry.retract(room, message_id)
        if kind.revises and message_id is not None:
            self._registry.revise(room, message_id, {f: event.get(f) for f in kind.revises})
        quote = event.get("quote")
        if kind.requotes and message_id is not None and isinstance(quote, dict):
            self._registry.requote(room, message_id, quote)
        if kind.remembered:
            self._registry.remember_event(room, event)
        return self._deliver(room, Broadcast(event, self._prepare, sender))

    def publish_state(self, event: dict) -> None:
        """Nothing to do in one process: the hub applied it already (`RedisFanout` relays it
        to the other instances)."""

    def buffer_trusted(self, room: str) -> bool:
        """Every stored message passes through this process: the recent buffer is complete."""
        return True

    def ready(self, room: str) -> Deferred:
        """Every event of the room is raised in this process: nothing to wait for."""
        return succeed(None)

    def publish_user_event(self, users: list[int], event: dict) -> int:
        """Deliver a user event to the feed connections of `users` in this process (one
        encoding for all of them); returns connections reached."""
        reached = self.users.deliver(users, UserBroadcast(event, self._prepare))
        if self._metrics is not None and reached:
            self._metrics.user_events_out.inc(reached)
        return reached

    def publish_presence(self, room: str) -> None:
        """Tell the room's members who is online (coalesced: see `Coalescer`)."""
        self._presence.request(room)

    def _send_presence(self, room: str) -> int:
        return self.publish_event(room, presence_frame(self._registry, room))


def presence_frame(registry: RoomRegistry, room: str) -> dict:
    """`{"type": "presence", "online": [...], "people": [...]}` for a room, as of now."""
    return {"type": "presence", "online": registry.online(room), "people": registry.people(room)}


def typing_frame(name: str) -> dict:
    """`{"type": "typing", "user": name}`: someone is typing (never stored)."""
    return {"type": "typing", "user": name}
