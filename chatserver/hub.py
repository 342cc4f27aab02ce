"""What both transports share: tickets, rooms, history, sending, moderation.

`ChatHub` holds the process-wide state (registry, fan-out, persistence queue, Django client,
metrics); the WebSocket factory and the long-poll resources call into it, so a message sent on
one transport reaches the other in the same order. With a Redis bus (`CHAT_REDIS_URL`) the
fan-out also reaches the other instances (`chatserver.redisfanout`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobahn.websocket.protocol import PreparedMessage
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.config import ChatServerConfig
from chatserver.djangoclient import UnknownRoom
from chatserver.fanout import LocalFanout
from chatserver.frames import ClientFrame
from chatserver.metrics import ChatMetrics
from chatserver.persistence import PersistenceQueue, QueueFull
from chatserver.revocations import ROOM, SCOPES, USER, Revocation, RevocationList
from chatserver.rooms import RoomRegistry
from chatserver.signing import WINDOW_SECONDS
from chatserver.tickets import Identity, TicketError, verify_ticket

log = Logger()

HISTORY_PAGE = 1000

ERROR_TEXT = {
    "busy": "The server is busy: retry later with the same nonce.",
    "room_archived": "This room is archived.",
    "unknown_room": "No such room.",
    "store_failed": "The message could not be stored.",
}


def prepare_frame(payload: bytes) -> PreparedMessage:
    """Frame a server-to-client text message once (servers never mask, never compress here)."""
    return PreparedMessage(payload, False, False, True)


def error_result(code: str, nonce: str | None = None, text: str | None = None) -> dict:
    """A refusal in the shape of a Django batch item error."""
    return {
        "ok": False,
        "error": code,
        "nonce": nonce,
        "message": text or ERROR_TEXT.get(code, code),
    }


class ChatHub:
    """Process-wide chat state and the operations both transports use."""

    def __init__(
        self,
        config: ChatServerConfig,
        clock: IReactorTime,
        django: Any,
        metrics: ChatMetrics | None = None,
        bus: Any = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.django = django
        self.metrics = metrics if metrics is not None else ChatMetrics()
        self.registry = RoomRegistry(config.recent_buffer)
        # Callers waiting for a history read of the same (room, since) that is under way.
        self._history_waiting: dict[tuple[str, int | None], list[Deferred]] = {}
        # Called with the slug after a room's listeners were closed (the long-poll resource).
        self.archive_listeners: list[Callable[[str], Any]] = []
        # Called with a `Revocation` / a deleted room's slug after its listeners were closed.
        self.revoke_listeners: list[Callable[[Revocation], Any]] = []
        self.forget_listeners: list[Callable[[str], Any]] = []
        # Kept past the longest ticket lifetime, plus the clock skew tolerated between hosts.
        self.revocations = RevocationList(config.max_ticket_ttl + WINDOW_SECONDS)
        local = LocalFanout(self.registry, prepare_frame, self.metrics)
        self.fanout: Any = local
        self.bus = bus
        if bus is not None:
            from chatserver.redisfanout import RedisFanout

            self.metrics.enable_redis()
            self.fanout = RedisFanout(
                local,
                self.registry,
                bus,
                django,
                clock,
                on_archived=self.archive_local,
                on_event=self.apply_event,
                on_room_gone=self.room_gone,
                gap_wait=config.redis_gap_wait_ms / 1000.0,
                presence_interval=config.redis_presence_interval,
                metrics=self.metrics,
            )
        self.persistence = PersistenceQueue(
            django,
            clock,
            on_stored=self._stored,
            batch_size=config.batch_size,
            batch_delay=config.batch_delay_ms / 1000.0,
            max_in_flight=config.max_in_flight,
            queue_limit=config.queue_limit,
            metrics=self.metrics,
        )
        self.shutting_down = False

    # identity and rooms --------------------------------------------------------------------

    def verify(self, ticket: str, room: str) -> Identity:
        """Check a ticket for a room (raises `TicketError`; `revoked` when Django revoked it)."""
        now = self.clock.seconds()
        identity = verify_ticket(
            ticket,
            secrets=self.config.secrets,
            room=room,
            now=now,
            max_ttl=self.config.max_ticket_ttl,
        )
        if self.revocations.refuses(room, identity.uid, identity.guest, identity.issued_ms, now):
            raise TicketError("revoked")
        return identity

    def is_archived(self, room: str) -> bool:
        """True once Django told us the room was archived."""
        return room in self.registry.archived

    def join(self, room: str, member: object, identity: Identity) -> None:
        """Add a listener and count its person online; tell the room when that changed."""
        self.registry.add_member(room, member)
        if self.registry.add_presence(room, identity.uid, identity.name):
            self.fanout.publish_presence(room)

    def leave(self, room: str, member: object, identity: Identity) -> None:
        """Remove a listener; tell the room when its person went offline."""
        self.registry.remove_member(room, member)
        if self.registry.remove_presence(room, identity.uid):
            self.fanout.publish_presence(room)

    # history -------------------------------------------------------------------------------

    def history(self, room: str, since: int | None) -> Deferred:
        """Fires with the `hello` history: newest `history_size`, or every message after `since`.

        Answered from the recent buffer when it provably holds everything, else from Django
        (paging until done); what Django returns seeds the buffer for the next caller.
        """
        cached = None
        if self.fanout.buffer_trusted(room):
            cached = self.registry.history(room, since, self.config.history_size)
        if cached is not None:
            return succeed(cached)
        return self._coalesced_fetch(room, since)

    def _coalesced_fetch(self, room: str, since: int | None) -> Deferred:
        """One Django read per (room, since) at a time.

        After a restart every client of a room reconnects at once with the same `since`; without
        this each would read the same history from Django. Callers that arrive while a read runs
        ask again when it ends: the read has seeded the recent buffer, merged with what was
        broadcast meanwhile (they were already members, buffering), so they are usually answered
        from memory, never from a read that started before they joined.
        """
        key = (room, since)
        waiting = self._history_waiting.get(key)
        if waiting is not None:
            d: Deferred = Deferred()
            waiting.append(d)
            return d
        self._history_waiting[key] = []

        def settle(result: Any) -> Any:
            for d in self._history_waiting.pop(key):
                self.history(room, since).chainDeferred(d)
            return result

        return self._fetch_history(room, since).addBoth(settle)

    @inlineCallbacks
    def _fetch_history(self, room: str, since: int | None):
        if since is None:
            limit = self.config.history_size
            messages, has_more = yield self.django.latest_messages(room, limit)
            # The newest page is every message from its first id on; a short page is the room.
            complete_after = messages[0]["id"] - 1 if (messages and has_more) else 0
        else:
            messages = []
            after = since
            while True:
                page, has_more = yield self.django.messages_after(room, after, HISTORY_PAGE)
                messages.extend(page)
                if not has_more or not page:
                    break
                after = page[-1]["id"]
            complete_after = since
        self.registry.seed(room, messages, complete_after)
        return messages

    # sending -------------------------------------------------------------------------------

    def submit(self, room: str, identity: Identity, frame: ClientFrame) -> Deferred:
        """Queue a validated message; fires with Django's per-item result or a refusal."""
        if self.is_archived(room):
            return succeed(error_result("room_archived", frame.nonce))
        if self.shutting_down:
            return succeed(error_result("busy", frame.nonce))
        item = {
            "room": room,
            "nonce": frame.nonce,
            "body": frame.body,
            "name": identity.name,
            "user_id": identity.user_id,
            "guest": identity.guest,
        }
        try:
            d = self.persistence.enqueue(item)
        except QueueFull:
            self.metrics.errors.labels(kind="busy").inc()
            return succeed(error_result("busy", frame.nonce))
        self.metrics.messages_in.inc()
        return d.addCallback(self._room_state_from_result, room)

    def _room_state_from_result(self, result: dict, room: str) -> dict:
        """Django's answer about a room is final: a room it does not know is gone (close 4005),
        one it calls archived is archived here too (a lost control call heals on the next send).
        """
        if isinstance(result, dict) and not result.get("ok"):
            if result.get("error") == "unknown_room":
                self.room_gone(room)
            elif result.get("error") == "room_archived" and not self.is_archived(room):
                self.archive_local(room)
        return result

    def _stored(self, message: dict, prev_id: int | None = None) -> None:
        room = message.get("room")
        if isinstance(room, str):
            self.fanout.publish(room, message, prev_id)

    # moderation ----------------------------------------------------------------------------

    def archive(self, room: str) -> int:
        """Django archived a room: close it here and on every other instance.

        Returns the sockets closed by this process.
        """
        closed = self.archive_local(room)
        self.fanout.publish_archived(room)
        return closed

    def archive_local(self, room: str) -> int:
        """Remember the room as archived and close this process's listeners."""
        self.registry.archived.add(room)
        closed = 0
        for member in list(self.registry.members(room)):
            closed += 1 if member.room_archived() else 0
        for listener in self.archive_listeners:
            listener(room)
        return closed

    def unarchive(self, room: str) -> None:
        """Django un-archived a room: accept its sockets again, here and on every instance."""
        self.unarchive_local(room)
        self.fanout.publish_event({"type": "unarchived", "room": room})

    def unarchive_local(self, room: str) -> None:
        """Forget the room's archived flag."""
        self.registry.archived.discard(room)

    # access --------------------------------------------------------------------------------

    def revoke(self, revocation: Revocation) -> int:
        """Django revoked a right: refuse older tickets and close what they admitted, here and
        on every other instance. Returns the sockets closed by this process."""
        closed = self.revoke_local(revocation)
        self.fanout.publish_event(
            {
                "type": "revoked",
                "scope": revocation.scope,
                "key": revocation.key,
                "before_ms": revocation.before_ms,
            }
        )
        return closed

    def revoke_local(self, revocation: Revocation) -> int:
        """Remember a revocation; close this process's sockets (4003) and held polls (403) whose
        ticket it covers. A connection admitted by a ticket minted after the cut-off stays."""
        self.revocations.add(revocation, self.clock.seconds())
        rooms = self.registry.rooms() if revocation.scope == USER else [revocation.key]
        closed = 0
        for room in rooms:
            for member in list(self.registry.members(room)):
                identity = getattr(member, "identity", None)
                if identity is None or identity.issued_ms > revocation.before_ms:
                    continue
                if revocation.covers(room, identity.uid, identity.guest):
                    closed += 1 if member.access_revoked() else 0
        for listener in self.revoke_listeners:
            listener(revocation)
        return closed

    def delete_room(self, room: str, before_ms: int) -> int:
        """Django deleted a room: refuse its older tickets, close it (4005) and forget it, here
        and on every other instance. Returns the sockets closed by this process."""
        closed = self.delete_room_local(room, before_ms)
        self.fanout.publish_event({"type": "room_deleted", "room": room, "before_ms": before_ms})
        return closed

    def delete_room_local(self, room: str, before_ms: int) -> int:
        """Refuse tickets for `room` minted up to `before_ms`, then `room_gone`."""
        self.revocations.add(Revocation(ROOM, room, before_ms), self.clock.seconds())
        return self.room_gone(room)

    def room_gone(self, room: str) -> int:
        """The room no longer exists (a control call, or Django answered 404 for it): close its
        sockets (4005) and held polls (410) and forget everything kept about it (members,
        presence, recent buffer, deleted ids, archived flag). Returns the sockets closed."""
        closed = 0
        for member in list(self.registry.members(room)):
            closed += 1 if member.room_deleted() else 0
        self.registry.forget_room(room)
        for listener in self.forget_listeners:
            listener(room)
        log.info("room {room} is gone: closed {closed}", room=room, closed=closed)
        return closed

    def apply_event(self, envelope: dict) -> None:
        """A room-state event relayed by another instance (chatserver/redisfanout.py)."""
        kind = envelope.get("type")
        if kind == "revoked":
            scope, key, before_ms = envelope["scope"], envelope["key"], envelope["before_ms"]
            if scope in SCOPES and isinstance(key, str):
                self.revoke_local(Revocation(scope, key, int(before_ms)))
        elif kind == "unarchived":
            self.unarchive_local(str(envelope["room"]))
        elif kind == "room_deleted":
            self.delete_room_local(str(envelope["room"]), int(envelope["before_ms"]))

    def history_failed(self, room: str, failure: Any) -> bool:
        """A history read failed: True when Django said the room is gone (then it is closed
        with 4005 / 410 like a deleted room), False for a transient failure (1011 / 503)."""
        if failure.check(UnknownRoom) is None:
            return False
        self.room_gone(room)
        return True

    def stats(self) -> dict:
        """Live numbers for `/internal/stats`: sockets, and per room who is online."""
        rooms = {}
        total = 0
        for room in self.registry.rooms():
            sockets = sum(1 for m in self.registry.members(room) if getattr(m, "is_socket", False))
            total += sockets
            rooms[room] = {"online": self.registry.online(room), "connections": sockets}
        return {"connections": total, "rooms": rooms}

    def delete(self, room: str, message_id: int) -> int:
        """Tell the room a message was deleted; returns listeners notified."""
        return self.fanout.publish_deleted(room, message_id)
