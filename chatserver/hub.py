"""What both transports share: tickets, rooms, history, sending, room events, moderation.

`ChatHub` is the one object the transports (chatserver/protocol.py, chatserver/longpoll.py) talk
to, through verbs: `verify`, `connect`/`disconnect`/`spend` (limits), `join`/`leave`,
`present`/`absent` (presence of pollers), `history`, `submit`, `typing`, `presence`,
`remembered`, `refuse` (count a refusal) and `log_refusal`; the personal feed's transports use
`verify_user`, `follow` and `unfollow`. They never reach its collaborators:
the registry, the fan-out (`chatserver.fanout.Fanout`), the persistence queue, the limits and
the metrics are built by `chatserver.service.build_hub` (the composition root) and injected.
Django's control calls arrive as verbs too: `announce` (any room event of
chatserver/events.py), `notify_users` (a user event for a list of user ids), `archive`,
`unarchive`, `revoke`, `delete_room`, `rename`; process-wide state reaches the other instances
through `Fanout.publish_state` and comes back in `apply_state`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from autobahn.websocket.protocol import PreparedMessage
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel

from chatserver.config import ChatServerConfig
from chatserver.djangoclient import UnknownRoom
from chatserver.events import kind_of
from chatserver.fanout import Fanout, presence_frame, typing_frame
from chatserver.frames import ClientFrame
from chatserver.history import HistoryReader
from chatserver.limits import ClientLimits
from chatserver.logthrottle import LogThrottle
from chatserver.metrics import ChatMetrics
from chatserver.persistence import PersistenceQueue, QueueFull
from chatserver.revocations import ROOM, SCOPES, USER, Revocation, RevocationList, room_of
from chatserver.rooms import RoomRegistry
from chatserver.tickets import Identity, TicketError, verify_ticket, verify_user_ticket
from chatserver.users import UserRegistry

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


class ChatHub:
    """Process-wide chat state and the verbs both transports and the control API use."""

    def __init__(
        self,
        config: ChatServerConfig,
        clock: IReactorTime,
        *,
        registry: RoomRegistry,
        fanout: Fanout,
        persistence: PersistenceQueue,
        history: HistoryReader,
        limits: ClientLimits,
        log_throttle: LogThrottle,
        revocations: RevocationList,
        metrics: ChatMetrics,
        users: UserRegistry | None = None,
    ) -> None:
        self.config = config
        # user id -> feed connections; the fan-out delivers user events through the same one.
        self.users = users if users is not None else UserRegistry()
        self.clock = clock
        self.registry = registry
        self.fanout = fanout
        self.persistence = persistence
        self.metrics = metrics
        self.revocations = revocations
        self._history = history
        self._limits = limits
        self._log_throttle = log_throttle
        # Called with the slug after a room's listeners were closed (the long-poll resource).
        self.archive_listeners: list[Callable[[str], Any]] = []
        # Called with a `Revocation` / a deleted room's slug after its listeners were closed.
        self.revoke_listeners: list[Callable[[Revocation], Any]] = []
        self.forget_listeners: list[Callable[[str], Any]] = []
        self.shutting_down = False
        # uid -> (new name, when): renames Django announced, applied to older tickets.
        self._renamed: OrderedDict[str, tuple[str, float]] = OrderedDict()

    # admission -----------------------------------------------------------------------------

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

    def verify_user(self, ticket: str) -> Identity:
        """Check a user ticket for the personal feed (raises `TicketError`: `wrong_room` for a
        room ticket, `not_a_user` for a guest's, `revoked` after a sign-out)."""
        now = self.clock.seconds()
        identity = verify_user_ticket(
            ticket, secrets=self.config.secrets, now=now, max_ttl=self.config.max_ticket_ttl
        )
        if self.revocations.refuses("@me", identity.uid, False, identity.issued_ms, now):
            raise TicketError("revoked")
        return identity

    def follow(self, identity: Identity, member: object) -> None:
        """Start delivering the events addressed to `identity`'s user to `member` (a feed
        socket or a feed mailbox)."""
        self.users.follow(identity.user_id, member)

    def unfollow(self, identity: Identity, member: object) -> None:
        """Stop delivering `identity`'s user events to `member`."""
        self.users.unfollow(identity.user_id, member)

    def notify_users(self, users: list[int], event: dict) -> int:
        """Django addressed a user event (`{"type": ...}`, opaque here) to `users` (Django user
        ids): to their feeds here and on every instance. Returns feed connections reached here."""
        return self.fanout.publish_user_event(users, event)

    def connect(self, uid: str, address: str) -> bool:
        """Count one more connection (socket or held poll) of an identity and an address;
        False when either is at its cap (nothing counted then)."""
        return self._limits.connect(uid, address)

    def disconnect(self, uid: str, address: str) -> None:
        """A connection counted by `connect` ended."""
        self._limits.disconnect(uid, address)

    def spend(self, uid: str, address: str) -> float | None:
        """Spend one frame (or request) of the budgets; seconds to wait when over them."""
        return self._limits.spend(uid, address)

    def refuse(self, kind: str) -> None:
        """Count a refusal (`chat_errors_total{kind}`)."""
        self.metrics.errors.labels(kind=kind).inc()

    def log_refusal(
        self, logger: Logger, key: str, text: str, level: LogLevel = LogLevel.info, **kw: Any
    ) -> None:
        """Log a line an unauthenticated client can cause, throttled per `key`."""
        self._log_throttle.emit(logger, key, text, level, **kw)

    def is_archived(self, room: str) -> bool:
        """True once Django told us the room was archived."""
        return room in self.registry.archived

    # rooms and presence --------------------------------------------------------------------

    def join(self, room: str, member: object, identity: Identity | None = None) -> None:
        """Start delivering the room's events to `member`; with `identity` (a socket) its
        person also counts as online (the room is told when that changed)."""
        self.registry.add_member(room, member)
        if identity is not None:
            self.present(room, identity)

    def leave(self, room: str, member: object, identity: Identity | None = None) -> None:
        """Stop delivering to `member`; with `identity`, its person counts once less."""
        self.registry.remove_member(room, member)
        if identity is not None:
            self.absent(room, identity.uid)

    def present(self, room: str, identity: Identity) -> None:
        """One more holder of `identity`'s presence (a socket, a poller's lease); a holder under
        a newer name renames the person at once."""
        if self.registry.add_presence(room, identity.uid, identity.name):
            self.fanout.publish_presence(room)

    def renamed_here(self, room: str, identity: Identity) -> None:
        """A holder already counted now speaks under `identity.name` (the newest name wins)."""
        if self.registry.rename(identity.uid, identity.name, room):
            self.fanout.publish_presence(room)

    def absent(self, room: str, uid: str) -> None:
        """One holder of `uid`'s presence less; the room is told when its person left."""
        if self.registry.remove_presence(room, uid):
            self.fanout.publish_presence(room)

    def presence(self, room: str) -> dict:
        """The room's presence frame as of now (hello and long-poll answers carry it)."""
        return presence_frame(self.registry, room)

    def remembered(self, room: str) -> list[dict]:
        """The room's remembered events (chatserver/events.py), for long-poll answers."""
        return self.registry.remembered(room)

    def typing(self, room: str, identity: Identity, sender: object) -> int:
        """`identity` is typing: tell everyone in the room but `sender` (a connection or a
        poller's uid). Returns members reached here."""
        return self.fanout.publish_event(room, typing_frame(identity.name), sender)

    # history -------------------------------------------------------------------------------

    def history(self, room: str, since: int | None) -> Deferred:
        """Fires with one bounded `HistoryPage` (`chatserver.history.HistoryReader.page`)."""
        return self._history.page(room, since)

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
        if frame.reply_to is not None:
            item["reply_to"] = frame.reply_to  # passed through; Django checks the parent
        if frame.attachments:
            item["attachments"] = list(frame.attachments)  # Django checks whose they are
        try:
            d = self.persistence.enqueue(item)
        except QueueFull:
            self.refuse("busy")
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

    # room events and moderation ------------------------------------------------------------

    def announce(self, room: str, event: dict) -> int:
        """Django raised a room event (`{"type": ..., ...}`, a kind of chatserver/events.py):
        to the room here and on every instance. Returns members reached here."""
        kind_of(event)  # UnknownKind for anything the table does not list
        return self.fanout.publish_event(room, event)

    def archive(self, room: str) -> int:
        """Django archived a room: close it here and on every other instance.

        Returns the sockets closed by this process.
        """
        closed = self.archive_local(room)
        self.fanout.publish_state({"type": "archived", "room": room})
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
        self.fanout.publish_state({"type": "unarchived", "room": room})

    def unarchive_local(self, room: str) -> None:
        """Forget the room's archived flag."""
        self.registry.archived.discard(room)

    def rename(self, uid: str, name: str) -> int:
        """Django says `uid` is now called `name` (a guest renamed itself).

        Every open socket of `uid` here and on the other instances takes the new name at once,
        presence is republished in every room it is in, and tickets minted before the rename
        (for `RENAME_MEMORY` seconds) speak under the new name. Returns this process's sockets
        renamed.
        """
        self.rename_local(uid, name)
        self.fanout.publish_state({"type": "renamed", "uid": uid, "name": name})
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

    # access --------------------------------------------------------------------------------

    def revoke(self, revocation: Revocation) -> int:
        """Django revoked a right: refuse older tickets and close what they admitted, here and
        on every other instance. Returns the sockets closed by this process."""
        closed = self.revoke_local(revocation)
        self.fanout.publish_state(
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
        room_key = room_of(revocation)
        rooms = self.registry.rooms() if room_key is None else [room_key]
        closed = 0
        for room in rooms:
            for member in list(self.registry.members(room)):
                identity = getattr(member, "identity", None)
                if identity is None or identity.issued_ms > revocation.before_ms:
                    continue
                if revocation.covers(room, identity.uid, identity.guest):
                    closed += 1 if member.access_revoked() else 0
        if revocation.scope == USER:
            # A signed-out (deactivated, deleted) user's feeds close too.
            for member in self.users.all_members():
                identity = getattr(member, "identity", None)
                if (
                    identity is not None
                    and identity.uid == revocation.key
                    and identity.issued_ms <= revocation.before_ms
                ):
                    closed += 1 if member.access_revoked() else 0
        for listener in self.revoke_listeners:
            listener(revocation)
        return closed

    def delete_room(self, room: str, before_ms: int) -> int:
        """Django deleted a room: refuse its older tickets, close it (4005) and forget it, here
        and on every other instance. Returns the sockets closed by this process."""
        closed = self.delete_room_local(room, before_ms)
        self.fanout.publish_state({"type": "room_deleted", "room": room, "before_ms": before_ms})
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

    def apply_state(self, event: dict) -> None:
        """A process-wide state event relayed by another instance, or found out after a Redis
        outage (chatserver/redisfanout.py): apply it here only."""
        kind = event.get("type")
        if kind == "revoked":
            scope, key, before_ms = event["scope"], event["key"], event["before_ms"]
            if scope in SCOPES and isinstance(key, str):
                self.revoke_local(Revocation(scope, key, int(before_ms)))
        elif kind == "archived":
            self.archive_local(str(event["room"]))
        elif kind == "unarchived":
            self.unarchive_local(str(event["room"]))
        elif kind == "room_deleted":
            self.delete_room_local(str(event["room"]), int(event["before_ms"]))
        elif kind == "room_gone":
            self.room_gone(str(event["room"]))
        elif kind == "renamed":
            uid, name = event.get("uid"), event.get("name")
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
