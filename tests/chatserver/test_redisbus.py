"""RedisBus over a MemoryReactorClock: the real txredisapi protocols on StringTransports.

Redis itself is played by the test, byte for byte (RESP), so the up/down bookkeeping is checked
through real connection losses and reconnections.
"""

from __future__ import annotations

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from chatserver.redisbus import RedisBus

CHANNEL = "t:events"


def bulk(text: str) -> bytes:
    return f"${len(text.encode())}\r\n{text}\r\n".encode()


SUBSCRIBED = b"*3\r\n" + bulk("subscribe") + bulk(CHANNEL) + b":1\r\n"


class Connection:
    """One client connection the bus opened, with our side of the wire."""

    def __init__(self, reactor: MemoryReactorClock, index: int) -> None:
        _host, _port, factory, _timeout, _bind = reactor.tcpClients[index]
        self.reactor = reactor
        self.protocol = factory.buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        reactor.advance(0)

    def reply(self, data: bytes) -> None:
        self.protocol.dataReceived(data)
        self.reactor.advance(0)  # the parser resumes after bulk strings on the reactor

    def lose(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))


def start() -> tuple[RedisBus, MemoryReactorClock, list[bool], list]:
    reactor = MemoryReactorClock()
    bus = RedisBus("redis://127.0.0.1:6399", CHANNEL, reactor, retry_max=1.0)
    states: list[bool] = []
    received: list = []
    bus.on_state = states.append
    bus.on_message = received.append
    bus.startService()
    return bus, reactor, states, received


def connect_both(reactor: MemoryReactorClock, first: int) -> tuple[Connection, Connection]:
    subscriber, publisher = Connection(reactor, first), Connection(reactor, first + 1)
    assert subscriber.transport.value() == b"*2\r\n" + bulk("SUBSCRIBE") + bulk(CHANNEL)
    subscriber.reply(SUBSCRIBED)
    return subscriber, publisher


def test_up_only_when_subscribed_and_publishing_and_messages_arrive():
    """Up needs both connections (the subscriber's SUBSCRIBE answered); published payloads go
    out as PUBLISH on the channel and channel messages come back through on_message."""
    bus, reactor, states, received = start()
    subscriber = Connection(reactor, 0)
    assert not bus.up
    subscriber.reply(SUBSCRIBED)
    assert not bus.up and states == []
    publisher = Connection(reactor, 1)
    assert bus.up and states == [True]
    bus.publish(b'{"type":"sync"}')
    assert publisher.transport.value() == (
        b"*3\r\n" + bulk("PUBLISH") + bulk(CHANNEL) + bulk('{"type":"sync"}')
    )
    subscriber.reply(b"*3\r\n" + bulk("message") + bulk(CHANNEL) + bulk('{"a":1}'))
    assert received == [b'{"a":1}']  # the bytes Redis sent, not decoded


def test_losing_either_connection_is_down_until_both_are_back():
    """A lost subscriber means down even while the publisher lives; reconnection (after the
    backoff) is up again only once the new subscriber is subscribed."""
    bus, reactor, states, _ = start()
    subscriber, publisher = connect_both(reactor, 0)
    assert states == [True]
    subscriber.lose()
    assert not bus.up and states == [True, False]
    reactor.advance(2.0)  # the retry (backoff: at most retry_max plus up to 1 s of jitter)
    again = Connection(reactor, 2)
    assert not bus.up  # connected, not subscribed yet
    again.reply(SUBSCRIBED)
    assert bus.up and states == [True, False, True]
    publisher.lose()
    assert states == [True, False, True, False]
    bus.publish(b"dropped while down")  # no error, nothing written anywhere
    assert b"dropped" not in publisher.transport.value()


def test_stopping_closes_without_reporting_down():
    """Our own shutdown is not an outage: no state change is reported."""
    bus, reactor, states, _ = start()
    connect_both(reactor, 0)
    bus.stopService()
    assert states == [True]


def test_room_channels_subscribe_one_command_each_and_come_back_after_a_reconnect():
    """watch sends SUBSCRIBE for that channel alone and `ready` fires on Redis's answer;
    unwatch sends UNSUBSCRIBE; payloads published on a room go to its channel; after a lost
    subscriber the new one subscribes the main channel and every watched room before up."""
    bus, reactor, states, received = start()
    subscriber, publisher = connect_both(reactor, 0)
    room = bus.room_channel("lobby")
    subscriber.transport.clear()
    bus.watch(room)
    assert subscriber.transport.value() == b"*2\r\n" + bulk("SUBSCRIBE") + bulk(room)
    fired: list = []
    bus.ready(room).addCallback(fired.append)
    assert fired == [] and not bus.watching(room)
    subscriber.reply(b"*3\r\n" + bulk("subscribe") + bulk(room) + b":2\r\n")
    assert fired == [None] and bus.watching(room)
    bus.publish(b"{}", room)
    assert publisher.transport.value().endswith(bulk("PUBLISH") + bulk(room) + bulk("{}"))
    subscriber.reply(b"*3\r\n" + bulk("message") + bulk(room) + bulk('{"b":2}'))
    assert received == [b'{"b":2}']
    bus.watch(bus.room_channel("other"))
    subscriber.lose()
    assert not bus.watching(room) and states == [True, False]
    reactor.advance(2.0)
    again = Connection(reactor, 2)
    again.reply(SUBSCRIBED)
    sent = again.transport.value()
    assert bulk(room) in sent and bulk(bus.room_channel("other")) in sent
    assert not bus.up  # the rooms are not confirmed yet
    for channel in sorted([room, bus.room_channel("other")]):
        again.reply(b"*3\r\n" + bulk("subscribe") + bulk(channel) + b":3\r\n")
    assert bus.up and bus.watching(room) and states == [True, False, True]
    again.transport.clear()
    bus.unwatch(room)
    assert again.transport.value() == b"*2\r\n" + bulk("UNSUBSCRIBE") + bulk(room)
    assert not bus.watching(room)
