"""Delivering to a room: one encoded frame per broadcast, handed to every member.

`Broadcast` encodes lazily and once: the WebSocket frame (prepared by Autobahn) for sockets, the
long-poll JSON answer for held polls. Members implement `deliver(broadcast)`. `LocalFanout` is the
single-process implementation of "publish a stored message to a room"; with `CHAT_REDIS_URL`,
`chatserver.redisfanout.RedisFanout` wraps it behind the same interface.
"""

from __future__ import annotations

from collections.abc import Callable
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
                "online": online(),
                "people": people(),
                "deleted": [self.deleted_id] if self.deleted_id is not None else [],
            }
            body = self._poll_body["body"] = orjson.dumps(answer)
        return body


class LocalFanout:
    """Publishes to the members of this process's `RoomRegistry`."""

    def __init__(
        self, registry: RoomRegistry, prepare: Callable[[bytes], Any], metrics: Any = None
    ) -> None:
        self._registry = registry
        self._prepare = prepare
        self._metrics = metrics

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

    def buffer_trusted(self, room: str) -> bool:
        """Every stored message passes through this process: the recent buffer is complete."""
        return True

    def publish_presence(self, room: str) -> int:
        """Tell the room's sockets who is online now."""
        frame = {
            "type": "presence",
            "online": self._registry.online(room),
            "people": self._registry.people(room),
        }
        return self._deliver(room, Broadcast("presence", frame, self._prepare))

    def publish_renamed(self, uid: str, name: str) -> None:
        """Nothing to do: the hub has renamed this process's sockets and presence already."""

    def publish_typing(self, room: str, name: str, sender: object) -> int:
        """Relay a typing notice to everyone in the room but its sender."""
        frame = {"type": "typing", "user": name}
        return self._deliver(room, Broadcast("typing", frame, self._prepare), exclude=sender)
