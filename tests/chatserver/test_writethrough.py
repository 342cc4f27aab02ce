"""`write_now` on real TCP connections (a socket pair wrapped in Twisted's `tcp.Server`)."""

from __future__ import annotations

import socket

import pytest
from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport

from chatserver.writethrough import write_now


@pytest.fixture
def pair():
    """(transport, peer socket, reactor): `transport` is the server side of a socket pair."""
    ours, peer = socket.socketpair()
    ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    reactor = MemoryReactorClock()
    protocol = Protocol()
    transport = tcp.Server(ours, protocol, ("127.0.0.1", 1), None, 1, reactor)
    protocol.makeConnection(transport)
    yield transport, peer, reactor
    ours.close()
    peer.close()


def received(peer: socket.socket) -> bytes:
    """Whatever the peer can read now (non-blocking)."""
    peer.setblocking(False)
    chunks = []
    while True:
        try:
            chunk = peer.recv(65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def flush(transport, reactor, peer) -> bytes:
    """Let the transport write what it buffered (as the reactor would), reading as it goes."""
    out = b""
    while transport in reactor.getWriters():
        transport.doWrite()
        out += received(peer)
    return out + received(peer)


def test_sends_at_once_when_nothing_is_buffered(pair):
    """An idle connection: the bytes reach the peer with no buffering, no writer registered."""
    transport, peer, reactor = pair
    assert write_now(transport, b"frame-1") == 7
    assert received(peer) == b"frame-1"
    assert transport not in reactor.getWriters()
    assert transport.dataBuffer == b"" and transport._tempDataLen == 0


def test_queues_behind_bytes_already_buffered(pair):
    """Bytes Twisted buffered this turn (a ping, a hello) go first: order is kept."""
    transport, peer, reactor = pair
    transport.write(b"first;")
    assert write_now(transport, b"second;") == 0
    assert received(peer) == b""  # nothing jumped the queue
    assert flush(transport, reactor, peer) == b"first;second;"


def test_full_send_buffer_queues_the_rest_in_order(pair):
    """A reader that is behind: what the kernel did not take is queued, then flows in order."""
    transport, peer, reactor = pair
    big = bytes(range(256)) * 4096  # 1 MiB: far more than the socket buffers hold
    sent = write_now(transport, big)
    assert 0 < sent < len(big)
    assert transport in reactor.getWriters()
    assert write_now(transport, b"after") == 0  # the rest of `big` is still queued
    assert flush(transport, reactor, peer) == big + b"after"


def test_a_closed_peer_is_left_to_twisted(pair):
    """A broken connection raises nothing here: the bytes are queued and Twisted finds it."""
    transport, peer, reactor = pair
    peer.close()
    for _ in range(3):  # the first send may still succeed; then EPIPE/ECONNRESET
        write_now(transport, b"x" * 100)
    assert transport in reactor.getWriters()


def test_disconnecting_transport_is_not_written_around(pair):
    """After loseConnection nothing is sent directly (Twisted owns the close)."""
    transport, peer, reactor = pair
    transport.loseConnection()
    assert write_now(transport, b"late") == 0
    assert received(peer) == b""


def test_an_aborted_connection_gets_nothing_more(pair):
    """abortConnection closes on the next reactor turn; until then nothing may be sent."""
    transport, peer, reactor = pair
    transport.abortConnection()
    assert write_now(transport, b"late") == 0
    assert received(peer) == b""


def test_other_transports_get_a_plain_write():
    """TLS wrappers, test transports: `transport.write` as before."""
    transport = StringTransport()
    assert write_now(transport, b"frame") == 0
    assert transport.value() == b"frame"
