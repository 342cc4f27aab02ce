"""`makeService(config, reactor=None)`: the chat server as a twistd service tree.

The composition root: `build_hub` builds the hub's parts (registry, fan-out, persistence queue,
history reader, limits) and injects them; `makeService` builds the transports around the hub and
hands each the settings and clock it needs. Nothing listens at import time and the global
reactor is imported only inside `makeService` when none is passed.

Stopping (SIGTERM under twistd) is graceful: stop accepting, flush the persistence queue within
`shutdown_timeout` and deliver what it stored, then close every socket with 1001 and release held
polls; then `MultiService.stopService` stops every child in reverse order of addition (timers,
the Redis bus, so the other instances hear that this one's people left, and last the internal
listener, so a drain can be watched), a child added later included.
"""

from __future__ import annotations

from typing import Any

from twisted.application.internet import StreamServerEndpointService, TimerService
from twisted.application.service import MultiService, Service
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import Logger

from chatserver.config import ChatServerConfig
from chatserver.control import ControlResource
from chatserver.djangoclient import DjangoClient, make_http_client
from chatserver.fanout import LocalFanout
from chatserver.frontdoor import FrontDoorFactory
from chatserver.health import (
    DjangoHealthCheck,
    HealthResource,
    InternalRoot,
    LivenessResource,
    MetricsResource,
)
from chatserver.history import HistoryReader
from chatserver.hub import ChatHub, prepare_frame
from chatserver.limits import ClientLimits
from chatserver.logthrottle import LogThrottle
from chatserver.longpoll import LongPollResource
from chatserver.metrics import ChatMetrics
from chatserver.persistence import PersistenceQueue
from chatserver.protocol import SWEEP_STEPS, ChatServerFactory
from chatserver.revocations import RevocationList
from chatserver.rooms import RoomRegistry
from chatserver.signing import WINDOW_SECONDS
from chatserver.users import UserRegistry
from chatserver.web import build_internal_site, build_site

log = Logger()

CLOSE_WAIT_SECONDS = 6.0


def build_hub(
    config: ChatServerConfig,
    clock: Any,
    django: Any,
    *,
    bus: Any = None,
    metrics: ChatMetrics | None = None,
    log_throttle: LogThrottle | None = None,
) -> ChatHub:
    """The hub with its parts, in dependency order: registry, fan-out (local, wrapped for Redis
    when a bus is given), persistence queue (whose stored messages take the ordered fan-out
    path), history reader, limits; the Redis fan-out then reports state events to the hub."""
    metrics = metrics if metrics is not None else ChatMetrics()
    registry = RoomRegistry(config.recent_buffer)
    users = UserRegistry()
    local = LocalFanout(
        registry,
        prepare_frame,
        metrics,
        clock=clock,
        presence_interval=config.presence_interval,
        users=users,
    )
    fanout: Any = local
    if bus is not None:
        from chatserver.redisfanout import RedisFanout

        metrics.enable_redis()
        fanout = RedisFanout(
            local,
            registry,
            bus,
            django,
            clock,
            gap_wait=config.redis_gap_wait_ms / 1000.0,
            presence_interval=config.redis_presence_interval,
            announce_interval=config.presence_interval,
            metrics=metrics,
        )

    def stored(message: dict, prev_id: int | None = None) -> None:
        # A message Django created (never a repeat): to the room, in id order.
        room = message.get("room")
        if isinstance(room, str):
            fanout.publish(room, message, prev_id)

    persistence = PersistenceQueue(
        django,
        clock,
        on_stored=stored,
        batch_size=config.batch_size,
        batch_delay=config.batch_delay_ms / 1000.0,
        max_in_flight=config.max_in_flight,
        queue_limit=config.queue_limit,
        room_queue_limit=config.room_queue_limit,
        metrics=metrics,
    )
    hub = ChatHub(
        config,
        clock,
        registry=registry,
        fanout=fanout,
        persistence=persistence,
        history=HistoryReader(config, registry, django, fanout.buffer_trusted, fanout.ready),
        # Budgets and connection caps per identity and per address, shared by both transports.
        limits=ClientLimits.from_config(config, clock),
        # Log lines unauthenticated clients can cause are throttled per kind.
        log_throttle=log_throttle or LogThrottle(clock, config.log_burst, config.log_interval),
        # Kept past the longest ticket lifetime, plus the clock skew tolerated between hosts.
        revocations=RevocationList(config.max_ticket_ttl + WINDOW_SECONDS),
        metrics=metrics,
        users=users,
    )
    if bus is not None:
        fanout.on_state = hub.apply_state
    return hub


class ChatService(MultiService):
    """The chat server's service tree; its stop runs the graceful shutdown sequence first."""

    def __init__(
        self,
        config: ChatServerConfig,
        reactor: Any,
        hub: ChatHub,
        factory: ChatServerFactory,
        poll: LongPollResource,
        bus: Any = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.hub = hub
        self.factory = factory
        self.poll = poll
        self.bus = bus
        self.listener: Service | None = None
        self.internal_listener: Service | None = None

    def add_listener(self, listener: Service) -> None:
        """The public port (stopped first at shutdown, before the drain)."""
        self.listener = listener
        listener.setServiceParent(self)

    def add_internal_listener(self, listener: Service) -> None:
        """The internal listener (health, metrics): the first child after the public port, so
        it stops last and a drain can be watched."""
        self.internal_listener = listener
        listener.setServiceParent(self)

    def add_timer(self, interval: float, call: Any) -> None:
        """A repeating call on the injected reactor."""
        timer = TimerService(interval, call)
        timer.clock = self.reactor
        timer.setServiceParent(self)

    def stopService(self) -> Deferred:  # noqa: N802 (twisted API)
        """Graceful stop; the Deferred fires when every step is done (or timed out)."""
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        log.info("chat server stopping: draining messages, then closing sockets")
        self.hub.shutting_down = True
        if self.listener is not None and self.listener.parent is self:
            # Stopped now and taken out of the tree, so the final step does not stop it twice.
            await defer.maybeDeferred(self.removeService, self.listener)
        drained = self.hub.persistence.when_idle()
        drained.addTimeout(self.config.shutdown_timeout, self.reactor)
        try:
            await drained
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
            await closed
        except Exception:
            log.warn("some sockets did not finish their close handshake")
        # Every other child (timers, the Redis bus, the internal listener, anything added
        # later), in reverse order of addition.
        await MultiService.stopService(self)
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

        bus = RedisBus(
            config.redis_url,
            config.redis_prefix + "events",
            reactor,
            room_prefix=config.redis_prefix + "room:",
        )
    log_throttle = LogThrottle(reactor, config.log_burst, config.log_interval)
    hub = build_hub(config, reactor, django, bus=bus, log_throttle=log_throttle)
    factory = ChatServerFactory(hub, reactor, config)
    poll = LongPollResource(hub, config, reactor)
    hub.metrics.watch(lambda: len(factory.connections), lambda: len(hub.registry.rooms()))
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
        log_throttle=log_throttle,
    )
    # Children in dependency order; MultiService stops them in reverse (internal listener last).
    top = ChatService(config, reactor, hub, factory, poll, bus=bus)
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
    if bus is not None:
        bus.setServiceParent(top)
        top.add_timer(config.redis_presence_interval, hub.fanout.tick)
    if config.ping_interval > 0:
        # Every socket once per interval, in SWEEP_STEPS steps (no burst of pings).
        top.add_timer(config.ping_interval / SWEEP_STEPS, factory.sweep_step)
    top.add_timer(1.0, poll.sweep)
    return top
