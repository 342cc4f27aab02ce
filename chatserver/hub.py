"""What both transports share: tickets, rooms, history, sending, moderation.

`ChatHub` holds the process-wide state (registry, fan-out, persistence queue, Django client,
metrics); the WebSocket factory and the long-poll resources call into it, so a message sent on
one transport reaches the other in the same order. With a Redis bus (`CHAT_REDIS_URL`) the
fan-out also reaches the other instances (`chatserver.redisfanout`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from autobahn.websocket.protocol import PreparedMessage
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.config import ChatServerConfig
from chatserver.djangoclient import UnknownRoom
from chatserver.fanout import LocalFanout
from chatserver.frames import ClientFrame, encode
from chatserver.limits import ClientLimits
from chatserver.logthrottle import LogThrottle
from chatserver.metrics import ChatMetrics
from chatserver.persistence import PersistenceQueue, QueueFull
from chatserver.revocations import ROOM, SCOPES, USER, Revocation, RevocationList
from chatserver.rooms import RoomRegistry
from chatserver.signing import WINDOW_SECONDS
from chatserver.tickets import Identity, TicketError, verify_ticket

log = Logger()

# Seconds a sender refused with `busy` waits before its next try (the `retry_after` of the error
# frame and of the long poll's 503): about the time a full persistence queue needs to drain.
BUSY_RETRY_AFTER = 1.0
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


def error_result(
    code: str,
    nonce: str | None = None,
    text: str | None = None,
    retry_after: float | None = None,
) -> dict:
    """A refusal in the shape of a Django batch item error.

    `retry_after` (seconds) tells the sender how long to wait before resending the same nonce
    (docs/protocol.md, error frames).
    """
    result = {
        "ok": False,
        "error": code,
        "nonce": nonce,
        "message": text or ERROR_TEXT.get(code, code),
    }
    if retry_after is not None:
        result["retry_after"] = retry_after
    return result


def repeat_result(result: dict, nonce: str) -> dict:
    """Django's answer for a stored nonce (`created: false`) as the sender's acknowledgement.

    Returns `{"ok": True, "repeat": True, "nonce", "id", "deleted": bool, "message"?}`: the
    original message, or only its id when staff deleted it. Transports send it to the sender
    alone (the `ack` frame, the long poll's `repeat` answer); it is never published.
    """
    message = result.get("message") if isinstance(result.get("message"), dict) else None
    deleted = result.get("deleted") is True or message is None
    message_id = result.get("id")
    if not isinstance(message_id, int) and message is not None:
        message_id = message.get("id")
    answer = {"ok": True, "repeat": True, "nonce": nonce, "id": message_id, "deleted": deleted}
    if not deleted:
        answer["message"] = message
    return answer


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One bounded page of a room's messages, oldest first (see `ChatHub.history`).

    `has_more`: more messages follow the page (ask again after its last id); always false for a
    page of the newest messages.
    """

    messages: list[dict]
    has_more: bool

    @property
    def last_id(self) -> int | None:
        """Id of the page's newest message, None for an empty page."""
        return self.messages[-1]["id"] if self.messages else None


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
        # Budgets and connection caps per identity and per address, shared by both transports.
        self.limits = ClientLimits.from_config(config, clock)
        # Log lines unauthenticated clients can cause are throttled per kind.
        self.log_throttle = LogThrottle(clock, config.log_burst, config.log_interval)
        local = LocalFanout(
            self.registry,
            prepare_frame,
            self.metrics,
            clock=clock,
            presence_interval=config.presence_interval,
        )
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
                announce_interval=config.presence_interval,
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
            room_queue_limit=config.room_queue_limit,
            metrics=self.metrics,
        )
        self.shutting_down = False
        # uid -> (new name, when): renames Django announced, applied to older tickets.
        self._renamed: OrderedDict[str, tuple[str, float]] = OrderedDict()

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
        renamed = self._renamed.get(identity.uid)
        if (
            renamed is not None
            and identity.issued_ms <= renamed[1] * 1000
            and identity.name != renamed[0]
        ):
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
        self.fanout.publish_event({"type": "renamed", "uid": uid, "name": name})
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
        """Fires with one bounded `HistoryPage` for `hello`, a history request or a long poll.

        Without `since`: the newest `history_size` messages (never more than a page),
        `has_more` false (older ones are Django's public `before` pages). With `since`: the
        oldest page after that id, `has_more` true when the room holds more after the page.
        A page is at most `catchup_page` messages and about `catchup_bytes` encoded (always
        at least one message), so one request never holds a room's whole history.

        Answered from the recent buffer when it provably holds the page, else with one Django
        read; a read that reaches the room's end seeds the buffer for the next caller.
        """
        page = self.config.catchup_page
        cached = None
        if self.fanout.buffer_trusted(room):
            limit = min(self.config.history_size, page)
            cached = self.registry.history(room, since, limit)
        if cached is not None:
            if since is None:
                return succeed(self._bounded(cached, newest=True, has_more=False))
            return succeed(self._bounded(cached[:page], newest=False, has_more=len(cached) > page))
        return self._coalesced_fetch(room, since)

    def _bounded(self, messages: list[dict], newest: bool, has_more: bool) -> HistoryPage:
        """Cut a page to `catchup_bytes` (keeping the newest or the oldest end, at least one)."""
        budget = self.config.catchup_bytes
        ordered = reversed(messages) if newest else iter(messages)
        kept = 0
        size = 0
        for message in ordered:
            size += len(encode(message))
            if kept and size > budget:
                break
            kept += 1
        if kept == len(messages):
            return HistoryPage(messages, has_more)
        if newest:
            return HistoryPage(messages[len(messages) - kept :], has_more)
        return HistoryPage(messages[:kept], True)

    def _coalesced_fetch(self, room: str, since: int | None) -> Deferred:
        """One Django read per (room, since) at a time.

        After a restart every client of a room reconnects at once with the same `since`; without
        this each would read the same history from Django. A page that does not reach the room's
        end is final (a room's ids commit in order), so callers that arrived during the read
        share it. Otherwise they ask again when it ends: the read has seeded the recent buffer,
        merged with what was broadcast meanwhile (they were already members, buffering), so they
        are usually answered from memory, never from a read that started before they joined.
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
                if isinstance(result, HistoryPage) and result.has_more:
                    d.callback(result)
                else:
                    self.history(room, since).chainDeferred(d)
            return result

        return self._fetch_history(room, since).addBoth(settle)

    @inlineCallbacks
    def _fetch_history(self, room: str, since: int | None):
        page = self.config.catchup_page
        if since is None:
            limit = min(self.config.history_size, page)
            messages, older = yield self.django.latest_messages(room, limit)
            # The newest page is every message from its first id on; a short page is the room.
            complete_after = messages[0]["id"] - 1 if (messages and older) else 0
            self.registry.seed(room, messages, complete_after)
            return self._bounded(messages, newest=True, has_more=False)
        # One page, never the whole room: Django's `has_more` says whether more follow.
        messages, has_more = yield self.django.messages_after(room, since, page)
        if not has_more:
            # The page reaches the room's end: with what was broadcast meanwhile the buffer
            # holds everything after `since`. A page with more after it proves nothing there.
            self.registry.seed(room, messages, since)
        return self._bounded(messages, newest=False, has_more=has_more)

    # sending -------------------------------------------------------------------------------

    def submit(self, room: str, identity: Identity, frame: ClientFrame) -> Deferred:
        """Queue a validated message; fires with the sender's answer.

        That is Django's per-item result for a new message (already published to the room, the
        sender included), a `repeat_result` for a nonce Django had already stored (for the
        sender alone), or a refusal (`error_result`).
        """
        if self.is_archived(room):
            return succeed(error_result("room_archived", frame.nonce))
        if self.shutting_down:
            return succeed(error_result("busy", frame.nonce, retry_after=BUSY_RETRY_AFTER))
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
            return succeed(error_result("busy", frame.nonce, retry_after=BUSY_RETRY_AFTER))
        self.metrics.messages_in.inc()
        return d.addCallback(self._room_state_from_result, room).addCallback(
            self._answer, frame.nonce
        )

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

    @staticmethod
    def _answer(result: dict, nonce: str) -> dict:
        if result.get("ok") and result.get("created") is not True:
            return repeat_result(result, nonce)
        return result

    def _stored(self, message: dict, prev_id: int | None = None) -> None:
        """A message Django created (never a repeat): publish it to the room, in id order."""
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
        elif kind == "renamed":
            uid, name = envelope.get("uid"), envelope.get("name")
            if isinstance(uid, str) and isinstance(name, str) and 1 <= len(name) <= 64:
                self.rename_local(uid, name)

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
