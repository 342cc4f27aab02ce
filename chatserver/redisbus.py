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
from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, succeed
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
    """Publish bytes on channels; receive (as bytes) what is published on the main channel
    and on the room channels watched.

    `channel` is always subscribed (process-wide envelopes). `watch(room_channel(slug))` adds
    a room's channel until `unwatch`: an instance hears only the rooms it has clients in.
    Each SUBSCRIBE / UNSUBSCRIBE names one channel, so Redis answers each command with exactly
    one reply and txredisapi's reply queue pairs them in order.
    """

    def __init__(
        self,
        url: str,
        channel: str,
        reactor: Any,
        retry_max: float = 2.0,
        room_prefix: str | None = None,
    ) -> None:
        self.host, self.port, self._password = parse_redis_url(url)
        self.channel = channel
        self.room_prefix = room_prefix if room_prefix is not None else channel + ":room:"
        self.reactor = reactor
        self.retry_max = retry_max
        self.up = False
        self.on_message: Callable[[Any], None] = lambda payload: None
        self.on_state: Callable[[bool], None] = lambda up: None
        self._subscriber: Any = None
        self._publisher: Any = None
        self._services: list[ClientService] = []
        self._watched: dict[str, int] = {}  # room channel -> watch number (newest wins)
        self._confirmed: set[str] = set()  # watched channels Redis confirmed on this connection
        self._waiters: dict[str, list[Deferred]] = {}  # `ready` callers per channel

    # room channels -------------------------------------------------------------------------

    def room_channel(self, slug: str) -> str:
        """The channel of one room's envelopes."""
        return self.room_prefix + slug

    def watch(self, channel: str) -> None:
        """Receive `channel` too, from its confirmation until `unwatch` (and after reconnects)."""
        number = self._watched[channel] = self._watched.get(channel, 0) + 1
        self._confirmed.discard(channel)
        subscriber = self._subscriber
        if subscriber is None:
            self._release(channel)  # down: the connection's setup subscribes it
            return

        def confirmed(_reply: Any) -> None:
            # A later unwatch/watch of the channel, or a new connection, owns its state now.
            if self._subscriber is subscriber and self._watched.get(channel) == number:
                self._confirmed.add(channel)
            self._release(channel)

        def failed(failure: Any) -> None:
            log.debug("subscribing {c} failed: {f}", c=channel, f=failure.value)
            self._release(channel)  # the connection is going away: its reconnect resubscribes

        subscriber.subscribe(channel).addCallbacks(confirmed, failed)

    def unwatch(self, channel: str) -> None:
        """Stop receiving `channel`."""
        if self._watched.pop(channel, None) is None:
            return
        self._confirmed.discard(channel)
        self._release(channel)
        subscriber = self._subscriber
        if subscriber is not None:
            d = subscriber.unsubscribe(channel)
            d.addErrback(lambda f: log.debug("unsubscribe failed: {f}", f=f.value))

    def watching(self, channel: str) -> bool:
        """True while Redis has confirmed that this connection receives `channel`."""
        return self.up and channel in self._confirmed

    def ready(self, channel: str) -> Deferred:
        """Fires once a watched `channel` is confirmed (every envelope published from then on
        arrives here), at once when it is confirmed already, not watched, or Redis is down
        (the fan-out then reads from Django when Redis returns)."""
        if self._subscriber is None or channel not in self._watched or channel in self._confirmed:
            return succeed(None)
        d: Deferred = Deferred()
        self._waiters.setdefault(channel, []).append(d)
        return d

    def _release(self, channel: str) -> None:
        for d in self._waiters.pop(channel, []):
            d.callback(None)

    def _release_all(self) -> None:
        for channel in list(self._waiters):
            self._release(channel)

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

    def publish(self, payload: bytes, channel: str | None = None) -> None:
        """Fire and forget on `channel` (default: the main channel): a lost publish is
        repaired by the receivers' gap fill."""
        publisher = self._publisher
        if publisher is None:
            return
        try:
            d = publisher.publish(channel or self.channel, payload)
        except Exception as exc:  # "Not connected": the connection is going away
            log.debug("publish to Redis failed: {error}", error=exc)
            return
        d.addErrback(lambda failure: log.debug("publish failed: {f}", f=failure.value))

    # connection life -------------------------------------------------------------------------

    def _subscribe(self, protocol: Any) -> Deferred:
        # ClientService hands us its proxy of the protocol; whenConnected() fires with the
        # protocol itself, the object whose connectionLost reports to `_lost`.
        return protocol.whenConnected().addCallback(self._subscribe_all)

    @inlineCallbacks
    def _subscribe_all(self, connected: Any) -> Any:
        """The main channel, then every watched room channel (also those watched meanwhile);
        the bus is up only once all are confirmed, so what `on_state(True)` reads from Django
        cannot miss an envelope published after it. A failure fails the connection's setup
        (ClientService retries)."""
        yield connected.subscribe(self.channel)
        done: set[str] = set()
        while missing := set(self._watched) - done:
            yield DeferredList(
                [connected.subscribe(channel) for channel in sorted(missing)],
                fireOnOneErrback=True,
                consumeErrors=True,
            )
            done |= missing
        for channel in done - set(self._watched):
            connected.unsubscribe(channel)  # unwatched while this setup ran
        log.debug("subscribed to {channel} and {n} rooms", channel=self.channel, n=len(done))
        self._subscriber = connected
        self._confirmed = set(self._watched)
        self._release_all()
        self._update()

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
            self._confirmed.clear()
            self._release_all()
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
