"""The listening port's first protocol: read a connection's request head, route it by its
request line, then step aside.

twisted.web parses a request (HTTPChannel, Request, resource traversal) before
`WebSocketResource` hands the transport to Autobahn, which parses the same handshake again; that
double parse was most of a socket's connect CPU. `FrontDoor` reads the request head (up to its
blank line) and routes by its request line: a `GET /ws/...` goes straight to a
`ChatServerProtocol` built by the WebSocket factory, anything else to the Site's HTTP channel.
Either way the transport's `protocol` is rewired (as `WebSocketResource` does, and as
`tcp.Server` reads it on every read) and the bytes seen so far are replayed, so the new
protocol sees the connection as if it had owned it from the start.
The front door then keeps no reference and is collected.
Only `GET /ws/` goes to Autobahn:
`HEAD /ws/...`, `OPTIONS /ws/...` and every other method go to the Site, which answers them by the
methods table of docs/protocol.md ("HTTP methods and paths"; `chatserver/methods.py`).

Bounded work: the head is capped at `max_head_bytes` and `max_head_lines` (`CHAT_MAX_HEAD_BYTES`,
`CHAT_MAX_HEAD_LINES`; a request line alone at `MAX_REQUEST_LINE`): past a cap the connection gets
431 (400 for the request line) and is closed. Each read is scanned once: only the new bytes (plus
the three before them, for a blank line split across reads) are searched, so a head trickled a
byte at a time costs linear work, and the next owner receives the whole head in one read
(Autobahn re-scans its whole buffer on every read until the head is complete).

Slowloris: one deadline (`request_timeout`, the handshake timeout) runs from the connection
until the head is complete; the next owner has its own deadline for what follows (Autobahn's open
handshake timeout, or the Site channel's whole-request deadline for a body).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IAddress
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from chatserver.logthrottle import LogThrottle
from chatserver.web import cancel_pending

log = Logger()

MAX_REQUEST_LINE = 8 * 1024
WS_PREFIX = b"GET /ws/"
HEAD_END = b"\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
HEAD_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"Connection: close\r\nContent-Length: 0\r\n\r\n"
)


class FrontDoor(Protocol):
    """Buffers a connection's first bytes until the request line is complete, then hands over."""

    factory: FrontDoorFactory

    def __init__(self, factory: FrontDoorFactory, addr: IAddress | None) -> None:
        self.factory = factory
        self._addr = addr
        self._buffer = bytearray()
        self._line_end = -1  # index of the request line's "\n" once seen
        self._lines = 0  # line ends seen so far
        self._deadline: Any = None
        self._done = False
        self.examined = 0  # bytes searched so far (linear in the bytes received)

    def connectionMade(self) -> None:  # noqa: N802 (twisted API)
        self._deadline = self.factory.reactor.callLater(
            self.factory.request_timeout, self._too_slow
        )

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (twisted API)
        if self._done:
            return  # refused: whatever else arrives before the close is ignored
        # Search only what is new, plus three bytes back for a blank line split across reads.
        start = max(0, len(self._buffer) - 3)
        self._buffer += data
        buffer = self._buffer
        self.examined += len(buffer) - start
        if self._line_end < 0:
            self._line_end = buffer.find(b"\n", start)
            if self._line_end > MAX_REQUEST_LINE or (
                self._line_end < 0 and len(buffer) > MAX_REQUEST_LINE
            ):
                self._refuse(BAD_REQUEST, "a request line over {limit} bytes", MAX_REQUEST_LINE)
                return
        end = buffer.find(HEAD_END, start)
        head_size = end + len(HEAD_END) if end >= 0 else len(buffer)
        self._lines += buffer.count(b"\n", len(buffer) - len(data), head_size)
        if head_size > self.factory.max_head_bytes:
            self._refuse(
                HEAD_TOO_LARGE, "a request head over {limit} bytes", self.factory.max_head_bytes
            )
            return
        if self._lines > self.factory.max_head_lines + 1:  # the blank line ends the head
            self._refuse(
                HEAD_TOO_LARGE, "a request head over {limit} lines", self.factory.max_head_lines
            )
            return
        if end < 0:
            return
        self._buffer = bytearray()
        whole = bytes(buffer)
        if whole.startswith(WS_PREFIX):
            owner = self.factory.ws_factory.buildProtocol(self._addr)
        else:
            owner = self.factory.site.buildProtocol(self._addr)
        self._hand_over(owner, whole)

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

    def _refuse(self, response: bytes, what: str, limit: int) -> None:
        self._cancel()
        self._done = True
        self._buffer = bytearray()
        self.factory.log_throttle.emit(
            log, "head_refused", "refusing a connection with " + what, limit=limit
        )
        self.transport.write(response)
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
        self.factory.log_throttle.emit(
            log, "slow_request", "closing a connection whose request head did not arrive in time"
        )
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
        self.max_head_bytes: int = site.max_head_bytes
        self.max_head_lines: int = site.max_head_lines
        self.log_throttle: LogThrottle = site.log_throttle

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
