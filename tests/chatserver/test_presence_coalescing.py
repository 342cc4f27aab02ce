"""Presence churn is coalesced per room: at most one presence frame per `presence_interval`,
the last state always goes out; with Redis, announcements to the other instances too."""

from __future__ import annotations

import math

import orjson
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from tests.chatserver.support import (
    ORIGIN,
    WsClient,
    make_cluster,
    make_hub,
    render,
    ticket,
    web_request,
)


def _connect(factory, reactor, uid, name, room="lobby") -> WsClient:
    client = WsClient(
        factory, f"/ws/{room}?ticket={ticket(reactor, room=room, uid=uid, name=name)}", ORIGIN
    )
    assert client.status == 101
    return client


def _presence(client: WsClient) -> list[list[str]]:
    return [f["online"] for f in client.json_frames() if f["type"] == "presence"]


def test_connect_disconnect_churn_sends_a_few_presence_frames_and_the_last_state():
    """A guest connecting and leaving 200 times in 2 s: the member gets at most one presence
    frame per interval (before: 400), and the last one is the room's final state."""
    hub, reactor, _ = make_hub()
    factory = ChatServerFactory(hub, reactor, hub.config)
    bob = _connect(factory, reactor, "u:2", "bob")
    reactor.advance(1)
    bob.json_frames()
    seconds = 2.0
    cycles = 200
    for i in range(cycles):
        churner = _connect(factory, reactor, f"g:{i}", f"guest{i}")
        reactor.advance(seconds / cycles / 2)
        churner.protocol.connectionLost(Failure(ConnectionDone()))
        reactor.advance(seconds / cycles / 2)
    reactor.advance(hub.config.presence_interval)
    frames = _presence(bob)
    assert len(frames) <= math.ceil(seconds / hub.config.presence_interval) + 1
    assert frames[-1] == ["bob"]


def test_the_last_change_always_goes_out():
    """A change inside a quiet period is delivered when the period ends, with the state then."""
    hub, reactor, _ = make_hub(presence_interval=1.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    bob = _connect(factory, reactor, "u:2", "bob")
    reactor.advance(5)
    bob.json_frames()
    carol = _connect(factory, reactor, "u:3", "carol")
    assert _presence(bob) == [["bob", "carol"]]  # the first change goes out at once
    carol.protocol.connectionLost(Failure(ConnectionDone()))
    dave = _connect(factory, reactor, "u:4", "dave")
    assert _presence(bob) == []
    reactor.advance(1.0)
    assert _presence(bob) == [["bob", "dave"]]
    dave.protocol.connectionLost(Failure(ConnectionDone()))
    reactor.advance(1.0)
    assert _presence(bob) == [["bob"]]


def test_long_poll_churn_is_coalesced_too():
    """Pollers joining and expiring in a loop: the sockets in the room get few frames."""
    hub, reactor, django = make_hub(poll_grace=0.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    poll = LongPollResource(hub, hub.config, hub.clock)
    bob = _connect(factory, reactor, "u:2", "bob")
    reactor.advance(1)
    bob.json_frames()
    for i in range(100):
        t = ticket(reactor, uid=f"g:{i}", name=f"p{i}")
        render(
            poll, web_request("GET", f"/poll/lobby?ticket={t}", "/poll/", b"", {"Origin": ORIGIN})
        )
        reactor.advance(0.01)
        poll.sweep()
    reactor.advance(hub.config.presence_interval)
    frames = _presence(bob)
    assert len(frames) <= math.ceil(1.0 / hub.config.presence_interval) + 1
    assert frames[-1] == ["bob"]


def test_coalescer_runs_once_per_interval_per_key_and_forgets_quiet_keys():
    """The mechanism on a plain Clock: leading run, one trailing run, no timer left after."""
    from chatserver.fanout import Coalescer

    clock = Clock()
    runs: list[tuple[float, str]] = []
    coalescer = Coalescer(clock, 0.5, lambda key: runs.append((clock.seconds(), key)))
    for _ in range(100):
        coalescer.request("a")
        coalescer.request("b")
        clock.advance(0.01)
    clock.advance(1)
    a_runs = [t for t, key in runs if key == "a"]
    assert a_runs[0] == 0.0 and len(a_runs) == 3  # at 0, 0.5, 1.0 (requests until 0.99)
    assert all(later - earlier >= 0.5 for earlier, later in zip(a_runs, a_runs[1:], strict=False))
    assert clock.getDelayedCalls() == []


def test_redis_presence_announcements_are_coalesced():
    """Churn on one instance publishes at most one presence envelope per interval to the bus
    (before: one per change), the other instance's answers to the room opening again are
    coalesced too, and the other instance converges on the final state."""
    hubs, reactor, _, redis = make_cluster(2)
    a, b = hubs
    factory_a = ChatServerFactory(a, reactor, a.config)
    factory_b = ChatServerFactory(b, reactor, b.config)
    watcher = _connect(factory_b, reactor, "u:9", "watcher")
    reactor.advance(1)
    redis.flush()
    redis.published.clear()
    for i in range(100):
        churner = _connect(factory_a, reactor, f"g:{i}", f"guest{i}")
        reactor.advance(0.005)
        churner.protocol.connectionLost(Failure(ConnectionDone()))
        reactor.advance(0.005)
        redis.flush()
    reactor.advance(a.config.presence_interval)
    redis.flush()
    announcements = [orjson.loads(p) for p in redis.published]
    announcements = [e for e in announcements if e.get("type") == "presence"]
    bound = math.ceil(1.0 / a.config.presence_interval) + 1
    assert len([e for e in announcements if e["origin"] == a.fanout.origin]) <= bound
    # Each opening of the room on A (its first member) asks B who is there: B's answers are
    # coalesced the same way.
    assert len([e for e in announcements if e["origin"] == b.fanout.origin]) <= bound
    reactor.advance(b.config.presence_interval)
    assert b.registry.online("lobby") == ["watcher"]
    assert _presence(watcher)[-1] == ["watcher"]
