"""`makeService(config, reactor=None)`: the chat server as a twistd service tree.

Nothing listens at import time and the global reactor is imported only inside `makeService` when
none is passed. Stopping (SIGTERM under twistd) is graceful: stop accepting, flush the
persistence queue within `shutdown_timeout` and deliver what it stored, then close every socket
with 1001 and release held polls, and last disconnect from Redis (when `CHAT_REDIS_URL` is set),
so the other instances hear that this one's people left.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import Logger

from chatserver.config import ChatServerConfig
from chatserver.control import ControlResource
from chatserver.djangoclient import DjangoClient, make_http_client
from chatserver.frontdoor import FrontDoorFactory
from chatserver.health import (
    DjangoHealthCheck,
    HealthResource,
    InternalRoot,
    LivenessResource,
    MetricsResource,
)
from chatserver.hub import ChatHub
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from chatserver.web import build_internal_site, build_site

log = Logger()

CLOSE_WAIT_SECONDS = 6.0


class ChatService(MultiService):
    """The listening port, the timers, and the graceful shutdown sequence."""

    def __init__(
        self,
        config: ChatServerConfig,
        reactor: Any,
        hub: ChatHub,
        factory: ChatServerFactory,
        poll: LongPollResource,
    ) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.hub = hub
        self.factory = factory
        self.poll = poll
        self.listener: Service | None = None
        self.internal_listener: Service | None = None
        self.timers: list[TimerService] = []

    def add_listener(self, listener: Service) -> None:
        """The port service (stopped first at shutdown)."""
        self.listener = listener
        listener.setServiceParent(self)

    def add_internal_listener(self, listener: Service) -> None:
        """The internal listener (health, metrics), stopped last so a drain can be watched."""
        self.internal_listener = listener
        listener.setServiceParent(self)

    def add_timer(self, interval: float, call: Any) -> None:
        """A repeating call on the injected reactor."""
        timer = TimerService(interval, call)
        timer.clock = self.reactor
        timer.setServiceParent(self)
        self.timers.append(timer)

    def stopService(self) -> Deferred:  # noqa: N802 (twisted API)
        """Graceful stop; the Deferred fires when every step is done (or timed out)."""
        return self._stop()

    @inlineCallbacks
    def _stop(self):
        log.info("chat server stopping: draining messages, then closing sockets")
        self.hub.shutting_down = True
        if self.listener is not None and self.listener.running:
            yield self.listener.stopService()
        drained = self.hub.persistence.when_idle()
        drained.addTimeout(self.config.shutdown_timeout, self.reactor)
        try:
            yield drained
        except Exception:
            log.warn(
                "persistence queue not drained within {timeout}s; refusing the rest",
                timeout=self.config.shutdown_timeout,
            )
            self.hub.persistence.fail_all("store_failed")
        self.poll.release_all()
        closed = self.factory.close_all()
        closed.addTimeout(CLOSE_WAIT_SECONDS, self.reactor)
        try:
            yield closed
        except Exception:
            log.warn("some sockets did not finish their close handshake")
        for timer in self.timers:
            if timer.running:
                yield timer.stopService()
        if self.hub.bus is not None and self.hub.bus.running:
            yield self.hub.bus.stopService()
        if self.internal_listener is not None and self.internal_listener.running:
            yield self.internal_listener.stopService()
        Service.stopService(self)
        log.info("chat server stopped")


def makeService(config: ChatServerConfig, reactor: Any = None) -> ChatService:  # noqa: N802
    """Compose the chat server: the front door (WebSocket or Site) on CHAT_INTERFACE:CHAT_PORT,
    the internal listener (health, metrics) on CHAT_INTERNAL_INTERFACE:CHAT_INTERNAL_PORT,
    ping sweep, poll sweep."""
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    django = DjangoClient(
        config.django_url,
        config.shared_secret,
        make_http_client(reactor),
        reactor,
        timeout=config.django_timeout,
    )
    bus = None
    if config.redis_url:
        from chatserver.redisbus import RedisBus

        bus = RedisBus(config.redis_url, config.redis_prefix + "events", reactor)
    hub = ChatHub(config, reactor, django, bus=bus)
    factory = ChatServerFactory(hub, reactor)
    poll = LongPollResource(hub)
    hub.archive_listeners.append(poll.room_archived)
    hub.revoke_listeners.append(poll.revoked)
    hub.forget_listeners.append(poll.room_deleted)

    def stats() -> dict:
        numbers = hub.stats()
        numbers["pollers"] = poll.active()
        return numbers

    def health() -> dict:
        numbers = {"connections": len(factory.connections)}
        if bus is not None:
            # Reported, not failed on: an instance without Redis still serves its own clients,
            # and a shared Redis outage must not take every instance out of the load balancer.
            numbers["redis"] = "ok" if bus.up else "down"
        return numbers

    site = build_site(
        factory,
        poll=poll,
        control=ControlResource(hub, stats=stats),
        health=LivenessResource(),
        reactor=reactor,
        request_timeout=config.handshake_timeout,
        idle_timeout=config.http_idle_timeout,
        on_request_timeout=hub.metrics.errors.labels(kind="slow_request").inc,
        max_payload=config.max_payload,
        max_head_bytes=config.max_head_bytes,
        max_head_lines=config.max_head_lines,
        log_throttle=hub.log_throttle,
    )
    top = ChatService(config, reactor, hub, factory, poll)
    if bus is not None:
        bus.setServiceParent(top)
        top.add_timer(config.redis_presence_interval, hub.fanout.tick)
    endpoint = TCP4ServerEndpoint(reactor, config.port, interface=config.interface)
    # The front door routes each connection by its request line: `GET /ws/...` straight to
    # Autobahn (one handshake parse instead of two), everything else to the Site.
    top.add_listener(StreamServerEndpointService(endpoint, FrontDoorFactory(factory, site)))
    # Detailed health (asks Django, cached) and metrics: on their own listener, loopback by
    # default, never on the public port (docs/operations.md, "Health and metrics").
    internal_site = build_internal_site(
        InternalRoot(
            HealthResource(DjangoHealthCheck(django, reactor, config.health_cache), health),
            MetricsResource(hub.metrics.registry),
        ),
        reactor=reactor,
        request_timeout=config.handshake_timeout,
        idle_timeout=config.http_idle_timeout,
    )
    internal_endpoint = TCP4ServerEndpoint(
        reactor, config.internal_port, interface=config.internal_interface
    )
    top.add_internal_listener(StreamServerEndpointService(internal_endpoint, internal_site))
    if config.ping_interval > 0:
        top.add_timer(config.ping_interval, factory.sweep)
    top.add_timer(1.0, poll.sweep)
    return top
