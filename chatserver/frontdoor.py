"""The listening port's first protocol: route a connection by its request line, then step aside.

twisted.web parses a request (HTTPChannel, Request, resource traversal) before
`WebSocketResource` hands the transport to Autobahn, which parses the same handshake again; that
double parse was most of a socket's connect CPU. `FrontDoor` reads only the request line: a
`GET /ws/...` goes straight to a `ChatServerProtocol` built by the WebSocket factory, anything
else to the Site's HTTP channel. Either way the transport's `protocol` is rewired (as
`WebSocketResource` does, and as `tcp.Server` reads it on every read) and the bytes seen so far
are replayed, so the new protocol sees the connection as if it had owned it from the start.
The front door then keeps no reference and is collected. Only `GET /ws/` goes to Autobahn:
`HEAD /ws/...`, `OPTIONS /ws/...` and every other method go to the Site, which answers them by the
methods table of docs/protocol.md ("HTTP methods and paths"; `chatserver/methods.py`).

Slowloris: one deadline (`request_timeout`, the handshake timeout) runs from the connection
until the request line is complete; the next owner has its own deadline for the rest of the head
(Autobahn's open handshake timeout, or the Site channel's whole-request deadline), so a request
head never takes more than twice the handshake timeout.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from chatserver.web import cancel_pending

log = Logger()

MAX_REQUEST_LINE = 8 * 1024
WS_PREFIX = b"GET /ws/"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


class FrontDoor(Protocol):
    """Buffers a connection's first bytes until the request line is complete, then hands over."""

    factory: FrontDoorFactory

    def __init__(self, factory: FrontDoorFactory, addr: IAddress | None) -> None:
        self.factory = factory
        self._addr = addr
        self._buffer = b""
        self._deadline: Any = None
        self._done = False

    def connectionMade(self) -> None:  # noqa: N802 (twisted API)
        self._deadline = self.factory.reactor.callLater(
            self.factory.request_timeout, self._too_slow
        )

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (twisted API)
        if self._done:
            return  # refused: whatever else arrives before the close is ignored
        buffer = self._buffer + data
        end = buffer.find(b"\n")
        if end < 0:
            if len(buffer) > MAX_REQUEST_LINE:
                self._refuse()
                return
            self._buffer = buffer
            return
        if end > MAX_REQUEST_LINE:
            self._refuse()
            return
        self._buffer = b""
        if buffer.startswith(WS_PREFIX):
            owner = self.factory.ws_factory.buildProtocol(self._addr)
        else:
            owner = self.factory.site.buildProtocol(self._addr)
        self._hand_over(owner, buffer)

    def connectionLost(self, reason: Any = None) -> None:  # noqa: N802 (twisted API)
        self._cancel()

    def _hand_over(self, owner: Any, data: bytes) -> None:
        self._cancel()
        self._done = True
        transport, self.transport = self.transport, None
        # From now on tcp.Server delivers reads and the connection's loss to the new owner.
        transport.protocol = owner
        owner.makeConnection(transport)
        owner.dataReceived(data)

    def _refuse(self) -> None:
        self._cancel()
        self._done = True
        self._buffer = b""
        log.info(
            "refusing a connection whose request line is over {limit} bytes", limit=MAX_REQUEST_LINE
        )
        self.transport.write(BAD_REQUEST)
        self.transport.loseConnection()

    def _cancel(self) -> None:
        cancel_pending(self._deadline)
        self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self._done = True
        self._buffer = b""
        if self.factory.on_request_timeout is not None:
            self.factory.on_request_timeout()
        log.info("closing a connection whose request line did not arrive in time")
        self.transport.abortConnection()


class FrontDoorFactory(Factory):
    """The listening port's factory: a `FrontDoor` per connection over the WebSocket factory
    and the Site; the deadline and its metric hook are the Site's (one source of truth)."""

    noisy = False  # the Site behind it already logs starting and stopping

    def __init__(self, ws_factory: Any, site: Any) -> None:
        self.ws_factory = ws_factory
        self.site = site
        self.reactor = site.reactor
        self.request_timeout: float = site.request_timeout
        self.on_request_timeout = site.on_request_timeout

    def buildProtocol(self, addr: IAddress | None) -> FrontDoor:  # noqa: N802 (twisted API)
        """A front door for one accepted connection."""
        return FrontDoor(self, addr)

    def doStart(self) -> None:  # noqa: N802 (twisted API)
        """Start the Site behind the door, as the port used to (the WebSocket factory was never
        started by a port either: `WebSocketResource` only builds protocols from it)."""
        super().doStart()
        self.site.doStart()

    def doStop(self) -> None:  # noqa: N802 (twisted API)
        """Stop the Site behind the door."""
        self.site.doStop()
        super().doStop()
