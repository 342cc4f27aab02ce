"""Fan-out across chat server instances through Redis pub/sub (`CHAT_REDIS_URL`).

`RedisFanout` has the interface of `LocalFanout` and wraps one: every event is delivered to this
process's members by the `LocalFanout` (so local delivery never waits on Redis) and published as
a JSON envelope: a room's on the room's channel, `<CHAT_REDIS_PREFIX>room:<slug>`, which an
instance subscribes to from the room's first local member to its last (so it never receives the
traffic of rooms it does not serve), the rest on `<CHAT_REDIS_PREFIX>events`, which every
instance subscribes to. `origin` leads each envelope's JSON, so an instance drops its own (Redis
sends a publisher its own messages too) by a byte prefix, unparsed. Envelopes (docs/protocol.md,
"Between chat server instances"):

    {"type": "message",  "origin": i, "message": {...}, "prev_id": 811}   (the ordered path)
    {"type": "event",    "origin": i, "room": r, "event": {"type": ..., ...}}  (the generic path)
    {"type": "presence", "origin": i, "room": r, "online": {uid: name}, "ttl": 15.0}
    {"type": "user_event", "origin": i, "users": [uid, ...], "event": {"type": ..., ...}}
                                               (a feed event for the listed user ids)
    {"type": "sync",     "origin": i}          (a peer (re)connected: announce presence again)
    {"type": "sync",     "origin": i, "room": r}   (on the room's channel: a peer opened the
                                               room: announce presence there, coalesced)
    {"type": "archived" | "unarchived" | "room_deleted" | "revoked" | "renamed", "origin": i, ...}
                                               (process-wide state, applied by the hub)

Room events (every kind of chatserver/events.py marked `relayed`) share the one `event` envelope
and the one handler; an event marked `after_message` waits while the message it refers to is
held here for a gap. Envelopes `deleted` and `typing` of the previous release are still read.
Messages go through `RoomSequencer` (id order, exactly once, gaps filled from Django). Presence:
each instance publishes its own people per room on change and on a timer (`tick`); reports
expire after `ttl`, so a dead instance's people vanish; the registry counts each uid once. The
bus is a collaborator with `up`, `publish(bytes, channel)`, `room_channel(slug)`, `watch`,
`unwatch`, `watching`, `ready`, `on_message` and `on_state` (`RedisBus` in production, an
in-memory fake in tests).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import orjson
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.djangoclient import UnknownRoom
from chatserver.events import UnknownKind, kind_of, referred_id
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
        on_state: Callable[[dict], Any] | None = None,
        gap_wait: float = 0.2,
        presence_interval: float = 5.0,
        announce_interval: float = 0.0,
        metrics: Any = None,
        origin: str | None = None,
    ) -> None:
        self.local = local
        self.origin = origin or secrets.token_hex(6)
        # How every envelope this process publishes begins (see `_send` and `received`).
        self._own_prefix = orjson.dumps({"origin": self.origin})[:-1] + b","
        self._own_text = self._own_prefix.decode()
        self._registry = registry
        self._bus = bus
        self._clock = clock
        # Process-wide state events (archived, revoked, renamed, ...) go to the hub as they
        # came; the hub sets this once it exists (chatserver/service.py composes both).
        self.on_state: Callable[[dict], Any] = on_state or (lambda event: None)
        # room -> [(message id, event)]: events waiting for a message held for a gap.
        self._waiting: dict[str, list[tuple[int, dict]]] = {}
        self._django = django
        self._ttl = presence_interval * TTL_FACTOR
        self._metrics = metrics
        # Presence changes are announced to the other instances coalesced per room, as local
        # presence frames are (`LocalFanout`): churn costs the bus one envelope per interval.
        self._announcements = Coalescer(clock, announce_interval, self._announce)
        self.sequencer = RoomSequencer(
            registry,
            self._deliver_message,
            django,
            clock,
            gap_wait=gap_wait,
            wait_for_peers=lambda: self._bus.up,
            metrics=metrics,
        )
        self._handlers = {
            "message": self._remote_message,
            "event": self._remote_room_event,
            "presence": self._remote_presence,
            "sync": self._remote_sync,
            "user_event": self._remote_user_event,
            "archived": self._remote_state,
            "unarchived": self._remote_state,
            "room_deleted": self._remote_state,
            "revoked": self._remote_state,
            "renamed": self._remote_state,
            # The envelopes of the previous release (a rolling upgrade has both).
            "deleted": lambda e: self._remote_room_event(
                {"room": e["room"], "event": {"type": "deleted", "id": e["id"]}}
            ),
            "typing": lambda e: self._remote_room_event(
                {"room": e["room"], "event": {"type": "typing", "user": e["user"]}}
            ),
        }
        bus.on_message = self.received
        bus.on_state = self.bus_state
        # A room's channel is heard while the room has someone here (a socket, a poll).
        registry.on_open = self._room_opened
        registry.on_close = self._room_closed
        for room in registry.rooms():
            self._room_opened(room)
        if metrics is not None:
            metrics.redis_up.set(1 if bus.up else 0)

    # the Fanout interface ---------------------------------------------------------------------

    def publish(self, room: str, message: dict, prev_id: int | None = None) -> None:
        """A message this process stored: in order to local members, and to the others."""
        log.debug("stored {id} (prev {prev}) in {room}", id=message["id"], prev=prev_id, room=room)
        self.sequencer.accept(room, message, prev_id)
        self._send({"type": "message", "message": message, "prev_id": prev_id}, room)

    def publish_event(self, room: str, event: dict, sender: object = None) -> int:
        """A room event raised here: local members, then (if its kind is relayed) the others."""
        if kind_of(event).relayed:
            self._send({"type": "event", "room": room, "event": event}, room)
        return self.local.publish_event(room, event, sender)

    def publish_state(self, event: dict) -> None:
        """A state event already applied here (archived, revoked, renamed, ...): the others."""
        self._send(dict(event))

    def publish_user_event(self, users: list[int], event: dict) -> int:
        """A user event: to this process's feed connections of `users`, and to the others
        (each delivers to its own). Returns connections reached here."""
        self._send({"type": "user_event", "users": list(users), "event": event})
        return self.local.publish_user_event(users, event)

    def publish_presence(self, room: str) -> None:
        """Local presence changed: tell local sockets the union, and the others our part
        (both coalesced per room)."""
        self._announcements.request(room)
        self.local.publish_presence(room)

    def buffer_trusted(self, room: str) -> bool:
        """May the recent buffer answer `since`? Only while the room's channel is heard (Redis
        up, subscription confirmed) and nothing is missing."""
        return self._bus.watching(self._bus.room_channel(room)) and self.sequencer.trusted(room)

    def ready(self, room: str) -> Deferred:
        """Fires once the room's envelopes reach this process (its channel confirmed), so a
        history read from Django started then misses nothing published after it."""
        return self._bus.ready(self._bus.room_channel(room))

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
        for room in list(self._waiting):
            self._release(room)

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
        """One envelope from the channel (our own come back too and are ignored).

        Our own envelopes start with our `origin` (`_send` puts it first), so they are
        recognised by that prefix without being parsed; one that does not (another
        release's layout) is still dropped by its parsed `origin`.
        """
        if payload.startswith(self._own_prefix if type(payload) is bytes else self._own_text):
            return
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

    def _room_opened(self, room: str) -> None:
        """The room's first member here: hear its channel, then ask the others who is there."""
        self._bus.watch(self._bus.room_channel(room))
        self._bus.ready(self._bus.room_channel(room)).addCallback(
            lambda _: self._send({"type": "sync", "room": room}, room)
        )

    def _room_closed(self, room: str) -> None:
        self._bus.unwatch(self._bus.room_channel(room))

    def _send(self, envelope: dict, room: str | None = None) -> None:
        """Publish on the room's channel (room envelopes) or the main one (the rest)."""
        if not self._bus.up:
            return  # peers catch up from Django when Redis returns
        # `origin` first (orjson keeps insertion order): receivers drop their own by prefix.
        body = {"origin": self.origin}
        body.update(envelope)
        body["origin"] = self.origin  # never a relayed event's own `origin`
        channel = self._bus.room_channel(room) if room is not None else None
        self._bus.publish(orjson.dumps(body), channel)

    def _check_archived(self, room: str) -> None:
        """An archive, un-archive or deletion announced while Redis was down never reached us:
        ask Django (its answer is authoritative, both ways)."""

        def answered(detail: dict) -> None:
            archived = detail.get("is_archived")
            if archived is True and not self._registry.is_archived(room):
                log.info("room {room} was archived while Redis was down", room=room)
                self.on_state({"type": "archived", "room": room})
            elif archived is False and self._registry.is_archived(room):
                log.info("room {room} was un-archived while Redis was down", room=room)
                self.on_state({"type": "unarchived", "room": room})

        def failed(failure: Any) -> None:
            if failure.check(UnknownRoom) is not None:
                log.info("room {room} was deleted while Redis was down", room=room)
                self.on_state({"type": "room_gone", "room": room})
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
            },
            room,
        )

    def _remote_message(self, envelope: dict) -> None:
        message = envelope["message"]
        room = message["room"]
        prev_id = envelope.get("prev_id")
        log.debug(
            "received {id} (prev {prev}) for {room}", id=message["id"], prev=prev_id, room=room
        )
        self.sequencer.accept(room, message, prev_id if isinstance(prev_id, int) else None)

    def _remote_room_event(self, envelope: dict) -> None:
        room, event = envelope["room"], envelope["event"]
        try:
            kind = kind_of(event)
        except UnknownKind:
            # A kind of a newer release (a rolling upgrade): this one cannot deliver it.
            log.debug("ignoring a room event of unknown kind {kind!r}", kind=event.get("type"))
            return
        if not kind.relayed:
            return
        message_id = referred_id(event)
        if kind.after_message and message_id is not None:
            if self.sequencer.pending(room, message_id):
                self._waiting.setdefault(room, []).append((message_id, event))
                return
        self.local.publish_event(room, event)

    def _deliver_message(self, room: str, message: dict) -> None:
        """The sequencer's delivery: the message, then the events that waited for it."""
        self.local.publish(room, message)
        if room in self._waiting:
            self._release(room)

    def _release(self, room: str) -> None:
        """Deliver the waiting events whose message is no longer held (delivered, or gone)."""
        still: list[tuple[int, dict]] = []
        ready: list[dict] = []
        for message_id, event in self._waiting.pop(room, []):
            if self.sequencer.pending(room, message_id):
                still.append((message_id, event))
            else:
                ready.append(event)
        if still:
            self._waiting[room] = still
        for event in ready:
            self.local.publish_event(room, event)

    def _remote_state(self, envelope: dict) -> None:
        self.on_state(envelope)

    def _remote_user_event(self, envelope: dict) -> None:
        users, event = envelope.get("users"), envelope.get("event")
        if not isinstance(users, list) or not isinstance(event, dict):
            raise ValueError("a user_event envelope carries users and event")
        self.local.publish_user_event([u for u in users if type(u) is int], event)

    def _remote_presence(self, envelope: dict) -> None:
        room = envelope["room"]
        people = envelope.get("online") or {}
        ttl = float(envelope.get("ttl") or self._ttl)
        changed = self._registry.set_remote_presence(
            room, envelope["origin"], dict(people), self._clock.seconds() + ttl
        )
        if changed:
            self.local.publish_presence(room)

    def _remote_sync(self, envelope: dict) -> None:
        """A peer (re)connected (every room), or has a first member in `room`: announce."""
        room = envelope.get("room")
        if isinstance(room, str):
            # Coalesced like our own changes: a room opened and closed in a loop on another
            # instance costs one announcement per interval, not one per opening.
            if self._registry.local_presence(room):
                self._announcements.request(room)
            return
        for slug in self._registry.rooms():
            if self._registry.local_presence(slug):
                self._announce(slug)
