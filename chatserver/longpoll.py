"""The long-polling transport (docs/protocol.md, "Long polling").

    GET  /poll/<slug>?ticket=&since=   one page of messages after `since` at once (`has_more` when
         [&wait=0]                     more follow: poll again at once), else held until an event
                                       that wakes polls arrives or `poll_timeout`; without
                                       `since`, or with `wait=0`, the newest now
    POST /poll/<slug>?ticket=          {"body", "nonce"} -> {"events": [message or ack frame]}
                                       once stored; {"type": "typing"} -> {"events": []}
    GET  /poll/@me?ticket=&cursor=     the personal feed (chatserver/feedpoll.py)

Every answer carries `events`: the frames a socket would have received (messages, the room's
remembered events, anything that woke the poll, and a presence frame last), plus `cursor`, the
`since` of the next poll, and `has_more`; the fields of the previous release (`messages`,
`online`, `people`, `deleted`) are kept for pages loaded before an upgrade. Which kinds wake a
held poll or wait behind its history read comes from chatserver/events.py.

Held polls are room members like sockets: a broadcast answers them all with one encoded body.
Presence: a poller is online while it polls and for `poll_grace` after; one sweep (`sweep`, every
second) expires leases and times out held polls, instead of a timer per client. The resource
talks only to the hub's verbs; its settings and clock are injected (chatserver/service.py).
"""

from __future__ import annotations

from typing import Any

import orjson
from twisted.logger import Logger
from twisted.web.server import NOT_DONE_YET

from chatserver.admission import cors_allowed, parse_since
from chatserver.config import ChatServerConfig
from chatserver.fanout import Broadcast
from chatserver.feedpoll import FeedPoll
from chatserver.frames import FrameError, parse_json_object, validate_message
from chatserver.history import HistoryPage
from chatserver.limits import client_address, retry_after_header, retry_after_value
from chatserver.methods import MethodsResource, allow_header
from chatserver.pollanswers import poll_answer, post_answer
from chatserver.tickets import Identity, TicketError
from chatserver.web import error_response, json_response, read_body

log = Logger()


_ACCESS_REVOKED = orjson.dumps(
    {"error": "access_revoked", "message": "Your access changed: fetch a new ticket."}
)
_ROOM_DELETED = orjson.dumps({"error": "room_deleted", "message": "This room was deleted."})


class _Lease:
    __slots__ = ("name", "active", "expires")

    def __init__(self, name: str) -> None:
        self.name = name
        self.active = 0
        self.expires = 0.0


class _HeldPoll:
    """A GET waiting for the room's next event; a member of the room like a socket."""

    __slots__ = (
        "owner",
        "request",
        "room",
        "uid",
        "address",
        "since",
        "deadline",
        "pending",
        "done",
        "identity",
        "wait",
    )
    is_socket = False

    def __init__(
        self, owner: LongPollResource, request: Any, room: str, uid: str, since, wait: bool = True
    ) -> None:
        self.owner = owner
        self.wait = wait  # False (`wait=0`): answer once the history is read, even when empty
        self.request = request
        self.room = room
        self.uid = uid
        self.address = ""  # set once the poll is counted against the connection caps
        self.since = since
        self.deadline = float("inf")
        self.pending: list[Broadcast] | None = []  # events while the history is being read
        self.done = False
        self.identity: Identity | None = None  # the ticket's identity (revocations match it)

    def deliver(self, broadcast: Broadcast) -> None:
        kind = broadcast.kind
        if self.done or not kind.wakes_polls or broadcast.sent_by(self):
            return
        if self.pending is not None:
            if kind.hello_buffer:
                self.pending.append(broadcast)
            return
        body = broadcast.cached("poll", lambda: self.owner.answer(self.room, [broadcast.frame]))
        self.owner.finish(self, 200, body)

    def room_archived(self) -> bool:
        self.owner.finish(self, 410, orjson.dumps({"error": "room_archived"}))
        return False  # not a socket: the archive call counts closed sockets

    def access_revoked(self) -> bool:
        self.owner.finish(self, 403, _ACCESS_REVOKED)
        return False

    def room_deleted(self) -> bool:
        self.owner.finish(self, 410, _ROOM_DELETED)
        return False


class LongPollResource(MethodsResource):
    """`/poll/<slug>`: GET to poll, POST to send, OPTIONS for CORS preflight; HEAD and every other
    method get 405 (a GET joins presence and may be held: HEAD must not do either)."""

    isLeaf = True
    subpaths = True  # the room slug
    methods = (b"GET", b"POST", b"OPTIONS")

    def __init__(
        self, hub: Any, config: ChatServerConfig, clock: Any, feed: FeedPoll | None = None
    ) -> None:
        super().__init__()
        self.hub = hub
        # `/poll/@me`: the personal feed's polls (a user ticket, no room).
        self.feed = feed if feed is not None else FeedPoll(hub, config, clock)
        self._config = config
        self._clock = clock
        self._held: set[_HeldPoll] = set()
        self._leases: dict[tuple[str, str], _Lease] = {}
        # (room, uid) -> when its last typing notice went out (one per `typing_interval`).
        self._typed: dict[tuple[str, str], float] = {}

    # bookkeeping ---------------------------------------------------------------------------

    def active(self) -> int:
        """Held polls right now (room and feed)."""
        return len(self._held) + self.feed.active()

    def _lease_start(self, room: str, identity: Identity) -> None:
        key = (room, identity.uid)
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = _Lease(identity.name)
            self.hub.present(room, identity)
        elif lease.name != identity.name:
            # The guest renamed itself: the newest ticket's name wins, at once.
            lease.name = identity.name
            self.hub.renamed_here(room, identity)
        lease.active += 1

    def _lease_end(self, room: str, uid: str) -> None:
        lease = self._leases.get((room, uid))
        if lease is not None:
            lease.active -= 1
            if lease.active <= 0:
                lease.active = 0
                lease.expires = self._clock.seconds() + self._config.poll_grace

    def sweep(self) -> None:
        """Time out held polls and expire presence of pollers past their grace period."""
        now = self._clock.seconds()
        self.feed.sweep()
        for held in [h for h in self._held if h.deadline <= now]:
            self.finish(held, 200, self.answer(held.room, [], since=held.since))
        for key, lease in list(self._leases.items()):
            if lease.active == 0 and lease.expires <= now:
                del self._leases[key]
                self.hub.absent(*key)
        interval = self._config.typing_interval
        for key in [k for k, when in self._typed.items() if when <= now - interval]:
            del self._typed[key]

    def release_all(self) -> None:
        """Shutdown: answer every held poll with an empty list."""
        self.feed.release_all()
        for held in list(self._held):
            self.finish(held, 200, self.answer(held.room, [], since=held.since))

    def room_archived(self, room: str) -> None:
        """Held polls of an archived room answer 410 (they are members: the hub reached them)."""
        for held in [h for h in self._held if h.room == room]:
            held.room_archived()

    def revoked(self, revocation: Any) -> None:
        """A revocation (the hub closed the held polls): its pollers leave presence now instead
        of after the grace period; their next poll is refused."""
        now = self._clock.seconds()
        for (room, uid), lease in list(self._leases.items()):
            if lease.active == 0 and revocation.covers(room, uid, uid.startswith("g:")):
                lease.expires = now

    def room_deleted(self, room: str) -> None:
        """A deleted room: forget its pollers (the registry already forgot their presence)."""
        for held in [h for h in self._held if h.room == room]:
            held.room_deleted()
        for key in [k for k in self._leases if k[0] == room]:
            del self._leases[key]

    def finish(self, held: _HeldPoll, status: int, body: bytes) -> None:
        """Answer a held poll once and forget it."""
        if held.done:
            return
        held.done = True
        self._held.discard(held)
        self.hub.leave(held.room, held)
        self._lease_end(held.room, held.uid)
        self.hub.disconnect(held.uid, held.address)
        request = held.request
        request.setResponseCode(status)
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"Cache-Control", b"no-store")
        request.write(body)
        request.finish()

    def answer(
        self, room: str, frames: list[dict], has_more: bool = False, since: int | None = None
    ) -> bytes:
        """A GET answer for `room` with `frames` (see `chatserver.pollanswers.poll_answer`)."""
        return poll_answer(
            frames, self.hub.remembered(room), self.hub.presence(room), has_more, since
        )

    # HTTP ----------------------------------------------------------------------------------

    def _cors(self, request: Any) -> bool:
        return cors_allowed(request, self._config.allowed_origins)

    def _admit(self, request: Any) -> tuple[str, Identity] | bytes:
        """The checks GET and POST share: origin (CORS), room path, ticket, archived room.
        Returns `(room, identity)`, or the error body already set on the request."""
        if not self._cors(request):
            return error_response(request, 403, "bad_origin", "Origin not allowed.")
        if len(request.postpath) != 1 or not request.postpath[0]:
            return error_response(request, 404, "not_found", "No such room.")
        room = request.postpath[0].decode("utf-8", "replace")
        ticket = (request.args.get(b"ticket") or [b""])[0].decode("utf-8", "replace")
        try:
            identity = self.hub.verify(ticket, room)
        except TicketError:
            self.hub.refuse("bad_ticket")
            return error_response(request, 403, "bad_ticket", "Fetch a new ticket.")
        if self.hub.is_archived(room):
            return error_response(request, 404, "room_archived", "This room is archived.")
        return room, identity

    def _address(self, request: Any) -> str:
        """The client address the limits count (see `chatserver.limits.client_address`)."""
        forwarded = request.getHeader(b"x-forwarded-for")
        return client_address(
            getattr(request.getClientAddress(), "host", None),
            forwarded.decode("latin-1") if forwarded else None,
            self._config.behind_proxy,
        )

    def render_OPTIONS(self, request: Any) -> bytes:  # noqa: N802 (twisted API)
        if not self._cors(request):
            return error_response(request, 403, "bad_origin", "Origin not allowed.")
        request.setHeader(b"Allow", allow_header(self.methods))
        request.setHeader(b"Access-Control-Allow-Methods", allow_header(self.methods))
        request.setHeader(b"Access-Control-Allow-Headers", b"Content-Type")
        request.setHeader(b"Access-Control-Max-Age", b"600")
        request.setResponseCode(204)
        return b""

    def _is_feed(self, request: Any) -> bool:
        return request.postpath == [b"@me"]

    def render_GET(self, request: Any) -> Any:  # noqa: N802 (twisted API)
        if self._is_feed(request):
            if not self._cors(request):
                return error_response(request, 403, "bad_origin", "Origin not allowed.")
            return self.feed.render_GET(request, self._address(request))
        found = self._admit(request)
        if isinstance(found, bytes):
            return found
        room, identity = found
        try:
            since = parse_since((request.args.get(b"since") or [b""])[0])
        except ValueError:
            return error_response(request, 400, "bad_since", "since must be a message id.")
        wait = (request.args.get(b"wait") or [b"1"])[0]
        if wait not in (b"0", b"1"):
            return error_response(request, 400, "bad_wait", "wait must be 0 or 1.")
        if self.hub.shutting_down:
            request.setResponseCode(200)
            request.setHeader(b"Content-Type", b"application/json")
            request.setHeader(b"Cache-Control", b"no-store")
            return poll_answer(
                [], [], {"type": "presence", "online": [], "people": []}, since=since
            )
        address = self._address(request)
        if not self.hub.connect(identity.uid, address):
            self.hub.refuse("too_many_connections")
            return error_response(
                request, 429, "too_many_connections", "Too many open connections."
            )
        held = _HeldPoll(self, request, room, identity.uid, since, wait == b"1")
        held.address = address
        held.identity = identity
        self._lease_start(room, identity)
        # Join before reading history, buffering events, so nothing falls between the two.
        self._held.add(held)
        self.hub.join(room, held)
        request.notifyFinish().addErrback(lambda _f: self._gone(held))
        d = self.hub.history(room, since)
        d.addCallbacks(
            self._history, self._history_failed, callbackArgs=(held,), errbackArgs=(held,)
        )
        return NOT_DONE_YET

    def _gone(self, held: _HeldPoll) -> None:
        # The client went away: forget the poll without writing to a dead request.
        if not held.done:
            held.done = True
            self._held.discard(held)
            self.hub.leave(held.room, held)
            self._lease_end(held.room, held.uid)
            self.hub.disconnect(held.uid, held.address)

    def _history(self, page: HistoryPage, held: _HeldPoll) -> None:
        if held.done:
            return
        pending, held.pending = held.pending or [], None
        frames = [{"type": "message", **message} for message in page.messages]
        if page.has_more:
            # One page of catch-up: the client polls again at once after its last id. Live
            # events meanwhile come after the rest of the catch-up, never before it.
            self.finish(held, 200, self.answer(held.room, frames, True, held.since))
            return
        newest = page.last_id if page.messages else (held.since or -1)
        for broadcast in pending:
            message_id = broadcast.message_id
            if message_id is None:
                frames.append(broadcast.frame)  # a kind that wakes polls (see `deliver`)
            elif message_id > newest:
                # A message stored while the history was read can be in both: skip the copy.
                frames.append(broadcast.frame)
                newest = message_id
        if frames or held.since is None or not held.wait:
            # `wait=0` (a client's first poll): the answer says at once that the chat server
            # took the poll, so the client can count itself connected without a long hold.
            self.finish(held, 200, self.answer(held.room, frames, since=held.since))
            return
        held.deadline = self._clock.seconds() + self._config.poll_timeout

    def _history_failed(self, failure: Any, held: _HeldPoll) -> None:
        if self.hub.history_failed(held.room, failure):
            return  # Django does not know the room: answered 410 room_deleted, final
        self.hub.refuse("history_failed")
        log.warn("history for a poll failed: {error}", error=failure.getErrorMessage())
        self.finish(
            held,
            503,
            orjson.dumps({"error": "store_failed", "message": "History is unavailable."}),
        )

    def render_POST(self, request: Any) -> Any:  # noqa: N802 (twisted API)
        if self._is_feed(request):
            request.setHeader(b"Allow", b"GET, OPTIONS")
            return error_response(request, 405, "method_not_allowed", "The feed is read-only.")
        found = self._admit(request)
        if isinstance(found, bytes):
            return found
        room, identity = found
        wait = self.hub.spend(identity.uid, self._address(request))
        if wait is not None:
            self.hub.refuse("rate_limited")
            request.setHeader(b"Retry-After", retry_after_header(wait))
            return json_response(
                request,
                429,
                {
                    "error": "rate_limited",
                    "message": "Slow down: too many messages.",
                    "retry_after": retry_after_value(wait),
                },
            )
        raw = read_body(request, self._config.max_payload)
        if raw is None:
            return error_response(request, 413, "too_large", "The body is over the limit.")
        try:
            obj = parse_json_object(raw)
            if obj.get("type") == "typing":
                return self._typing(request, room, identity)
            frame = validate_message(obj, self._config.max_body, self._config.max_files)
        except FrameError as exc:
            self.hub.refuse(exc.code)
            return error_response(request, 400, exc.code, exc.message)
        self._lease_start(room, identity)
        finished: list = []
        request.notifyFinish().addBoth(finished.append)

        def answer(result: dict) -> None:
            self._lease_end(room, identity.uid)
            if finished:
                return  # the client went away; the message is stored and broadcast anyway
            request.write(post_answer(request, result))
            request.finish()

        self.hub.submit(room, identity, frame).addCallback(answer)
        return NOT_DONE_YET

    def _typing(self, request: Any, room: str, identity: Identity) -> bytes:
        """`{"type": "typing"}`: the socket's typing frame, for pollers (at most one notice per
        `typing_interval` per person and room; others' held polls wake, the sender's do not)."""
        now = self._clock.seconds()
        key = (room, identity.uid)
        if now - self._typed.get(key, float("-inf")) >= self._config.typing_interval:
            self._typed[key] = now
            self.hub.typing(room, identity, identity.uid)
        return json_response(request, 200, {"events": []})
