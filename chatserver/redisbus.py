"""The Redis connections of one chat server: a subscriber and a publisher, kept up forever.

txredisapi is the client: it is written for Twisted (protocols on the reactor, Deferreds, no
threads), which redis-py is not (its asyncio client would need the asyncio reactor under twistd
and a bridge for every call). We drive its protocols with Twisted's own `ClientService` on the
injected reactor, so reconnection (backoff capped at `retry_max` seconds) and the up/down state
are ours: the bus is `up` while the subscriber is subscribed and the publisher is connected.
Nothing is queued while Redis is down (a publish is dropped); the fan-out catches up from Django
when Redis returns (`on_state(True)`).

txredisapi imports the global reactor, so it is imported only when a bus is started. With
`hiredis` installed (a dependency) txredisapi's protocols parse replies in C (`HiredisProtocol`);
its pure-Python parser was a quarter of an instance's samples in the two-instance benchmark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import Factory
from twisted.logger import Logger

log = Logger()

CONNECT_TIMEOUT = 5
REPLY_TIMEOUT = 5


def parse_redis_url(url: str) -> tuple[str, int, str | None]:
    """(host, port, password) of `redis://[:password@]host[:port][/db]`.

    Pub/sub channels are server-wide whatever the database number, so the number is not used:
    `CHAT_REDIS_PREFIX` keeps deployments apart.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError(f"not a redis:// URL: {url!r}")
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, parts.port or 6379, password


def _protocols() -> tuple[type, type]:
    import txredisapi

    class Subscriber(txredisapi.SubscriberProtocol):
        def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:  # noqa: N802
            self.factory.bus._received(message)

        def connectionLost(self, why: Any) -> None:  # noqa: N802
            super().connectionLost(why)
            self.factory.bus._lost(self)

    class Publisher(txredisapi.RedisProtocol):
        def connectionLost(self, why: Any) -> None:  # noqa: N802
            super().connectionLost(why)
            self.factory.bus._lost(self)

    return Subscriber, Publisher


class _ProtocolFactory(Factory):
    """Builds txredisapi protocols; has what they ask of their factory on an AUTH failure."""

    isLazy = True
    noisy = False

    def __init__(
        self, bus: RedisBus, protocol_class: type, password: str | None, charset: str | None
    ) -> None:
        self.bus = bus
        self.protocol_class = protocol_class
        self.password = password
        self.charset = charset

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 (twisted API)
        protocol = self.protocol_class(
            charset=self.charset,
            password=self.password,
            convertNumbers=False,
            replyTimeout=REPLY_TIMEOUT,
        )
        protocol.factory = self
        # txredisapi schedules parsing and reply timeouts on the global reactor: use ours.
        protocol.callLater = self.bus.reactor.callLater
        return protocol

    def stopTrying(self) -> None:  # noqa: N802 (txredisapi API)
        """Wrong password: keep retrying anyway (an operator may fix Redis), but say so."""

    def connectionError(self, why: str) -> None:  # noqa: N802 (txredisapi API)
        log.error("Redis refused the connection: {why}", why=why)


class RedisBus(Service):
    """Publish bytes on one channel and receive everything published there (as bytes)."""

    def __init__(self, url: str, channel: str, reactor: Any, retry_max: float = 2.0) -> None:
        self.host, self.port, self._password = parse_redis_url(url)
        self.channel = channel
        self.reactor = reactor
        self.retry_max = retry_max
        self.up = False
        self.on_message: Callable[[Any], None] = lambda payload: None
        self.on_state: Callable[[bool], None] = lambda up: None
        self._subscriber: Any = None
        self._publisher: Any = None
        self._services: list[ClientService] = []

    def startService(self) -> None:  # noqa: N802 (twisted API)
        super().startService()
        subscriber_class, publisher_class = _protocols()
        endpoint = TCP4ClientEndpoint(self.reactor, self.host, self.port, timeout=CONNECT_TIMEOUT)
        policy = backoffPolicy(initialDelay=0.2, maxDelay=self.retry_max, factor=2.0)
        # The subscriber hands payloads over as the bytes Redis sent (charset None): they are
        # JSON for orjson, and a text decode of every envelope would be wasted work.
        for protocol_class, prepare, charset in (
            (subscriber_class, self._subscribe, None),
            (publisher_class, self._publisher_ready, "utf-8"),
        ):
            service = ClientService(
                endpoint,
                _ProtocolFactory(self, protocol_class, self._password, charset),
                retryPolicy=policy,
                clock=self.reactor,
                prepareConnection=prepare,
            )
            service.startService()
            self._services.append(service)
        log.info("connecting to Redis at {host}:{port}", host=self.host, port=self.port)

    def stopService(self) -> Deferred:  # noqa: N802 (twisted API)
        super().stopService()
        services, self._services = self._services, []
        return DeferredList([service.stopService() for service in services])

    def publish(self, payload: bytes) -> None:
        """Fire and forget: a lost publish is repaired by the receivers' gap fill."""
        publisher = self._publisher
        if publisher is None:
            return
        try:
            d = publisher.publish(self.channel, payload)
        except Exception as exc:  # "Not connected": the connection is going away
            log.debug("publish to Redis failed: {error}", error=exc)
            return
        d.addErrback(lambda failure: log.debug("publish failed: {f}", f=failure.value))

    # connection life -------------------------------------------------------------------------

    def _subscribe(self, protocol: Any) -> Deferred:
        # ClientService hands us its proxy of the protocol; whenConnected() fires with the
        # protocol itself, the object whose connectionLost reports to `_lost`.
        def subscribe(connected: Any) -> Deferred:
            d = connected.subscribe(self.channel)
            d.addCallback(subscribed, connected)
            return d

        def subscribed(reply: Any, connected: Any) -> None:
            log.debug("subscribed to {channel}: {reply}", channel=self.channel, reply=reply)
            self._subscriber = connected
            self._update()

        return protocol.whenConnected().addCallback(subscribe)

    def _publisher_ready(self, protocol: Any) -> Deferred:
        def ready(p: Any) -> None:
            log.debug("publisher connected")
            self._publisher = p
            self._update()

        return protocol.whenConnected().addCallback(ready)

    def _lost(self, protocol: Any) -> None:
        log.debug(
            "Redis connection lost ({which})",
            which="subscriber"
            if protocol is self._subscriber
            else "publisher"
            if protocol is self._publisher
            else "not in use",
        )
        if protocol is self._subscriber:
            self._subscriber = None
        elif protocol is self._publisher:
            self._publisher = None
        self._update()

    def _update(self) -> None:
        up = self._subscriber is not None and self._publisher is not None
        if up != self.up:
            self.up = up
            if not self.running:
                return  # our own shutdown closed the connections: nothing to react to
            try:
                self.on_state(up)
            except Exception:
                log.failure("reacting to the Redis state failed")

    def _received(self, payload: Any) -> None:
        self.on_message(payload)
