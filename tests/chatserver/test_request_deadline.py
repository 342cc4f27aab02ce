"""The whole-request deadline of the chat server's HTTP channels (slowloris defence)."""

from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.web.resource import Resource

from chatserver.web import ChatSite


class Fine(Resource):
    """A leaf that answers at once."""

    isLeaf = True

    def render_GET(self, request):  # noqa: N802 (twisted API)
        return b"fine"


def connect(timeout: float = 10.0):
    reactor = MemoryReactorClock()
    root = Resource()
    root.putChild(b"ok", Fine())
    timeouts: list[int] = []
    site = ChatSite(
        root,
        reactor=reactor,
        request_timeout=timeout,
        idle_timeout=60,
        on_request_timeout=lambda: timeouts.append(1),
    )
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return reactor, channel, transport, timeouts


def test_a_silent_connection_is_cut_at_the_deadline():
    """Nothing sent: aborted after request_timeout, not after the 60 s idle timeout."""
    reactor, _, transport, timeouts = connect()
    reactor.advance(9.9)
    assert not transport.disconnecting
    reactor.advance(0.2)
    assert transport.disconnecting and timeouts == [1]


def test_a_trickled_request_head_is_cut_although_every_byte_restarts_the_idle_timer():
    """One byte a second never completes a request: the deadline still fires at 10 s."""
    reactor, channel, transport, timeouts = connect()
    channel.dataReceived(b"GET /ok HTTP/1.1\r\n")
    for _ in range(11):
        if transport.disconnecting:
            break
        channel.dataReceived(b"X")
        reactor.advance(1)
    assert transport.disconnecting and timeouts == [1]


def test_complete_requests_are_not_cut_and_keep_alive_rearms_on_the_next_request():
    """A request that arrives in time is answered; the idle gap after it has no deadline, and
    the next request's deadline starts with its first byte."""
    reactor, channel, transport, timeouts = connect()
    channel.dataReceived(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"fine" in transport.value()
    reactor.advance(30)  # quiet keep-alive: only the idle timeout (60 s) applies
    assert not transport.disconnecting and timeouts == []
    channel.dataReceived(b"GET /ok HTTP/1.1\r\n")
    reactor.advance(10.1)
    assert transport.disconnecting and timeouts == [1]
