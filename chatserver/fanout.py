"""Delivering to a room: one encoded frame per broadcast, handed to every member.

`Broadcast` encodes lazily and once: the WebSocket frame (prepared by Autobahn) for sockets, the
long-poll JSON answer for held polls. Members implement `deliver(broadcast)`. `LocalFanout` is the
single-process implementation of "publish a stored message to a room"; with `CHAT_REDIS_URL`,
`chatserver.redisfanout.RedisFanout` wraps it behind the same interface.

Presence is coalesced per room (`Coalescer`): a change is sent at once when the room sent none
in the last `presence_interval` seconds, otherwise once when the interval ends, with the state
of that moment. So a connect/disconnect loop costs each member at most one presence frame per
interval, and the last state always goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import orjson

from chatserver.rooms import RoomRegistry


class Broadcast:
    """One event for a room, encoded at most once per transport."""

    __slots__ = ("kind", "frame", "message", "deleted_id", "_prepare", "_prepared", "_poll_body")

    def __init__(
        self,
        kind: str,
        frame: dict,
        prepare: Callable[[bytes], Any],
        message: dict | None = None,
        deleted_id: int | None = None,
    ) -> None:
        self.kind = kind
        self.frame = frame
        self.message = message
        self.deleted_id = deleted_id
        self._prepare = prepare
        self._prepared = None
        self._poll_body: dict[str, bytes] = {}

    @property
    def message_id(self) -> int | None:
        """Id of the carried message (None for other events)."""
        return self.message["id"] if self.message is not None else None

    def prepared(self) -> Any:
        """The WebSocket frame, framed once for every socket."""
        if self._prepared is None:
            self._prepared = self._prepare(orjson.dumps(self.frame))
        return self._prepared

    def poll_body(
        self, online: Callable[[], list[str]], people: Callable[[], list[dict]] = list
    ) -> bytes:
        """The long-poll answer for a held poll (encoded once for all held polls)."""
        body = self._poll_body.get("body")
        if body is None:
            answer = {
                "messages": [self.message] if self.message is not None else [],
                "has_more": False,
                "online": online(),
                "people": people(),
                "deleted": [self.deleted_id] if self.deleted_id is not None else [],
            }
            body = self._poll_body["body"] = orjson.dumps(answer)
        return body


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
    ) -> None:
        self._registry = registry
        self._prepare = prepare
        self._metrics = metrics
        self._presence = Coalescer(clock, presence_interval, self._send_presence)

    def _deliver(self, room: str, broadcast: Broadcast, exclude: object = None) -> int:
        # Copy: a delivery may close a member (slow reader) and so change the set.
        members = list(self._registry.members(room))
        for member in members:
            if member is not exclude:
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
        count = self._deliver(room, Broadcast("message", frame, self._prepare, message=message))
        if self._metrics is not None and count:
            self._metrics.messages_out.inc(count)
        return count

    def publish_deleted(self, room: str, message_id: int) -> int:
        """Tell the room a message was deleted; returns members reached."""
        self._registry.forget(room, message_id)
        frame = {"type": "deleted", "id": message_id}
        return self._deliver(
            room, Broadcast("deleted", frame, self._prepare, deleted_id=message_id)
        )

    def publish_archived(self, room: str) -> None:
        """Nothing to do: the hub has closed this process's listeners already."""

    def publish_event(self, envelope: dict) -> None:
        """A state event (revoked, unarchived, room_deleted, renamed) the hub already applied here:
        nothing to do in one process (`RedisFanout` relays it to the other instances)."""

    def buffer_trusted(self, room: str) -> bool:
        """Every stored message passes through this process: the recent buffer is complete."""
        return True

    def publish_presence(self, room: str) -> None:
        """Tell the room's sockets who is online (coalesced: see `Coalescer`)."""
        self._presence.request(room)

    def _send_presence(self, room: str) -> int:
        frame = {
            "type": "presence",
            "online": self._registry.online(room),
            "people": self._registry.people(room),
        }
        return self._deliver(room, Broadcast("presence", frame, self._prepare))

    def publish_typing(self, room: str, name: str, sender: object) -> int:
        """Relay a typing notice to everyone in the room but its sender."""
        frame = {"type": "typing", "user": name}
        return self._deliver(room, Broadcast("typing", frame, self._prepare), exclude=sender)
