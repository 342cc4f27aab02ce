"""Detailed health and metrics live on the internal listener; the public port answers a cheap
liveness check that never calls Django (docs/protocol.md, "Health and metrics")."""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.web.test.requesthelper import DummyRequest

from chatserver.config import ChatServerConfig, ConfigError
from chatserver.health import DjangoHealthCheck, HealthResource, LivenessResource
from chatserver.service import makeService
from tests.chatserver.support import SECRET, body_json, make_config, render


class CountingDjango:
    """Counts health calls; `pending` holds the answer back until `answer` is called."""

    def __init__(self, hold: bool = False) -> None:
        self.calls = 0
        self.hold = hold
        self.waiting: list[Deferred] = []
        self.ok = True

    def health(self) -> Deferred:
        self.calls += 1
        if self.hold:
            d: Deferred = Deferred()
            self.waiting.append(d)
            return d
        return succeed(self.ok)

    def answer(self) -> None:
        for d in self.waiting:
            d.callback(self.ok)
        self.waiting = []


def _get(resource, path: bytes = b"healthz"):
    request = DummyRequest([])
    request.method = b"GET"
    return render(resource, request)


def test_the_django_check_is_cached_on_the_injected_clock():
    """Within `CHAT_HEALTH_CACHE` seconds every /healthz reuses one Django answer; after it, the
    next asks again (each /healthz used to call Django)."""
    clock, django = Clock(), CountingDjango()
    check = DjangoHealthCheck(django, clock, ttl=5.0)
    resource = HealthResource(check, lambda: {"connections": 0})
    for _ in range(20):
        assert _get(resource).responseCode == 200
    assert django.calls == 1
    clock.advance(4.9)
    django.ok = False
    assert _get(resource).responseCode == 200 and django.calls == 1
    clock.advance(0.2)
    down = _get(resource)
    assert down.responseCode == 503 and body_json(down)["django"] == "down"
    assert django.calls == 2


def test_concurrent_checks_share_one_request_to_django():
    """Health requests that arrive while Django is being asked wait for that one answer."""
    clock, django = Clock(), CountingDjango(hold=True)
    resource = HealthResource(DjangoHealthCheck(django, clock, ttl=5.0), dict)
    held = [_get(resource) for _ in range(10)]
    assert django.calls == 1 and not any(r.finished for r in held)
    django.answer()
    assert all(r.finished and r.responseCode == 200 for r in held)


def test_public_liveness_never_calls_django():
    """The public /healthz is 200 `{"status": "ok"}` from the process alone."""
    request = _get(LivenessResource())
    assert request.responseCode == 200 and body_json(request) == {"status": "ok"}


def test_service_serves_health_and_metrics_only_on_the_internal_listener():
    """makeService listens on CHAT_INTERNAL_INTERFACE:CHAT_INTERNAL_PORT with /healthz and
    /metrics; the public port's /healthz is liveness and it has no /metrics."""
    reactor = MemoryReactorClock()
    config = make_config(port=9123, internal_port=9223, internal_interface="127.0.0.3")
    service = makeService(config, reactor=reactor)
    service.startService()
    listening = {(port, interface) for port, _f, _b, interface in reactor.tcpServers}
    assert listening == {(9123, "127.0.0.1"), (9223, "127.0.0.3")}
    public = service.listener.factory.site.resource
    internal = service.internal_listener.factory.resource
    assert isinstance(public.getChildWithDefault(b"healthz", DummyRequest([])), LivenessResource)
    assert b"metrics" not in public.children
    assert isinstance(internal.getChildWithDefault(b"healthz", DummyRequest([])), HealthResource)
    assert b"metrics" in internal.children
    d = service.stopService()
    reactor.advance(0)
    assert d.called and not service.internal_listener.running


def test_internal_port_defaults_to_the_public_port_plus_100():
    """CHAT_INTERNAL_PORT defaults to CHAT_PORT + 100; it must differ from CHAT_PORT."""
    env = {"CHAT_SHARED_SECRET": SECRET, "CHAT_PORT": "9001"}
    config = ChatServerConfig.from_environ(env)
    assert (config.internal_port, config.internal_interface) == (9101, "127.0.0.1")
    assert (
        ChatServerConfig.from_environ({**env, "CHAT_INTERNAL_PORT": "7000"}).internal_port == 7000
    )
    try:
        ChatServerConfig.from_environ({**env, "CHAT_INTERNAL_PORT": "9001"})
    except ConfigError as exc:
        assert "CHAT_INTERNAL_PORT" in str(exc)
    else:
        raise AssertionError("the same port for both listeners was accepted")
