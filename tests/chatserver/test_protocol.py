"""The WebSocket transport driven through real handshakes over StringTransports."""

from __future__ import annotations

import gc
import weakref

import orjson
import pytest
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from chatserver.protocol import ChatServerFactory
from chatserver.tickets import FEED_AUDIENCE
from tests.chatserver.support import (
    ORIGIN,
    WsClient,
    client_frame,
    handshake,
    make_hub,
    parse_frames,
    ticket,
)


@pytest.fixture
def env():
    hub, reactor, django = make_hub()
    factory = ChatServerFactory(hub, reactor, hub.config)
    return hub, reactor, django, factory


def connect(env, uid="u:1", name="alice", room="lobby", origin=ORIGIN, extra=""):
    hub, reactor, django, factory = env
    t = ticket(reactor, room=room, uid=uid, name=name)
    return WsClient(factory, f"/ws/{room}?ticket={t}{extra}", origin)


def test_valid_ticket_gets_hello_with_history_and_presence(env):
    """A good ticket upgrades (101) and the first frame is hello with history and online."""
    _, _, django, _ = env
    old = django.add("lobby", "before")
    client = connect(env)
    assert client.status == 101
    frames = client.json_frames()
    assert frames[0]["type"] == "hello"
    assert frames[0]["history"] == [old]
    assert frames[0]["online"] == ["alice"]
    assert frames[0]["user"] == {"id": "u:1", "name": "alice", "guest": False}
    assert frames[0]["people"] == [{"id": "u:1", "name": "alice", "guest": False}]
    assert len(frames) == 1  # its own presence change is already in hello


@pytest.mark.parametrize(
    "path",
    [
        "/ws/lobby",
        "/ws/lobby?ticket=v1.abc.def",
        "/ws/lobby?ticket=garbage",
    ],
)
def test_missing_or_forged_ticket_is_403(env, path):
    """Missing or forged tickets are refused with HTTP 403 before the upgrade."""
    client = WsClient(env[3], path, ORIGIN)
    assert client.status == 403
    assert client.transport.disconnecting


def test_expired_and_other_room_tickets_are_403(env):
    """An expired ticket, or one for another room, is refused with 403."""
    hub, reactor, _, factory = env
    stale = ticket(reactor)
    reactor.advance(61)
    assert WsClient(factory, f"/ws/lobby?ticket={stale}", ORIGIN).status == 403
    other = ticket(reactor, room="other")
    assert WsClient(factory, f"/ws/lobby?ticket={other}", ORIGIN).status == 403


def test_origin_outside_allowlist_is_403_and_missing_origin_is_judged_by_ticket(env):
    """A foreign browser Origin gets 403; no Origin at all passes on the ticket alone."""
    assert connect(env, origin="http://evil.example").status == 403
    assert connect(env, origin=None).status == 101


def test_archived_room_is_404(env):
    """A room known to be archived refuses new sockets with 404."""
    env[0].registry.archived.add("lobby")
    assert connect(env).status == 404


def test_message_is_stored_then_broadcast_to_room_including_sender(env):
    """A message frame goes through persistence and reaches everyone, sender included."""
    hub, reactor, django, _ = env
    alice = connect(env)
    bob = connect(env, uid="u:2", name="bob")
    alice.json_frames()
    bob.json_frames()
    alice.send({"type": "message", "body": "  hi  ", "nonce": "n-1"})
    assert alice.json_frames() == []  # not before Django stored it
    reactor.advance(0.01)
    a = alice.json_frames()
    b = bob.json_frames()
    assert a == b
    assert a[0]["type"] == "message" and a[0]["body"] == "hi" and a[0]["id"] == 1
    assert django.batches[0][0]["name"] == "alice"


def test_bad_json_and_unknown_type_get_error_frames_and_connection_stays(env):
    """Malformed JSON and unknown types answer an error frame; the socket stays open."""
    client = connect(env)
    client.json_frames()
    client.protocol.dataReceived(client_frame(b"{nope"))
    client.send({"type": "dance"})
    client.send({"type": "message", "body": "", "nonce": "n1"})
    codes = [f["code"] for f in client.json_frames()]
    assert codes == ["bad_json", "unknown_type", "empty_body"]
    client.send({"type": "ping"})
    assert client.json_frames() == [{"type": "pong"}]
    assert not client.transport.disconnecting


def test_binary_frame_closes_with_1003_close_frame(env):
    """A binary frame closes the socket with a real 1003 close frame (not a dropped TCP)."""
    client = connect(env)
    client.frames()
    client.protocol.dataReceived(client_frame(b"\x00\x01", opcode=2))
    assert client.close_frame() == (1003, "binary frames are not accepted")


def test_oversize_frame_closes_with_1009_close_frame(env):
    """A frame announcing more than the payload limit closes with a real 1009 close frame."""
    client = connect(env)
    client.frames()
    client.protocol.dataReceived(client_frame(b"x" * 10, length=65537)[:14])
    code, _ = client.close_frame()
    assert code == 1009


def test_rate_limit_then_flood_close_1008():
    """Past the burst, messages get rate_limited; past CHAT_FLOOD_CLOSE refusals, close 1008."""
    hub, reactor, django = make_hub(burst=2, rate=0.0001, flood_close=3)
    factory = ChatServerFactory(hub, reactor, hub.config)
    client = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN)
    client.json_frames()
    for i in range(4):
        client.send({"type": "message", "body": "x", "nonce": f"n{i}"})
    errors = [f for f in client.json_frames() if f["type"] == "error"]
    assert [e["code"] for e in errors] == ["rate_limited", "rate_limited"]
    assert errors[0]["nonce"] == "n2"
    client.send({"type": "message", "body": "x", "nonce": "n9"})
    assert client.close_frame()[0] == 1008


def test_typing_is_relayed_to_others_at_most_once_per_interval(env):
    """Typing reaches the others (not the sender), at most once per typing interval."""
    hub, reactor, _, _ = env
    alice = connect(env)
    bob = connect(env, uid="u:2", name="bob")
    alice.json_frames()
    bob.json_frames()
    alice.send({"type": "typing"})
    alice.send({"type": "typing"})
    assert bob.json_frames() == [{"type": "typing", "user": "alice"}]
    assert alice.json_frames() == []
    reactor.advance(2)
    bob.json_frames()  # the coalesced presence of bob's own arrival
    alice.send({"type": "typing"})
    assert bob.json_frames() == [{"type": "typing", "user": "alice"}]


def test_presence_counts_a_person_with_two_tabs_once(env):
    """Two sockets of one uid show the name once; presence changes only when the last leaves."""
    alice1 = connect(env)
    alice2 = connect(env)
    bob = connect(env, uid="u:2", name="bob")
    assert bob.json_frames()[0]["online"] == ["alice", "bob"]
    env[1].advance(env[0].config.presence_interval)  # presence is coalesced per room
    bob.json_frames()  # the coalesced presence of bob's own arrival
    alice1.protocol.connectionLost(Failure(ConnectionDone()))
    env[1].advance(env[0].config.presence_interval)
    assert bob.json_frames() == []
    alice2.protocol.connectionLost(Failure(ConnectionDone()))
    env[1].advance(env[0].config.presence_interval)
    assert bob.json_frames() == [
        {
            "type": "presence",
            "online": ["bob"],
            "people": [{"id": "u:2", "name": "bob", "guest": False}],
        }
    ]


def test_since_hello_has_every_later_message_and_live_messages_are_not_duplicated(env):
    """With since, hello carries every later message; a message stored during history is once."""
    hub, reactor, django, _ = env
    for i in range(3):
        django.add("lobby", f"m{i}")
    client = connect(env, extra="&since=1")
    hello = client.json_frames()[0]
    assert [m["id"] for m in hello["history"]] == [2, 3]


def test_live_message_during_history_fetch_is_delivered_once_after_hello(env):
    """Events during the history read are buffered and de-duplicated against the history."""
    hub, reactor, django, factory = env
    from twisted.internet.defer import Deferred

    pending: Deferred = Deferred()
    django.latest_messages = lambda room, limit: pending
    client = connect(env)
    assert client.json_frames() == []
    stored = django.add("lobby", "during")
    hub.fanout.publish("lobby", stored)  # arrives before the history answer
    newer = django.add("lobby", "after")
    hub.fanout.publish("lobby", newer)
    pending.callback(([stored], False))  # the history already contains `stored`
    frames = client.json_frames()
    assert frames[0]["type"] == "hello" and [m["id"] for m in frames[0]["history"]] == [1]
    assert [f.get("id") for f in frames[1:]] == [2]


def test_archive_closes_with_4004_and_delete_notifies(env):
    """Archiving closes sockets with 4004 'room archived'; deletion sends a deleted frame."""
    hub, reactor, django, _ = env
    client = connect(env)
    client.frames()
    assert hub.announce("lobby", {"type": "deleted", "id": 7}) == 1
    assert client.json_frames() == [{"type": "deleted", "id": 7}]
    assert hub.archive("lobby") == 1
    assert client.close_frame() == (4004, "room archived")


def test_slow_reader_is_cut_with_4008_without_slowing_others():
    """A paused transport that would buffer past the bound is closed; others still get frames."""
    hub, reactor, django = make_hub(max_outgoing_buffer=300)
    factory = ChatServerFactory(hub, reactor, hub.config)
    slow = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN)
    fast = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor, uid='u:2', name='b')}", ORIGIN)
    slow.frames()
    fast.json_frames()
    assert slow.transport.producer is slow.protocol  # flow control reaches the protocol
    slow.protocol.pauseProducing()
    for _ in range(5):
        hub.fanout.publish("lobby", django.add("lobby", "x" * 50))
    assert slow.close_frame()[0] == 4008
    assert slow.transport.disconnecting
    assert len(fast.json_frames()) == 5


def test_ping_sweep_pings_then_drops_a_silent_peer(env):
    """The sweep sends a ping; a peer that never pongs is dropped on a later sweep."""
    hub, reactor, _, factory = env
    quiet = connect(env)
    alive = connect(env, uid="u:2", name="bob")
    quiet.frames()
    alive.frames()
    factory.sweep()
    assert [op for op, _ in quiet.frames()] == [9]
    assert [op for op, _ in alive.frames()] == [9]
    alive.protocol.dataReceived(client_frame(b"", opcode=10))
    reactor.advance(20)
    factory.sweep()
    assert quiet.transport.disconnecting
    assert not alive.transport.disconnecting


def test_ping_sweep_steps_spread_each_round_over_the_interval(env):
    """`sweep_step` (the timer's call, `steps` per ping interval): each step pings its share
    of the sockets, every socket exactly once per round of `steps` steps, and a socket that
    did not answer is dropped in the next round, the others pinged again."""
    hub, reactor, _, factory = env
    clients = [connect(env, uid=f"u:{i}", name=f"n{i}") for i in range(10)]
    for client in clients:
        client.frames()
    pings = {id(c): 0 for c in clients}
    visited = []
    for _step in range(4):
        visited.append(factory.sweep_step(4))
        reactor.advance(5)
        for client in clients:
            pings[id(client)] += [op for op, _ in client.frames()].count(9)
    assert visited == [3, 3, 3, 1]
    assert sorted(pings.values()) == [1] * 10
    quiet, alive = clients[0], clients[1:]
    for client in alive:
        client.protocol.dataReceived(client_frame(b"", opcode=10))
    for _step in range(4):
        factory.sweep_step(4)
        reactor.advance(5)
    assert quiet.transport.disconnecting
    assert not any(c.transport.disconnecting for c in alive)
    assert all([op for op, _ in c.frames()].count(9) == 1 for c in alive)


def test_ping_sweep_steps_never_ping_a_few_sockets_more_than_once_per_round(env):
    """Fewer sockets than steps: a round still lasts all its steps (one ping per socket per
    ping interval, not one per step)."""
    hub, reactor, _, factory = env
    clients = [connect(env, uid=f"u:{i}", name=f"n{i}") for i in range(3)]
    for client in clients:
        client.frames()
    for _step in range(20):
        factory.sweep_step(20)
        for client in clients:  # every ping answered at once
            if [op for op, _ in client.frames()].count(9):
                client.protocol.dataReceived(client_frame(b"", opcode=10))
                client.pinged = getattr(client, "pinged", 0) + 1
    assert [getattr(c, "pinged", 0) for c in clients] == [1, 1, 1]


def test_shutdown_close_all_sends_1001(env):
    """close_all closes every open socket with a real 1001 close frame."""
    hub, reactor, _, factory = env
    client = connect(env)
    client.frames()
    d = factory.close_all()
    assert client.close_frame() == (1001, "server shutting down")
    client.protocol.connectionLost(Failure(ConnectionDone()))
    assert d.called


def test_site_takeover_releases_http_channel():
    """Through the real Site, the upgrade leaves no HTTPChannel referenced by the transport."""
    from twisted.web.resource import Resource

    from chatserver.health import MetricsResource
    from chatserver.web import build_site

    hub, reactor, _ = make_hub()
    factory = ChatServerFactory(hub, reactor, hub.config)
    site = build_site(
        factory,
        poll=None,
        control=Resource(),
        health=Resource(),
        metrics=MetricsResource(hub.metrics.registry),
        reactor=reactor,
    )
    channel = site.buildProtocol(None)
    transport = StringTransport()
    transport.protocol = channel  # as on a real TCP transport, which the resource rewires
    channel.makeConnection(transport)
    channel.dataReceived(handshake(f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN))
    assert transport.value().startswith(b"HTTP/1.1 101")
    assert transport.producer is not channel and transport.producer is transport.protocol
    hello = orjson.loads(parse_frames(transport.value().split(b"\r\n\r\n", 1)[1])[0][1])
    assert hello["type"] == "hello"
    ref = weakref.ref(channel)
    del channel
    gc.collect()
    assert ref() is None
    reactor.advance(hub.config.presence_interval)  # the room's presence quiet period ends
    assert reactor.getDelayedCalls() == [] or all(not c.active() for c in reactor.getDelayedCalls())


def _holds(value: object, secret: str) -> bool:
    if isinstance(value, bytes | bytearray):
        return secret.encode() in value
    if isinstance(value, str):
        return secret in value
    if isinstance(value, dict):
        return any(_holds(k, secret) or _holds(v, secret) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_holds(v, secret) for v in value)
    return False


@pytest.mark.parametrize("path", ["/ws/lobby", "/ws/@me"])
def test_an_open_socket_keeps_no_copy_of_its_handshake(env, path):
    """Once open, a socket (room or feed) keeps neither the raw request head, the request line
    and URI, the parsed query nor the response head: its ticket does not stay in memory for the
    socket's life, and an idle socket is about 1.5 KB smaller (docs/performance.md)."""
    hub, reactor, django, factory = env
    t = ticket(reactor, aud=FEED_AUDIENCE) if path == "/ws/@me" else ticket(reactor)
    client = WsClient(factory, f"{path}?ticket={t}", ORIGIN)
    assert client.status == 101
    assert client.json_frames()[0]["type"] == "hello"
    assert [name for name, value in vars(client.protocol).items() if _holds(value, t)] == []
    # The socket still works: a ping is answered.
    client.send({"type": "ping"})
    assert client.json_frames() == [{"type": "pong"}]
