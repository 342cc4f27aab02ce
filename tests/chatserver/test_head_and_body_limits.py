"""Bounded work per request at the HTTP edge: request heads (front door and twisted.web) and
request bodies (refused by Content-Length or by a running count before they are buffered).

Work is counted, not timed: bytes the next owner has to parse, bytes a request buffers.
"""

from __future__ import annotations

import orjson
from twisted.internet.protocol import Factory, Protocol

from chatserver.protocol import ChatServerProtocol
from chatserver.web import MAX_SIGNED_BODY
from tests.chatserver.support import ORIGIN, handshake, ticket
from tests.chatserver.test_frontdoor import Door


class ParsingOwner(Protocol):
    """Stands in for a head parser that re-scans its whole buffer on every read (as Autobahn's
    handshake parser does): counts the bytes such a parser would scan."""

    def __init__(self) -> None:
        self.buffered = 0
        self.scanned = 0
        self.reads = 0

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (twisted API)
        self.reads += 1
        self.buffered += len(data)
        self.scanned += self.buffered


class OwnerFactory(Factory):
    def __init__(self) -> None:
        self.built: list[ParsingOwner] = []

    def buildProtocol(self, addr):  # noqa: N802 (twisted API)
        owner = ParsingOwner()
        self.built.append(owner)
        return owner


def _long_head(path: str, size: int) -> bytes:
    """A valid WebSocket handshake padded with harmless headers to about `size` bytes."""
    head = handshake(path, ORIGIN)
    padding = b""
    i = 0
    while len(head) + len(padding) < size:
        padding += f"X-Pad-{i}: {'p' * 500}\r\n".encode()
        i += 1
    return head[:-2] + padding + b"\r\n"


def test_a_trickled_head_costs_linear_work_and_reaches_the_owner_once():
    """A 12 KiB head sent a byte at a time: the front door searches each byte a bounded number
    of times and hands the whole head over in one read, so a parser that re-scans its buffer
    scans it once (before: every byte after the request line reached Autobahn, which re-scanned
    the whole buffer each time: quadratic)."""
    for path in ("/ws/lobby?ticket=x", "/poll/lobby?ticket=x"):
        door = Door()
        owners = OwnerFactory()
        door.factory.ws_factory = owners
        door.factory.site = _SiteStandIn(owners, door.factory.site)
        head = _long_head(path, 12 * 1024)
        front = door.transport.protocol
        for i in range(len(head)):
            door.send(head[i : i + 1])
        (owner,) = owners.built
        assert owner.buffered == len(head)
        assert owner.scanned <= 2 * len(head), path
        assert front.examined <= 4 * len(head)


class _SiteStandIn:
    """The Site's attributes with its channel replaced by a `ParsingOwner`."""

    def __init__(self, owners: OwnerFactory, site) -> None:
        self._owners = owners
        self.reactor = site.reactor

    def buildProtocol(self, addr):  # noqa: N802 (twisted API)
        return self._owners.buildProtocol(addr)


def test_a_trickled_long_head_still_upgrades_the_real_socket():
    """The real Autobahn protocol behind the front door: a 12 KiB head byte by byte opens."""
    door = Door()
    head = _long_head(f"/ws/lobby?ticket={ticket(door.reactor)}", 12 * 1024)
    for i in range(len(head)):
        door.send(head[i : i + 1])
    assert door.transport.value().startswith(b"HTTP/1.1 101")
    assert isinstance(door.transport.protocol, ChatServerProtocol)


def test_a_head_that_never_ends_is_refused_with_431_at_the_byte_cap():
    """Headers past CHAT_MAX_HEAD_BYTES without the blank line: 431 and close, whatever the
    path and however the bytes arrive (before: buffered by Autobahn until the deadline)."""
    for path, chunk in (("/ws/lobby", 1), ("/ws/lobby", 4096), ("/poll/lobby", 512)):
        door = Door()
        door.send(f"GET {path} HTTP/1.1\r\n".encode())
        line = b"X-Long: " + b"y" * 1000 + b"\r\n"
        stream = line * 20  # 20 KiB of header lines, never a blank line
        for i in range(0, len(stream), chunk):
            if door.transport.disconnecting:
                break
            door.send(stream[i : i + chunk])
        status, _ = door.response()
        assert status == 431 and door.transport.disconnecting, (path, chunk)
        assert len(door.transport.protocol._buffer) == 0


def test_a_head_with_too_many_lines_is_refused_with_431():
    """More than CHAT_MAX_HEAD_LINES short header lines: 431 (a complete head too)."""
    for complete in (False, True):
        door = Door()
        lines = b"".join(f"X-{i}: a\r\n".encode() for i in range(150))
        door.send(b"GET /ws/lobby HTTP/1.1\r\n" + lines + (b"\r\n" if complete else b""))
        status, _ = door.response()
        assert status == 431 and door.transport.disconnecting


def test_twisted_web_head_limits_match_the_front_door_on_keep_alive_requests():
    """A second request on a keep-alive connection is parsed by twisted.web alone: its header
    count and head size limits are the front door's (before: 500 headers were accepted)."""
    door = Door()
    door.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = len(door.transport.value())
    lines = b"".join(f"X-{i}: a\r\n".encode() for i in range(150))
    door.send(b"GET /healthz HTTP/1.1\r\n" + lines + b"\r\n")
    assert door.transport.value()[first:].startswith(b"HTTP/1.1 400")
    channel = door.transport.protocol
    assert channel.maxHeaders == 100 and channel.totalHeadersSize == 16 * 1024


# bodies ------------------------------------------------------------------------------------


def _content_size(channel) -> int:
    sizes = [0]
    for request in channel.requests:
        content = getattr(request, "content", None)
        if content is not None:
            sizes.append(content.seek(0, 2))
    return max(sizes)


def _post_head(path: str, headers: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}\r\n"
    ).encode()


def test_a_huge_content_length_is_refused_before_any_body_is_buffered():
    """Content-Length over the path's limit: 413 JSON right after the head, connection closed,
    and the body that follows is never stored (before: up to ~2 GB went to a temporary file
    before `read_body` looked at the header)."""
    for path, length in (
        ("/poll/lobby?ticket=x", 2_000_000_000),
        ("/poll/lobby?ticket=x", 65537),
        ("/internal/stats", MAX_SIGNED_BODY + 1),
    ):
        door = Door()
        door.send(_post_head(path, f"Content-Length: {length}\r\n"))
        status, body = door.response()
        assert status == 413 and orjson.loads(body)["error"] == "too_large"
        assert door.transport.disconnecting
        channel = door.transport.protocol
        for _ in range(64):
            door.send(b"z" * 16384)
        assert _content_size(channel) == 0, path


def test_a_chunked_body_is_refused_once_the_running_count_passes_the_limit():
    """Chunked (no Content-Length): 413 as soon as the decoded count passes the limit; the
    request's content buffer never holds more than the limit."""
    for chunk_size in (1000, 16384, 70000):
        door = Door()
        door.send(_post_head("/poll/lobby?ticket=x", "Transfer-Encoding: chunked\r\n"))
        channel = door.transport.protocol
        biggest = 0
        for _ in range(100):
            if door.transport.disconnecting:
                break
            door.send(b"%x\r\n" % chunk_size + b"c" * chunk_size + b"\r\n")
            biggest = max(biggest, _content_size(channel))
        status, _ = door.response()
        assert status == 413 and door.transport.disconnecting, chunk_size
        assert biggest <= 65536


def test_a_body_within_the_limit_still_reaches_the_resource():
    """A declared body within the limit is read and answered by the resource as before."""
    door = Door()
    payload = orjson.dumps({"body": "hi", "nonce": "n1"})
    t = ticket(door.reactor)
    door.send(
        _post_head(
            f"/poll/lobby?ticket={t}", f"Origin: {ORIGIN}\r\nContent-Length: {len(payload)}\r\n"
        )
        + payload
    )
    door.reactor.advance(0.01)
    status, body = door.response()
    assert status == 200 and orjson.loads(body)["message"]["body"] == "hi"


def test_the_site_channel_alone_refuses_a_large_body_on_a_keep_alive_request():
    """The limit is the channel's, so it holds for later requests that bypass the front door."""
    door = Door()
    door.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    first = len(door.transport.value())
    door.send(_post_head("/poll/lobby?ticket=x", "Content-Length: 10000000\r\n"))
    assert door.transport.value()[first:].startswith(b"HTTP/1.1 413")
