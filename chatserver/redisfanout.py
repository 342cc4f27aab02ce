"""Fan-out across chat server instances through Redis pub/sub (`CHAT_REDIS_URL`).

`RedisFanout` has the interface of `LocalFanout` and wraps one: every event is delivered to this
process's members by the `LocalFanout` (so local delivery never waits on Redis) and published as
a JSON envelope on one channel, `<CHAT_REDIS_PREFIX>events`, that every instance subscribes to.
Envelopes (docs/protocol.md, "Between chat server instances"):

    {"type": "message",  "origin": i, "message": {...}, "prev_id": 811}
    {"type": "deleted",  "origin": i, "room": r, "id": 812}
    {"type": "archived", "origin": i, "room": r}
    {"type": "unarchived", "origin": i, "room": r}
    {"type": "room_deleted", "origin": i, "room": r, "before_ms": t}
    {"type": "revoked",  "origin": i, "scope": s, "key": k, "before_ms": t}
    {"type": "presence", "origin": i, "room": r, "online": {uid: name}, "ttl": 15.0}
    {"type": "typing",   "origin": i, "room": r, "user": name}
    {"type": "sync",     "origin": i}          (a peer (re)connected: announce presence again)
    {"type": "renamed",  "origin": i, "uid": u, "name": n}   (a guest renamed itself)

Messages go through `RoomSequencer` (id order, exactly once, gaps filled from Django). Presence:
each instance publishes its own people per room on change and on a timer (`tick`); reports
expire after `ttl`, so a dead instance's people vanish; the registry counts each uid once. The
bus is a collaborator with `up`, `publish(bytes)`, `on_message` and `on_state` (`RedisBus` in
production, an in-memory fake in tests).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import orjson
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.djangoclient import UnknownRoom
from chatserver.fanout import Coalescer, LocalFanout
from chatserver.ordering import RoomSequencer
from chatserver.rooms import RoomRegistry

log = Logger()

TTL_FACTOR = 3.0  # a presence report outlives two missed refreshes


class RedisFanout:
    """Local delivery plus Redis pub/sub to the other instances."""

    def __init__(
        self,
        local: LocalFanout,
        registry: RoomRegistry,
        bus: Any,
        django: Any,
        clock: IReactorTime,
        *,
        on_archived: Callable[[str], Any],
        on_event: Callable[[dict], Any] | None = None,
        on_room_gone: Callable[[str], Any] | None = None,
        gap_wait: float = 0.2,
        presence_interval: float = 5.0,
        announce_interval: float = 0.0,
        metrics: Any = None,
        origin: str | None = None,
    ) -> None:
        self.local = local
        self.origin = origin or secrets.token_hex(6)
        self._registry = registry
        self._bus = bus
        self._clock = clock
        self._on_archived = on_archived
        # Room-state events (revoked, unarchived, room_deleted) go to the hub as they came.
        self._on_event = on_event or (lambda envelope: None)
        self._on_room_gone = on_room_gone or (lambda room: None)
        self._django = django
        self._ttl = presence_interval * TTL_FACTOR
        self._metrics = metrics
        # Presence changes are announced to the other instances coalesced per room, as local
        # presence frames are (`LocalFanout`): churn costs the bus one envelope per interval.
        self._announcements = Coalescer(clock, announce_interval, self._announce)
        self.sequencer = RoomSequencer(
            registry,
            local.publish,
            django,
            clock,
            gap_wait=gap_wait,
            wait_for_peers=lambda: self._bus.up,
            metrics=metrics,
        )
        self._handlers = {
            "message": self._remote_message,
            "deleted": self._remote_deleted,
            "archived": self._remote_archived,
            "unarchived": self._remote_event,
            "room_deleted": self._remote_event,
            "revoked": self._remote_event,
            "presence": self._remote_presence,
            "typing": self._remote_typing,
            "sync": self._remote_sync,
            "renamed": self._remote_event,
        }
        bus.on_message = self.received
        bus.on_state = self.bus_state
        if metrics is not None:
            metrics.redis_up.set(1 if bus.up else 0)

    # the LocalFanout interface ---------------------------------------------------------------

    def publish(self, room: str, message: dict, prev_id: int | None = None) -> None:
        """A message this process stored: in order to local members, and to the others."""
        log.debug("stored {id} (prev {prev}) in {room}", id=message["id"], prev=prev_id, room=room)
        self.sequencer.accept(room, message, prev_id)
        self._send({"type": "message", "message": message, "prev_id": prev_id})

    def publish_deleted(self, room: str, message_id: int) -> int:
        """A deletion Django told this process about: local members, then the others."""
        self._send({"type": "deleted", "room": room, "id": message_id})
        return self.local.publish_deleted(room, message_id)

    def publish_archived(self, room: str) -> None:
        """An archive Django told this process about (already applied here): the others."""
        self._send({"type": "archived", "room": room})

    def publish_event(self, envelope: dict) -> None:
        """A state event already applied here (revoked, unarchived, room_deleted, renamed): the
        others."""
        self._send(dict(envelope))

    def publish_presence(self, room: str) -> None:
        """Local presence changed: tell local sockets the union, and the others our part
        (both coalesced per room)."""
        self._announcements.request(room)
        self.local.publish_presence(room)

    def publish_typing(self, room: str, name: str, sender: object) -> int:
        """A local typing notice, relayed everywhere but to its sender."""
        self._send({"type": "typing", "room": room, "user": name})
        return self.local.publish_typing(room, name, sender)

    def buffer_trusted(self, room: str) -> bool:
        """May the recent buffer answer `since`? Only while Redis is up and nothing is missing."""
        return self._bus.up and self.sequencer.trusted(room)

    # timers and the bus -----------------------------------------------------------------------

    def tick(self) -> None:
        """The one periodic timer: refresh our presence reports, expire others', drop state."""
        if self._bus.up:
            for room in self._registry.rooms():
                if self._registry.local_presence(room):
                    self._announce(room)
        for room in self._registry.expire_remote(self._clock.seconds()):
            self.local.publish_presence(room)
        self.sequencer.sweep()

    def bus_state(self, up: bool) -> None:
        """Redis connected (subscribed) or lost."""
        if self._metrics is not None:
            self._metrics.redis_up.set(1 if up else 0)
        if up:
            log.info("Redis is up: announcing presence and catching up from Django")
            self._send({"type": "sync"})
            for room in self._registry.rooms():
                self._announce(room)
            for room in set(self._registry.rooms()) | set(self._registry.archived):
                self._check_archived(room)
            self.sequencer.resync()
        else:
            log.warn("Redis is down: serving this instance's clients only until it returns")
            # What other instances reported can no longer be kept fresh: show what we know.
            for room in self._registry.expire_remote(None):
                self.local.publish_presence(room)

    def received(self, payload: bytes | str) -> None:
        """One envelope from the channel (our own come back too and are ignored)."""
        try:
            envelope = orjson.loads(payload)
            if envelope.get("origin") == self.origin:
                return
            handler = self._handlers.get(envelope.get("type"))
            if handler is not None:
                handler(envelope)
        except Exception:
            # A malformed envelope must never take the subscriber connection down.
            if self._metrics is not None:
                self._metrics.errors.labels(kind="bad_envelope").inc()
            log.failure("ignoring an envelope from Redis that could not be handled")

    # internals --------------------------------------------------------------------------------

    def _send(self, envelope: dict) -> None:
        if not self._bus.up:
            return  # peers catch up from Django when Redis returns
        envelope["origin"] = self.origin
        self._bus.publish(orjson.dumps(envelope))

    def _check_archived(self, room: str) -> None:
        """An archive, un-archive or deletion announced while Redis was down never reached us:
        ask Django (its answer is authoritative, both ways)."""

        def answered(detail: dict) -> None:
            archived = detail.get("is_archived")
            if archived is True and not self._registry.is_archived(room):
                log.info("room {room} was archived while Redis was down", room=room)
                self._on_archived(room)
            elif archived is False and self._registry.is_archived(room):
                log.info("room {room} was un-archived while Redis was down", room=room)
                self._on_event({"type": "unarchived", "room": room})

        def failed(failure: Any) -> None:
            if failure.check(UnknownRoom) is not None:
                log.info("room {room} was deleted while Redis was down", room=room)
                self._on_room_gone(room)
            # unreachable: keep going; the next reconnect asks again

        d = self._django.room_detail(room)
        d.addCallbacks(answered, failed)

    def _announce(self, room: str) -> None:
        self._send(
            {
                "type": "presence",
                "room": room,
                "online": self._registry.local_presence(room),
                "ttl": self._ttl,
            }
        )

    def _remote_message(self, envelope: dict) -> None:
        message = envelope["message"]
        room = message["room"]
        prev_id = envelope.get("prev_id")
        log.debug(
            "received {id} (prev {prev}) for {room}", id=message["id"], prev=prev_id, room=room
        )
        self.sequencer.accept(room, message, prev_id if isinstance(prev_id, int) else None)

    def _remote_deleted(self, envelope: dict) -> None:
        self.local.publish_deleted(envelope["room"], int(envelope["id"]))

    def _remote_archived(self, envelope: dict) -> None:
        self._on_archived(envelope["room"])

    def _remote_event(self, envelope: dict) -> None:
        self._on_event(envelope)

    def _remote_presence(self, envelope: dict) -> None:
        room = envelope["room"]
        people = envelope.get("online") or {}
        ttl = float(envelope.get("ttl") or self._ttl)
        changed = self._registry.set_remote_presence(
            room, envelope["origin"], dict(people), self._clock.seconds() + ttl
        )
        if changed:
            self.local.publish_presence(room)

    def _remote_typing(self, envelope: dict) -> None:
        self.local.publish_typing(envelope["room"], str(envelope["user"]), None)

    def _remote_sync(self, envelope: dict) -> None:
        for room in self._registry.rooms():
            if self._registry.local_presence(room):
                self._announce(room)
