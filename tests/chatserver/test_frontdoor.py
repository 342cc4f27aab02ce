"""The front door on the chat server's port: routing by request line, hand-over, deadline."""

from __future__ import annotations

import gc
import weakref

import orjson
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource

from chatserver.frontdoor import MAX_REQUEST_LINE, FrontDoor, FrontDoorFactory
from chatserver.health import HealthResource, MetricsResource
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory, ChatServerProtocol
from chatserver.web import build_site
from tests.chatserver.support import ORIGIN, handshake, make_hub, parse_frames, ticket


class Door:
    """A front-door factory over a real hub, WebSocket factory and Site, and one connection."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.hub, self.reactor, self.django = make_hub()
        self.timeouts: list[int] = []
        ws_factory = ChatServerFactory(self.hub, self.reactor, self.hub.config)
        site = build_site(
            ws_factory,
            poll=LongPollResource(self.hub, self.hub.config, self.hub.clock),
            control=Resource(),
            health=HealthResource(self.django, lambda: {"connections": 0}),
            metrics=MetricsResource(self.hub.metrics.registry),
            reactor=self.reactor,
            request_timeout=timeout,
            on_request_timeout=lambda: self.timeouts.append(1),
        )
        self.factory = FrontDoorFactory(ws_factory, site)
        self.transport = StringTransport()
        door = self.factory.buildProtocol(None)
        self.transport.protocol = door  # as tcp.Server holds it; the door rewires it
        door.makeConnection(self.transport)

    def send(self, data: bytes) -> None:
        """Deliver bytes to whoever owns the connection now, as tcp.Server does."""
        self.transport.protocol.dataReceived(data)

    def response(self) -> tuple[int, bytes]:
        """(status, body) of the first response written (a chunked body is decoded)."""
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        if b"transfer-encoding: chunked" in head.lower():
            decoded = b""
            while body:
                size, _, rest = body.partition(b"\r\n")
                length = int(size, 16)
                decoded, body = decoded + rest[:length], rest[length + 2 :]
                if length == 0:
                    break
            body = decoded
        return int(head.split(b" ", 2)[1]), body


def test_a_websocket_handshake_split_across_reads_reaches_hello():
    """`GET /ws/...` arriving in pieces (the request line itself split) goes straight to a
    ChatServerProtocol, which answers 101 and `hello`; the front door's deadline is cancelled."""
    door = Door()
    raw = handshake(f"/ws/lobby?ticket={ticket(door.reactor)}", ORIGIN)
    for piece in (raw[:3], raw[3:9], raw[9:40], raw[40:]):
        door.send(piece)
    owner = door.transport.protocol
    assert isinstance(owner, ChatServerProtocol)
    status, body = door.response()
    assert status == 101
    frames = parse_frames(body)
    assert orjson.loads(frames[0][1])["type"] == "hello"
    assert door.transport.producer is owner  # flow control reaches the socket
    door.reactor.advance(60)
    assert not door.transport.disconnecting and door.timeouts == []


def test_healthz_is_answered_by_the_site():
    """A plain HTTP request goes to the Site's channel and is answered there."""
    door = Door()
    door.send(b"GET /heal")
    door.send(b"thz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert isinstance(door.transport.protocol, HTTPChannel)
    status, body = door.response()
    assert status == 200 and orjson.loads(body)["status"] == "ok"


def test_a_long_poll_is_held_by_the_site_and_answered_when_a_message_arrives():
    """A long-poll GET is routed to the Site and held there like before (no front-door cut)."""
    door = Door()
    door.django.add("lobby")
    path = f"/poll/lobby?ticket={ticket(door.reactor)}&since=1"
    door.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert isinstance(door.transport.protocol, HTTPChannel)
    assert door.transport.value() == b""  # held: nothing newer than since=1
    door.reactor.advance(door.hub.config.poll_timeout + 1.5)
    door.factory.site.resource.children[b"poll"].sweep()
    status, body = door.response()
    assert status == 200 and orjson.loads(body)["messages"] == []
    assert door.timeouts == []


def test_a_websocket_path_on_a_keep_alive_http_connection_still_upgrades_through_the_site():
    """After a plain request, a later upgrade on the same connection goes through the Site's
    WebSocketResource, as before the front door."""
    door = Door()
    door.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = len(door.transport.value())
    door.send(handshake(f"/ws/lobby?ticket={ticket(door.reactor)}", ORIGIN))
    assert door.transport.value()[first:].startswith(b"HTTP/1.1 101")
    assert isinstance(door.transport.protocol, ChatServerProtocol)


def test_a_silent_connection_is_aborted_at_the_deadline():
    """Nothing sent: aborted after request_timeout and counted as a slow request."""
    door = Door()
    door.reactor.advance(9.9)
    assert not door.transport.disconnecting
    door.reactor.advance(0.2)
    assert door.transport.disconnecting and door.timeouts == [1]


def test_a_trickled_request_line_is_aborted_at_the_deadline():
    """A request line trickled a byte a second never completes: cut at request_timeout."""
    door = Door()
    for byte in b"GET /ws/lobby?ticket=xxxxxxxxxxxxxxxxxxxxxx":
        if door.transport.disconnecting:
            break
        door.send(bytes([byte]))
        door.reactor.advance(1)
    assert door.transport.disconnecting and door.timeouts == [1]
    assert isinstance(door.transport.protocol, FrontDoor)


def test_an_oversize_request_line_is_refused_with_400():
    """More than MAX_REQUEST_LINE bytes without a line end: 400 and close, nothing buffered
    further, no deadline left."""
    door = Door()
    door.send(b"GET /" + b"a" * MAX_REQUEST_LINE)
    status, _ = door.response()
    assert status == 400 and door.transport.disconnecting
    door.send(b"more" * 1000)
    assert door.transport.protocol._buffer == b""
    assert all(not call.active() for call in door.reactor.getDelayedCalls())


def test_an_oversize_request_line_arriving_in_one_read_with_its_line_end_is_refused():
    """A line end past the limit is refused too, not handed over."""
    door = Door()
    door.send(b"GET /ws/" + b"a" * MAX_REQUEST_LINE + b" HTTP/1.1\r\n\r\n")
    status, _ = door.response()
    assert status == 400 and isinstance(door.transport.protocol, FrontDoor)


def test_the_front_door_is_not_referenced_after_the_hand_over():
    """Neither the transport, the new owner nor the reactor keeps the front door alive: an
    idle socket costs only its protocol."""
    for request in (
        handshake("/ws/lobby?ticket=bad", ORIGIN),
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    ):
        door = Door()
        ref = weakref.ref(door.transport.protocol)
        door.send(request)
        assert not isinstance(door.transport.protocol, FrontDoor)
        gc.collect()
        assert ref() is None


def test_connection_lost_before_the_request_line_cancels_the_deadline():
    """A client that leaves early leaves no timer behind."""
    from twisted.internet.error import ConnectionDone
    from twisted.python.failure import Failure

    door = Door()
    door.send(b"GET /")
    door.transport.protocol.connectionLost(Failure(ConnectionDone()))
    assert all(not call.active() for call in door.reactor.getDelayedCalls())
    assert door.timeouts == []
