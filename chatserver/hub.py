"""What both transports share: tickets, rooms, history, sending, moderation.

`ChatHub` holds the process-wide state (registry, fan-out, persistence queue, Django client,
metrics); the WebSocket factory and the long-poll resources call into it, so a message sent on
one transport reaches the other in the same order. With a Redis bus (`CHAT_REDIS_URL`) the
fan-out also reaches the other instances (`chatserver.redisfanout`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from autobahn.websocket.protocol import PreparedMessage
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.config import ChatServerConfig
from chatserver.fanout import LocalFanout
from chatserver.frames import ClientFrame
from chatserver.metrics import ChatMetrics
from chatserver.persistence import PersistenceQueue, QueueFull
from chatserver.rooms import RoomRegistry
from chatserver.tickets import Identity, verify_ticket

log = Logger()

HISTORY_PAGE = 1000
# How long a rename is applied to tickets minted before it (longer than any ticket's lifetime).
RENAME_MEMORY = 3600.0
RENAME_MEMORY_MAX = 100_000

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
                on_renamed=self.rename_local,
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
        # uid -> (new name, when): renames Django announced, applied to older tickets.
        self._renamed: OrderedDict[str, tuple[str, float]] = OrderedDict()

    # identity and rooms --------------------------------------------------------------------

    def verify(self, ticket: str, room: str) -> Identity:
        """Check a ticket for a room (raises `TicketError`)."""
        identity = verify_ticket(
            ticket, secrets=self.config.secrets, room=room, now=self.clock.seconds()
        )
        renamed = self._renamed.get(identity.uid)
        if renamed is not None and identity.iat <= renamed[1] and identity.name != renamed[0]:
            # A ticket minted before the guest renamed itself speaks under the new name.
            identity = replace(identity, name=renamed[0])
        return identity

    def rename(self, uid: str, name: str) -> int:
        """Django says `uid` is now called `name` (a guest renamed itself).

        Every open socket of `uid` here and on the other instances takes the new name at once,
        presence is republished in every room it is in, and tickets minted before the rename
        (for `RENAME_MEMORY` seconds) speak under the new name. Returns this process's sockets
        renamed.
        """
        self.rename_local(uid, name)
        self.fanout.publish_renamed(uid, name)
        return sum(
            1
            for room in self.registry.rooms()
            for member in self.registry.members(room)
            if getattr(member, "identity", None) is not None and member.identity.uid == uid
        )

    def rename_local(self, uid: str, name: str) -> None:
        """Apply a rename to this process: sockets, presence, and later checks of old tickets."""
        now = self.clock.seconds()
        self._renamed.pop(uid, None)
        self._renamed[uid] = (name, now)
        while self._renamed and (
            len(self._renamed) > RENAME_MEMORY_MAX
            or next(iter(self._renamed.values()))[1] < now - RENAME_MEMORY
        ):
            self._renamed.popitem(last=False)
        for room in self.registry.rooms():
            for member in list(self.registry.members(room)):
                identity = getattr(member, "identity", None)
                if identity is not None and identity.uid == uid and identity.name != name:
                    member.identity = replace(identity, name=name)
        for room in self.registry.rename(uid, name):
            self.fanout.publish_presence(room)

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
            "uid": identity.uid,
            "user_id": identity.user_id,
            "guest": identity.guest,
        }
        try:
            d = self.persistence.enqueue(item)
        except QueueFull:
            self.metrics.errors.labels(kind="busy").inc()
            return succeed(error_result("busy", frame.nonce))
        self.metrics.messages_in.inc()
        return d

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
