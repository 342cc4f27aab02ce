"""Two chat server instances (hubs) over one in-memory Redis and one fake Django.

The Redis bus and Django are faked at their collaborator interfaces; the hubs, fan-out, ordering
and WebSocket protocols are the real ones, driven over StringTransports on a MemoryReactorClock.
"""

from __future__ import annotations

import orjson
import pytest
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from chatserver.protocol import ChatServerFactory
from tests.chatserver.support import ORIGIN, WsClient, make_cluster, ticket

BATCH_DELAY = 0.005
GAP_WAIT = 0.2


class Instance:
    """One hub with its WebSocket factory."""

    def __init__(self, hub, reactor, bus) -> None:
        self.hub = hub
        self.reactor = reactor
        self.bus = bus
        self.factory = ChatServerFactory(hub, reactor, hub.config)

    def connect(self, uid: str = "u:1", name: str = "alice", room: str = "lobby") -> WsClient:
        t = ticket(self.reactor, room=room, uid=uid, name=name)
        client = WsClient(self.factory, f"/ws/{room}?ticket={t}", ORIGIN)
        assert client.status == 101
        return client


@pytest.fixture
def cluster():
    hubs, reactor, django, redis = make_cluster(2)
    a, b = (Instance(hub, reactor, bus) for hub, bus in zip(hubs, redis.buses, strict=True))
    return a, b, reactor, django, redis


def say(client: WsClient, body: str, reactor) -> None:
    """Send a message and let the persistence batch go to Django."""
    client.send({"type": "message", "body": body, "nonce": body.replace(" ", "-")})
    reactor.advance(BATCH_DELAY)


class Seen:
    """Everything a client received, frame by frame (json_frames() consumes)."""

    def __init__(self, client: WsClient) -> None:
        self.client = client
        self.frames: list[dict] = []

    def update(self) -> Seen:
        self.frames.extend(self.client.json_frames())
        return self

    def ids(self) -> list[int]:
        return [f["id"] for f in self.update().frames if f["type"] == "message"]

    def of_type(self, kind: str) -> list[dict]:
        return [f for f in self.update().frames if f["type"] == kind]


def test_messages_cross_instances_in_both_directions_in_id_order_exactly_once(cluster):
    """A message sent on either instance reaches the sockets of both, once, in id order."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    for i in range(6):
        say(alice.client if i % 2 == 0 else bob.client, f"m {i}", reactor)
        redis.flush()
    expected = [m["id"] for m in django.messages]
    assert len(expected) == 6
    assert alice.ids() == expected
    assert bob.ids() == expected


def test_a_message_waits_for_its_predecessor_still_in_redis(cluster):
    """B stores a message whose predecessor (stored by A) has not arrived yet: B holds it
    until the predecessor arrives, then delivers both in order."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    say(alice.client, "first", reactor)  # stored; its envelope still queued in Redis
    say(bob.client, "second", reactor)  # stored with prev_id = first
    assert bob.ids() == []  # held: the gap is not filled yet
    redis.flush()
    assert bob.ids() == [1, 2]
    assert alice.ids() == [1, 2]
    assert django.history_calls == 2  # the two hellos; no gap fill was needed


def test_a_lost_publish_is_filled_from_django_after_the_wait(cluster):
    """An envelope that never arrives: after the gap wait, Django fills the hole."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    redis.flush()  # presence
    say(alice.client, "first", reactor)
    assert redis.drop() == 1
    say(bob.client, "second", reactor)
    reactor.advance(GAP_WAIT - 0.01)
    assert bob.ids() == []
    reactor.advance(0.02)
    assert bob.ids() == [1, 2]
    redis.flush()  # the second one's envelope reaches A, whose own first is its predecessor
    assert alice.ids() == [1, 2]
    assert b.hub.metrics.registry.get_sample_value("chat_redis_gap_fills_total") == 1


def test_a_deleted_predecessor_does_not_block_the_room(cluster):
    """The missing message was deleted before the fill: the fill (authoritative) skips it and
    the room moves on without asking Django again."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    say(alice.client, "first", reactor)
    redis.drop()
    django.delete(1)
    say(bob.client, "second", reactor)
    reactor.advance(GAP_WAIT)
    assert bob.ids() == [2]
    calls = django.history_calls
    reactor.advance(10)
    say(alice.client, "third", reactor)
    redis.flush()
    assert bob.ids() == [2, 3] and django.history_calls == calls


def test_redis_outage_keeps_local_delivery_and_converges_when_it_returns(cluster):
    """Redis down: each instance still serves its own sockets (gaps filled from Django at once);
    when Redis returns, every socket ends with the full history, no gap, no duplicate."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    say(alice.client, "before", reactor)
    redis.flush()
    redis.down()
    assert a.hub.metrics.registry.get_sample_value("chat_redis_up") == 0
    say(alice.client, "a during", reactor)
    assert alice.ids() == [1, 2]
    say(bob.client, "b during", reactor)  # prev_id 2, which B never saw: fill at once
    reactor.advance(0)
    assert bob.ids() == [1, 2, 3]
    say(alice.client, "a again", reactor)  # A does not know 3: it fills at once too
    reactor.advance(0)
    assert alice.ids() == [1, 2, 3, 4]
    say(bob.client, "b again", reactor)
    reactor.advance(0)
    redis.up()  # both resync from Django
    reactor.advance(0)
    redis.flush()
    say(alice.client, "after", reactor)
    redis.flush()
    expected = [m["id"] for m in django.messages]
    assert alice.ids() == expected and bob.ids() == expected
    assert a.hub.metrics.registry.get_sample_value("chat_redis_up") == 1


def test_since_is_answered_from_django_while_redis_is_down(cluster):
    """With Redis down an instance's buffer may lack other instances' messages: a reconnecting
    client's `since` is read from Django, so nothing is missed."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    say(bob.client, "seen by both", reactor)
    redis.flush()
    redis.down()
    say(alice.client, "only A knows", reactor)
    t = ticket(reactor, uid="u:3", name="carol")
    carol = WsClient(b.factory, f"/ws/lobby?ticket={t}&since=1", ORIGIN)
    hello = carol.json_frames()[0]
    assert [m["body"] for m in hello["history"]] == ["only A knows"]


def test_presence_is_the_union_and_a_person_counts_once(cluster):
    """Alice with a tab on each instance and Bob on B: both instances show alice and bob once;
    Alice stays online while one of her tabs is open anywhere."""
    a, b, reactor, django, redis = cluster
    quiet = a.hub.config.presence_interval  # presence announcements are coalesced per room

    def settle() -> None:
        reactor.advance(quiet)
        redis.flush()

    alice_a = Seen(a.connect())
    settle()
    alice_b, bob = b.connect(), Seen(b.connect(uid="u:2", name="bob"))
    settle()
    settle()
    assert a.hub.registry.online("lobby") == ["alice", "bob"]
    assert b.hub.registry.online("lobby") == ["alice", "bob"]
    assert alice_a.of_type("presence")[-1]["online"] == ["alice", "bob"]
    alice_b.protocol.connectionLost(Failure(ConnectionDone()))
    settle()
    assert a.hub.registry.online("lobby") == ["alice", "bob"]
    bob.client.protocol.connectionLost(Failure(ConnectionDone()))
    settle()
    settle()
    assert a.hub.registry.online("lobby") == ["alice"]
    assert alice_a.of_type("presence")[-1]["online"] == ["alice"]


def test_a_silent_instance_people_expire_and_redis_down_forgets_them(cluster):
    """Reports are refreshed by the timer and expire when an instance stops sending them; when
    Redis goes down, only this instance's own people are shown."""
    a, b, reactor, django, redis = cluster
    Seen(a.connect())
    b.connect(uid="u:2", name="bob")
    redis.flush()
    for _ in range(5):  # regular refreshes keep Bob
        reactor.advance(5)
        a.hub.fanout.tick()
        b.hub.fanout.tick()
        redis.flush()
    assert a.hub.registry.online("lobby") == ["alice", "bob"]
    redis.buses.remove(b.bus)  # B dies without a word
    for _ in range(4):
        reactor.advance(5)
        a.hub.fanout.tick()
        redis.flush()
    assert a.hub.registry.online("lobby") == ["alice"]
    redis.buses.append(b.bus)
    redis.down()
    redis.up()
    redis.flush()  # the sync request: B announces Bob again
    assert a.hub.registry.online("lobby") == ["alice", "bob"]
    redis.down()
    assert a.hub.registry.online("lobby") == ["alice"]


def test_archive_and_delete_from_django_reach_every_instance(cluster):
    """Django calls one instance; sockets on the other get the deletion and the 4004 close."""
    a, b, reactor, django, redis = cluster
    a.connect()
    bob = b.connect(uid="u:2", name="bob")
    bob_seen = Seen(bob)
    assert a.hub.announce("lobby", {"type": "deleted", "id": 7}) == 1
    redis.flush()
    assert bob_seen.of_type("deleted") == [{"type": "deleted", "id": 7}]
    a.hub.archive("lobby")
    redis.flush()
    assert bob.close_frame() == (4004, "room archived")
    assert b.hub.is_archived("lobby")


def test_an_archive_missed_during_an_outage_is_applied_when_redis_returns(cluster):
    """Django archived the room (calling A) while Redis was down: B asks Django on reconnect
    and closes its sockets too."""
    a, b, reactor, django, redis = cluster
    a.connect()
    bob = b.connect(uid="u:2", name="bob")
    redis.down()
    django.archived_rooms.add("lobby")
    a.hub.archive("lobby")
    assert not b.hub.is_archived("lobby")
    redis.up()
    assert b.hub.is_archived("lobby")
    assert bob.close_frame() == (4004, "room archived")


def test_typing_crosses_instances_but_not_back_to_the_typist(cluster):
    """A typing notice reaches the other instance's sockets, never its sender."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    alice.client.send({"type": "typing"})
    redis.flush()
    assert bob.of_type("typing") == [{"type": "typing", "user": "alice"}]
    assert alice.of_type("typing") == []


def test_malformed_envelopes_are_counted_and_ignored(cluster):
    """Garbage on the channel never breaks delivery."""
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    redis.queue.extend([b"not json", orjson.dumps({"type": "message", "origin": "x"})])
    redis.flush()
    say(alice.client, "still works", reactor)
    redis.flush()
    assert bob.ids() == [1]
    assert (
        b.hub.metrics.registry.get_sample_value("chat_errors_total", {"kind": "bad_envelope"}) == 2
    )


def test_rooms_without_listeners_keep_no_ordering_state(cluster):
    """Messages of a room nobody here listens to are not buffered or filled."""
    a, b, reactor, django, redis = cluster
    alice = a.connect()
    say(alice, "nobody on B", reactor)
    redis.flush()
    assert b.hub.fanout.sequencer.rooms() == 0
    assert django.history_calls == 1


def test_own_envelopes_lead_with_origin_and_are_dropped_unparsed(cluster):
    """Every envelope starts with its `origin`; an instance drops its own by that prefix
    without parsing it (garbage after our prefix is not even counted as malformed), while a
    peer's garbage is; our own in another release's layout (origin last) is still dropped."""
    a, b, reactor, django, redis = cluster
    alice = Seen(a.connect())
    say(alice.client, "hello", reactor)
    assert redis.published
    own = orjson.dumps({"origin": a.hub.fanout.origin})[:-1]
    assert all(p.startswith(own + b",") for p in redis.published if b'"message"' in p)
    redis.flush()
    assert alice.ids() == [1]
    redis.queue.extend(
        [
            own + b',"type":"message", not json',
            orjson.dumps({"origin": b.hub.fanout.origin})[:-1] + b',"type": not json',
            orjson.dumps(
                {"type": "message", "message": django.messages[0], "prev_id": None}
                | {"origin": a.hub.fanout.origin}
            ),
        ]
    )
    redis.flush()
    errors = a.hub.metrics.registry.get_sample_value("chat_errors_total", {"kind": "bad_envelope"})
    assert errors == 1  # B's garbage only
    assert alice.ids() == [1]  # our own message, echoed in the old layout, not delivered again


def test_a_room_channel_is_watched_from_its_first_local_member_to_its_last(cluster):
    """Subscribing follows the room's life here: first socket in -> watch, last out ->
    unwatch; a second socket in the same room does not subscribe again."""
    a, b, reactor, django, redis = cluster
    first = a.connect()
    second = a.connect(uid="u:2", name="bob")
    assert a.bus.subscriptions == [("watch", "room:lobby")]
    first.protocol.connectionLost(Failure(ConnectionDone()))
    assert a.bus.watched == {"room:lobby"}
    second.protocol.connectionLost(Failure(ConnectionDone()))
    assert a.bus.subscriptions == [("watch", "room:lobby"), ("unwatch", "room:lobby")]
    assert a.bus.watched == set()
    assert b.bus.subscriptions == []  # B never had anyone in the room


def test_room_envelopes_go_on_the_room_channel_and_only_its_listeners_hear_them(cluster):
    """Messages, events and presence of a room travel on its channel: an instance with no one
    in the room receives none of them; process-wide envelopes stay on the main channel."""
    a, b, reactor, django, redis = cluster
    heard_by_b: list = []
    on_message = b.bus.on_message

    def hear(payload: bytes) -> None:
        heard_by_b.append(orjson.loads(payload))
        on_message(payload)

    b.bus.on_message = hear
    alice = Seen(a.connect())
    say(alice.client, "only here", reactor)
    alice.client.send({"type": "typing"})
    redis.flush()
    assert alice.ids() == [1]
    kinds = {orjson.loads(p)["type"]: ch for ch, p in redis.published_on}
    assert kinds["message"] == "room:lobby" and kinds["presence"] == "room:lobby"
    assert kinds["event"] == "room:lobby"
    assert [e for e in heard_by_b if e.get("room") == "lobby" or "message" in e] == []
    a.hub.archive("lobby")
    redis.flush()
    assert [e["type"] for e in heard_by_b] == ["archived"]  # main channel: every instance


def test_history_is_read_only_once_the_room_channel_is_confirmed(cluster):
    """A message stored elsewhere between the history read and the subscription would reach
    neither: so the first member's history read waits for Redis to confirm the channel, and
    the buffer is not trusted before that."""
    a, b, reactor, django, redis = cluster
    redis.hold_subscriptions = True
    calls = django.history_calls
    alice = a.connect()
    assert django.history_calls == calls  # waiting for the SUBSCRIBE answer
    assert not a.hub.fanout.buffer_trusted("lobby")
    a.bus.confirm()
    reactor.advance(0)
    assert django.history_calls == calls + 1
    assert [f["type"] for f in alice.json_frames()][:1] == ["hello"]
    assert a.hub.fanout.buffer_trusted("lobby")


def test_a_late_first_member_learns_who_is_in_the_room_elsewhere(cluster):
    """Reports for rooms nobody here is in are not heard any more: opening the room asks the
    others (a `sync` on the room's channel) and their people show up."""
    a, b, reactor, django, redis = cluster
    bob = b.connect(uid="u:2", name="bob")
    redis.flush()
    reactor.advance(1)
    redis.flush()
    alice = Seen(a.connect())
    redis.flush()
    reactor.advance(0)
    redis.flush()
    assert a.hub.registry.online("lobby") == ["alice", "bob"]
    reactor.advance(a.hub.config.presence_interval)  # presence frames are coalesced
    frames = alice.update().frames
    online = [f["online"] for f in frames if f["type"] == "presence"]
    online += [f["online"] for f in frames if f["type"] == "hello"]
    assert ["alice", "bob"] in online
    assert bob.status == 101
