"""The WebSocket transport: Autobahn protocol and factory (docs/protocol.md, "WebSocket").

Daphne-style split: `ChatServerFactory` holds the shared state (the hub, the open connections,
the ping sweep) and `ChatServerProtocol` calls back into it. `/ws/<slug>` shares the port with
long polling, health, metrics and the control API: the front door (`chatserver/frontdoor.py`)
hands a connection whose request line is `GET /ws/...` straight to this protocol, and the Site
(`chatserver/web.py`) still serves `/ws/` through `WebSocketResource` for a later request on a
keep-alive HTTP connection.

Close codes outside 1000/3000-4999 (1001, 1003, 1008, 1009) go through Autobahn's failure path
(`_fail_connection`, with `failByDrop=False`) so clients still get a real close frame.
"""

from __future__ import annotations

import re
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from chatserver.admission import origin_allowed, parse_since
from chatserver.config import ChatServerConfig
from chatserver.fanout import Broadcast
from chatserver.frames import FrameError, encode, error_frame, parse_client_frame
from chatserver.history import HistoryPage
from chatserver.hub import ChatHub, prepare_frame
from chatserver.limits import client_address, retry_after_value
from chatserver.ratelimit import FloodCounter
from chatserver.tickets import TicketError

log = Logger()

# `parse_since` and `origin_allowed` moved to chatserver/admission.py; still importable here.
__all__ = ["ChatServerFactory", "ChatServerProtocol", "origin_allowed", "parse_since"]

WS_PATH_RE = re.compile(r"/ws/([A-Za-z0-9_-]{1,100})/?")
# The signed-in user's personal feed (docs/protocol.md, "Personal feed"): a user ticket, no room.
FEED_PATHS = ("/ws/@me", "/ws/@me/")

CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_REVOKED = 4003
CLOSE_ARCHIVED = 4004
CLOSE_DELETED = 4005
CLOSE_SLOW = 4008


@implementer(IPushProducer)
class ChatServerProtocol(WebSocketServerProtocol):
    """One socket: one identity in one room, or (`feed`) one user's personal feed."""

    is_socket = True
    feed = False
    room: str | None = None
    identity: Any = None
    since: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self._pending: list[Broadcast] | None = None
        self._flood: FloodCounter | None = None
        self.address = ""
        self._counted = False  # one of the identity's and the address's connections
        self._last_typing = float("-inf")
        self._ping_sent: float | None = None
        self._paused = False
        self._paused_bytes = 0
        self._joined = False
        # True while a history page (hello's, or a `history` request's) is being read.
        self._reading_history = False

    # Twisted --------------------------------------------------------------------------------

    def connectionMade(self) -> None:
        # Through the Site (an upgrade on a keep-alive HTTP connection), twisted.web's
        # HTTPChannel registered itself as this transport's producer; when the
        # WebSocketResource hands us the transport the channel would otherwise stay referenced
        # (with its request) for the socket's whole life, and be paused/resumed for our writes.
        # Take its place so flow control reaches us and the channel can be collected. From the
        # front door (chatserver/frontdoor.py) there is no producer yet: nothing to unregister.
        self.unregisterProducer()
        super().connectionMade()
        self.transport.registerProducer(self, True)

    def unregisterProducer(self) -> None:  # noqa: N802 (Autobahn API)
        """Unregister whatever producer the transport has (Autobahn may call this twice)."""
        if getattr(self.transport, "producer", None) is not None:
            self.transport.unregisterProducer()

    def pauseProducing(self) -> None:
        """The transport's buffer is full: from now on count what we still write.

        Twisted calls this again on every write while the buffer stays full, so only the first
        call starts the count; resetting it each time would let a stalled reader grow forever.
        """
        if not self._paused:
            self._paused = True
            self._paused_bytes = 0

    def resumeProducing(self) -> None:
        """The transport drained its buffer."""
        self._paused = False
        self._paused_bytes = 0

    def stopProducing(self) -> None:
        """The transport is going away; nothing to stop."""

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """Every write: a reader that stopped reading is cut before it costs unbounded memory."""
        if self._paused and not self._account(len(data)):
            return
        super().sendData(data, sync, chopsize)

    def _account(self, size: int) -> bool:
        self._paused_bytes += size
        if self._paused_bytes <= self.factory.config.max_outgoing_buffer:
            return True
        if self.state != self.STATE_CLOSED:
            self.factory.hub.refuse("slow_consumer")
            log.info("closing a socket whose reader stopped reading (4008)")
            self._paused = False  # let the close frame through the accounting
            self.sendCloseFrame(code=CLOSE_SLOW, reasonUtf8=b"outgoing buffer full")
            # Its buffer is already full: do not wait for a close handshake that cannot happen.
            self.dropConnection(abort=True)
        return False

    # handshake ------------------------------------------------------------------------------

    def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:  # noqa: N802, N803 (Autobahn API)
        """Autobahn's own refusals, with the contract's status for an Origin it cannot parse.

        A browser Origin that is malformed (`http://`, no host) or repeated is refused by Autobahn
        before `onConnect` with 400; the contract answers every Origin it does not allow with 403,
        whatever the Origin's shape (docs/protocol.md, "WebSocket").
        """
        if code == 400 and "Origin header" in reason:
            self.factory.hub.refuse("bad_origin")
            code = 403
            reason = "Origin not allowed"
        self._refuse_handshake(reason, code, responseHeaders)

    def onConnect(self, request: Any) -> None:
        """Check path, origin, ticket and room before the upgrade (403/404 refusals)."""
        hub: ChatHub = self.factory.hub
        if request.path in FEED_PATHS:
            return self._connect_feed(request)
        match = WS_PATH_RE.fullmatch(request.path)
        if match is None:
            raise ConnectionDeny(404, "Not Found")
        room = match.group(1)
        if not origin_allowed(request.origin, self.factory.config.allowed_origins):
            hub.refuse("bad_origin")
            raise ConnectionDeny(403, "Origin not allowed")
        ticket = (request.params.get("ticket") or [""])[0]
        try:
            identity = hub.verify(ticket, room)
        except TicketError as exc:
            hub.refuse("bad_ticket")
            hub.log_refusal(
                log, "bad_ticket", "refused a ticket: {reason}", LogLevel.debug, reason=exc.reason
            )
            raise ConnectionDeny(403, "Ticket refused") from None
        if hub.is_archived(room) or hub.shutting_down:
            status = 404 if hub.is_archived(room) else 503
            raise ConnectionDeny(status, "Room archived" if status == 404 else "Shutting down")
        try:
            self.since = parse_since((request.params.get("since") or [None])[0])
        except ValueError:
            raise ConnectionDeny(400, "Bad since") from None
        peer = getattr(self.transport.getPeer(), "host", None)
        self.address = client_address(
            peer, request.headers.get("x-forwarded-for"), self.factory.config.behind_proxy
        )
        if not hub.connect(identity.uid, self.address):
            hub.refuse("too_many_connections")
            raise ConnectionDeny(429, "Too many connections")
        self._counted = True
        self.room = room
        self.identity = identity
        return None

    def _connect_feed(self, request: Any) -> None:
        """`/ws/@me`: origin, a user ticket (a room ticket is refused), the connection caps."""
        hub: ChatHub = self.factory.hub
        if not origin_allowed(request.origin, self.factory.config.allowed_origins):
            hub.refuse("bad_origin")
            raise ConnectionDeny(403, "Origin not allowed")
        ticket = (request.params.get("ticket") or [""])[0]
        try:
            identity = hub.verify_user(ticket)
        except TicketError as exc:
            hub.refuse("bad_ticket")
            hub.log_refusal(
                log, "bad_ticket", "refused a ticket: {reason}", LogLevel.debug, reason=exc.reason
            )
            raise ConnectionDeny(403, "Ticket refused") from None
        if hub.shutting_down:
            raise ConnectionDeny(503, "Shutting down")
        peer = getattr(self.transport.getPeer(), "host", None)
        self.address = client_address(
            peer, request.headers.get("x-forwarded-for"), self.factory.config.behind_proxy
        )
        if not hub.connect(identity.uid, self.address):
            hub.refuse("too_many_connections")
            raise ConnectionDeny(429, "Too many connections")
        self._counted = True
        self.feed = True
        self.identity = identity

    def onOpen(self) -> None:
        """Join the room (buffering live events), then send `hello` with history and presence;
        a feed socket follows its user and says `hello` at once."""
        hub: ChatHub = self.factory.hub
        self._flood = FloodCounter(self.factory.reactor)
        if self.feed:
            self.factory.connections.add(self)
            self._joined = True
            hub.follow(self.identity, self)
            hello = {"type": "hello", "feed": True, "user": self.identity.public()}
            self._send_json(encode(hello))
            return
        self._pending = []
        self.factory.connections.add(self)
        self._joined = True
        hub.join(self.room, self, self.identity)
        log.debug("socket opened in {room}", room=self.room)
        self._reading_history = True
        d = hub.history(self.room, self.since)
        d.addCallbacks(self._send_hello, self._history_failed)

    def _send_hello(self, page: HistoryPage) -> None:
        pending, self._pending = self._pending, None
        self._reading_history = False
        if self.state != self.STATE_OPEN:
            return
        presence = self.factory.hub.presence(self.room)
        hello = {
            "type": "hello",
            "room": self.room,
            "user": self.identity.public(),
            "history": page.messages,
            "has_more": page.has_more,
            "online": presence["online"],
            "people": presence["people"],
            # What changed since (edits, deletions; chatserver/events.py `remembered`), so a
            # socket resuming with `since` sees the messages it already shows as they are now.
            "events": self.factory.hub.remembered(self.room),
        }
        # Prepared frames skip Autobahn's outgoing payload limit: a page (bounded by
        # `catchup_bytes`, at least one message) may exceed it.
        self.sendPreparedMessage(prepare_frame(encode(hello)))
        newest = page.last_id if page.messages else (self.since or -1)
        for broadcast in pending or ():
            if not broadcast.kind.hello_buffer:
                continue  # e.g. hello already carries who is online now; typing is stale
            message_id = broadcast.message_id
            # A message stored while the history was read can be in both: skip the copy.
            if message_id is not None and message_id <= newest:
                continue
            self.deliver(broadcast)

    def _history_request(self, after: int) -> None:
        """`{"type": "history", "after": id}`: the next page of catch-up, one read at a time.

        Live messages keep flowing while the page is read; the client places messages by id and
        ignores ids it already shows (docs/protocol.md, "Catching up").
        """
        if self._reading_history:
            self._send_json(
                error_frame("busy", "A history page is being read: ask again after it.")
            )
            return
        self._reading_history = True
        d = self.factory.hub.history(self.room, after)
        d.addCallbacks(self._send_page, self._history_failed)

    def _send_page(self, page: HistoryPage) -> None:
        self._reading_history = False
        if self.state != self.STATE_OPEN:
            return
        frame = {"type": "history", "messages": page.messages, "has_more": page.has_more}
        self.sendPreparedMessage(prepare_frame(encode(frame)))

    def _history_failed(self, failure: Any) -> None:
        self._pending = None
        self._reading_history = False
        if self.factory.hub.history_failed(self.room, failure):
            return  # Django does not know the room: closed with 4005, final
        self.factory.hub.refuse("history_failed")
        log.warn("history for a new socket failed: {error}", error=failure.getErrorMessage())
        self._fail_connection(CLOSE_INTERNAL, "history unavailable, reconnect")

    def _refuse_handshake(self, reason: str, code: int, responseHeaders: Any) -> None:  # noqa: N803
        """Autobahn's refusal (an HTTP error, then close), with its log line throttled: every
        refused handshake (bad ticket, foreign origin, over a cap) is an unauthenticated
        client's doing, and Autobahn logs each one."""
        self.wasNotCleanReason = reason
        self.factory.hub.log_refusal(
            log,
            "handshake_refused",
            "refused a WebSocket handshake ({code} {reason})",
            code=code,
            reason=reason,
        )
        self.sendHttpErrorResponse(code, reason, responseHeaders)
        # Autobahn logs dropping an unclean connection at warn, so once more per refusal; the
        # refusal is logged (throttled) above: drop it as a clean close, then record it unclean.
        self.wasClean = True
        self.dropConnection(abort=False)
        self.wasClean = False

    # frames ---------------------------------------------------------------------------------

    def deliver(self, broadcast: Broadcast) -> None:
        """A room event: one prepared frame written as is (no per-recipient encoding)."""
        if self._pending is not None:
            self._pending.append(broadcast)
            return
        if self.state != self.STATE_OPEN:
            return
        data = broadcast.prepared().payloadHybi
        if self._paused and not self._account(len(data)):
            return
        # Straight to the transport: Autobahn's sendData builds log arguments on every call.
        self.transport.write(data)

    def _send_json(self, frame: bytes) -> None:
        if self.state == self.STATE_OPEN:
            self.sendMessage(frame)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        """Rate-limit, validate and queue a client frame.

        Every text frame spends from the identity's and the address's budget (`hub.spend`),
        whatever it holds: messages, typing, pings and refused frames alike. Over budget the
        frame gets `rate_limited` with `retry_after`; `flood_close` refusals within the flood
        window close the socket with 1008.
        """
        hub: ChatHub = self.factory.hub
        if self.state != self.STATE_OPEN:
            return  # closing (revoked, archived, deleted): nothing more is accepted
        if isBinary:
            hub.refuse("binary_frame")
            self._fail_connection(CLOSE_UNSUPPORTED, "binary frames are not accepted")
            return
        try:
            config = self.factory.config
            frame = parse_client_frame(payload, config.max_body, config.max_files)
        except FrameError as exc:
            frame, refused = None, exc
        wait = hub.spend(self.identity.uid, self.address)
        if wait is not None:
            hub.refuse("rate_limited")
            if self._flood.count() >= self.factory.config.flood_close:
                log.info("closing a socket that flooded past the rate limit (1008)")
                self._fail_connection(CLOSE_POLICY, "rate limit exceeded")
                return
            nonce = frame.nonce if frame is not None else refused.nonce
            self._send_json(
                error_frame(
                    "rate_limited",
                    "Slow down: too many frames.",
                    nonce,
                    retry_after=retry_after_value(wait),
                )
            )
            return
        if frame is None:
            hub.refuse(refused.code)
            self._send_json(error_frame(refused.code, refused.message, refused.nonce))
            return
        if frame.type == "ping":
            self._send_json(b'{"type":"pong"}')
        elif self.feed:
            # The feed only delivers: what a room socket may send has no room here.
            hub.refuse("feed_read_only")
            self._send_json(
                error_frame("feed_read_only", "The feed accepts only ping frames.", frame.nonce)
            )
        elif frame.type == "history":
            self._history_request(frame.after)
        elif frame.type == "typing":
            now = self.factory.reactor.seconds()
            if now - self._last_typing >= self.factory.config.typing_interval:
                self._last_typing = now
                hub.typing(self.room, self.identity, self)
        else:
            d = hub.submit(self.room, self.identity, frame)
            d.addCallback(self._message_result)

    def _message_result(self, result: dict) -> None:
        if result.get("repeat"):
            # A nonce Django had stored: the sender alone learns the original (or its deletion).
            ack = {"type": "ack", "nonce": result["nonce"], "id": result["id"]}
            ack["deleted"] = result["deleted"]
            if "message" in result:
                ack["message"] = result["message"]
            self._send_json(encode(ack))
            return
        if result.get("ok"):
            return  # the room (sender included) gets it through the fan-out
        code = str(result.get("error") or "store_failed")
        retry_after = result.get("retry_after")
        self._send_json(
            error_frame(
                code,
                str(result.get("message") or code),
                result.get("nonce"),
                retry_after if isinstance(retry_after, int | float) else None,
            )
        )

    def onPong(self, payload: bytes) -> None:
        """The client is alive."""
        self._ping_sent = None

    def check_alive(self, now: float, timeout: float) -> None:
        """Called by the factory's ping sweep: ping, or drop a peer that never answered."""
        if self.state != self.STATE_OPEN:
            return
        if self._ping_sent is None:
            self._ping_sent = now
            self.sendPing()
        elif now - self._ping_sent >= timeout:
            self.factory.hub.refuse("ping_timeout")
            self.wasClean = False
            self.wasNotCleanReason = "ping timeout"
            self.dropConnection(abort=True)

    # closing --------------------------------------------------------------------------------

    def room_archived(self) -> bool:
        """The room was archived: close with 4004 (the client must not reconnect)."""
        if self.state != self.STATE_OPEN:
            return False
        self.sendClose(CLOSE_ARCHIVED, "room archived")
        return True

    def access_revoked(self) -> bool:
        """The right that admitted this socket was revoked: close with 4003 (the client may
        fetch one fresh ticket; Django decides whether it still may join)."""
        if self.state != self.STATE_OPEN:
            return False
        self.sendClose(CLOSE_REVOKED, "access revoked")
        return True

    def room_deleted(self) -> bool:
        """The room was deleted: close with 4005 (the client must not reconnect)."""
        if self.state != self.STATE_OPEN:
            return False
        self.sendClose(CLOSE_DELETED, "room deleted")
        return True

    def going_away(self) -> None:
        """Shutdown: 1001 in a real close frame (via the failure path: sendClose refuses it)."""
        if self.state == self.STATE_OPEN:
            self._fail_connection(CLOSE_GOING_AWAY, "server shutting down")

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        """Leave the room and forget the connection."""
        self._pending = None
        if self._counted:
            self._counted = False
            self.factory.hub.disconnect(self.identity.uid, self.address)
        if self._joined and self.feed:
            self._joined = False
            self.factory.connections.discard(self)
            self.factory.hub.unfollow(self.identity, self)
        elif self._joined:
            self._joined = False
            self.factory.connections.discard(self)
            self.factory.hub.leave(self.room, self, self.identity)
            log.debug("socket closed in {room} ({code})", room=self.room, code=code)
        self.factory.connection_closed(self)


class _ReactorTimer:
    """Autobahn's per-connection timers on the injected reactor instead of txaio's global one."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def call_later(self, delay: float, func: Any, *args: Any, **kwargs: Any) -> Any:
        return self._reactor.callLater(delay, func, *args, **kwargs)


class ChatServerFactory(WebSocketServerFactory):
    """Shared WebSocket state: the hub, open connections, the ping sweep."""

    protocol = ChatServerProtocol

    def __init__(self, hub: ChatHub, reactor: Any, config: ChatServerConfig) -> None:
        super().__init__(reactor=reactor)
        self.hub = hub
        self.config = config
        self.connections: set[ChatServerProtocol] = set()
        self._closing: set[ChatServerProtocol] = set()
        self._all_closed: list = []
        # Autobahn schedules handshake/close timeouts through txaio's global loop; route them
        # to our reactor so tests with a Clock see them and nothing touches the global reactor.
        self._batched_timer = _ReactorTimer(reactor)
        self.setProtocolOptions(
            maxFramePayloadSize=config.max_payload,
            maxMessagePayloadSize=config.max_payload,
            failByDrop=False,
            openHandshakeTimeout=config.handshake_timeout,
            closeHandshakeTimeout=5,
            # One sweep for every connection (`sweep`) instead of timers per connection.
            autoPingInterval=0,
            autoPingTimeout=0,
            perMessageCompressionAccept=lambda offers: None,
            # Origins are checked in onConnect: the contract wants 403, Autobahn answers 400.
            # The opaque origin `null` must reach onConnect too (refused there with 403).
            allowedOrigins=["*"],
            allowNullOrigin=True,
            tcpNoDelay=True,
        )

    def sweep(self) -> None:
        """Ping every open connection; drop those that did not answer the previous ping."""
        now = self.reactor.seconds()
        timeout = self.config.ping_timeout
        for connection in list(self.connections):
            connection.check_alive(now, timeout)

    def close_all(self) -> Deferred:
        """Close every socket with 1001; fires when they are all gone."""
        d: Deferred = Deferred()
        open_ones = [c for c in self.connections if c.state != c.STATE_CLOSED]
        if not open_ones:
            d.callback(None)
            return d
        self._closing = set(open_ones)
        self._all_closed.append(d)
        for connection in open_ones:
            connection.going_away()
        return d

    def connection_closed(self, connection: ChatServerProtocol) -> None:
        """Bookkeeping for `close_all`."""
        if connection in self._closing:
            self._closing.discard(connection)
            if not self._closing:
                waiters, self._all_closed = self._all_closed, []
                for d in waiters:
                    d.callback(None)
