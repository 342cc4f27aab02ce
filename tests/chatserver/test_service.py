"""makeService: composition without listening at import, and the graceful stop sequence."""

from twisted.internet.testing import MemoryReactorClock

from chatserver.service import makeService
from tests.chatserver.support import make_config


def test_make_service_listens_on_configured_interface_and_stops_gracefully():
    """Starting listens on CHAT_INTERFACE:CHAT_PORT; stopping stops listening and fires."""
    reactor = MemoryReactorClock()
    service = makeService(make_config(port=9123, interface="127.0.0.2"), reactor=reactor)
    assert reactor.tcpServers == []  # nothing listens before start
    service.startService()
    port, _factory, _backlog, interface = reactor.tcpServers[0]
    assert (port, interface) == (9123, "127.0.0.2")
    d = service.stopService()
    reactor.advance(0)
    assert d.called and not service.running
    assert service.hub.shutting_down
