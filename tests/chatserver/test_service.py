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


def test_with_redis_url_the_service_connects_to_redis_and_reports_it_down_until_then():
    """CHAT_REDIS_URL adds the Redis bus (two connections: subscriber and publisher) and the
    presence timer; healthz says `redis: down` while not connected, and stopping stops it."""
    from twisted.web.test.requesthelper import DummyRequest

    from chatserver.health import HealthResource

    reactor = MemoryReactorClock()
    service = makeService(make_config(redis_url="redis://127.0.0.9:6390"), reactor=reactor)
    service.startService()
    targets = [(host, port) for host, port, *_ in reactor.tcpClients]
    assert targets == [("127.0.0.9", 6390), ("127.0.0.9", 6390)]
    assert service.bus.up is False
    assert service.hub.metrics.registry.get_sample_value("chat_redis_up") == 0
    site = service.internal_listener.factory  # detailed health is on the internal listener
    health = site.resource.getChildWithDefault(b"healthz", DummyRequest([b"healthz"]))
    assert isinstance(health, HealthResource)
    # Django's answer never comes on a MemoryReactor: read the numbers healthz adds to it.
    assert health._stats() == {"connections": 0, "redis": "down"}
    d = service.stopService()
    reactor.advance(0)
    assert d.called and not service.bus.running


def test_a_child_added_after_composition_is_stopped_after_the_drain():
    """Shutdown ends with `MultiService.stopService`: a child service added to the tree later
    (not known to the shutdown sequence) is stopped too, after the hub stopped taking messages
    and every child the composition root added (timers included) is stopped."""
    from twisted.application.service import Service

    class Recorder(Service):
        def stopService(self):  # noqa: N802 (twisted API)
            seen.append(service.hub.shutting_down)
            return Service.stopService(self)

    seen: list[bool] = []
    reactor = MemoryReactorClock()
    service = makeService(make_config(), reactor=reactor)
    late = Recorder()
    late.setServiceParent(service)
    service.startService()
    assert late.running
    d = service.stopService()
    reactor.advance(0)
    assert d.called and not late.running and seen == [True]
    assert not any(child.running for child in service)
