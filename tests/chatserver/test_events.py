"""Room events as data: the kind table, the two fan-out paths (local and Redis), the control
endpoint `POST /internal/rooms/<slug>/events` with its aliases, and typing on long polls.

Members are real transports (sockets over `WsClient`, held polls over the long-poll resource)
or, for the fan-out alone, recording members; Redis is the in-memory `FakeRedis`.
"""

from __future__ import annotations

import orjson
import pytest
from twisted.internet.defer import Deferred

from chatserver.events import KINDS, Kind, UnknownKind, kind_of
from chatserver.fanout import LocalFanout
from chatserver.hub import prepare_frame
from chatserver.rooms import RoomRegistry
from tests.chatserver.support import ORIGIN, body_json, make_cluster, render, web_request
from tests.chatserver.test_access import NOW_MS, Env
from tests.chatserver.test_redis_fanout import GAP_WAIT, Instance, Seen, say


class Member:
    """A room member that records the frames delivered to it."""

    def __init__(self, uid: str = "u:9") -> None:
        self.uid = uid
        self.frames: list[dict] = []

    def deliver(self, broadcast) -> None:
        self.frames.append(broadcast.frame)


def local_room(*members: Member) -> tuple[LocalFanout, RoomRegistry]:
    registry = RoomRegistry()
    for member in members:
        registry.add_member("lobby", member)
    registry.seed("lobby", [], complete_after=0)
    return LocalFanout(registry, prepare_frame), registry


# the table ------------------------------------------------------------------------------------


def test_the_table_says_how_each_kind_travels():
    """The behaviour the transports and the fan-out read from the table: messages take the
    ordered path; a deletion is kept for hello, wakes polls, is remembered, waits for its
    message, retracts it and may come from Django; presence is not relayed (each instance
    reports its own people) and is never buffered for hello; typing wakes polls but is stale
    after a history read."""
    assert KINDS["message"].ordered
    deleted = KINDS["deleted"]
    assert (deleted.hello_buffer, deleted.wakes_polls, deleted.remembered) == (True, True, True)
    assert (deleted.after_message, deleted.retracts, deleted.control) == (True, True, True)
    presence = KINDS["presence"]
    assert not (presence.relayed or presence.hello_buffer or presence.wakes_polls)
    typing = KINDS["typing"]
    assert typing.wakes_polls and typing.relayed and not typing.hello_buffer
    assert not any(kind.control for kind in (KINDS["message"], presence, typing))


def test_the_generic_path_refuses_messages_and_unknown_kinds():
    """A message must take the ordered path; a kind the table does not list is refused."""
    with pytest.raises(UnknownKind):
        kind_of({"type": "message", "id": 1})
    with pytest.raises(UnknownKind):
        kind_of({"type": "reacted_in_a_future_release", "id": 1})
    fanout, _ = local_room(Member())
    with pytest.raises(UnknownKind):
        fanout.publish_event("lobby", {"type": "nonsense"})


# the local fan-out ----------------------------------------------------------------------------


def test_ordered_path_delivers_a_message_once_and_the_generic_path_every_event():
    """A message id published twice reaches members once; events have no such de-duplication
    (the same typing notice twice is two notices) and never go back to their sender."""
    alice, bob = Member("u:1"), Member("u:2")
    fanout, _ = local_room(alice, bob)
    message = {"id": 5, "room": "lobby", "body": "hi"}
    assert fanout.publish("lobby", message) == 2
    assert fanout.publish("lobby", message) == 0
    fanout.publish_event("lobby", {"type": "typing", "user": "alice"}, sender=alice)
    fanout.publish_event("lobby", {"type": "typing", "user": "alice"}, sender="u:1")
    assert alice.frames == [{"type": "message", **message}]
    assert (
        bob.frames == [{"type": "message", **message}] + [{"type": "typing", "user": "alice"}] * 2
    )


def test_a_deletion_retracts_the_message_and_is_remembered_for_returning_polls():
    """`retracts`: the deleted message leaves the recent buffer (history from memory no longer
    shows it); `remembered`: the event is kept for polls that come back later."""
    member = Member()
    fanout, registry = local_room(member)
    fanout.publish("lobby", {"id": 5, "room": "lobby", "body": "rude"})
    fanout.publish("lobby", {"id": 6, "room": "lobby", "body": "fine"})
    fanout.publish_event("lobby", {"type": "deleted", "id": 5})
    assert [m["id"] for m in registry.history("lobby", 0, 50)] == [6]
    assert registry.remembered("lobby") == [{"type": "deleted", "id": 5}]
    assert member.frames[-1] == {"type": "deleted", "id": 5}


def test_a_versioned_kind_keeps_the_newest_version(monkeypatch):
    """`versioned`: an event older than (or as old as) one seen for the same message is
    dropped, so the newest wins whatever order they arrive in (a kind added for the test)."""
    monkeypatch.setitem(KINDS, "edited", Kind("edited", versioned=True))  # versioned alone
    member = Member()
    fanout, _ = local_room(member)
    assert fanout.publish_event("lobby", {"type": "edited", "id": 5, "version": 2}) == 1
    assert fanout.publish_event("lobby", {"type": "edited", "id": 5, "version": 1}) == 0
    assert fanout.publish_event("lobby", {"type": "edited", "id": 5, "version": 2}) == 0
    assert fanout.publish_event("lobby", {"type": "edited", "id": 5}) == 0  # no version
    assert fanout.publish_event("lobby", {"type": "edited", "id": 5, "version": 3}) == 1
    assert [f["version"] for f in member.frames] == [2, 3]


def test_presence_goes_out_through_the_generic_path():
    """Presence is a helper over `publish_event`: members get the presence frame."""
    member = Member()
    fanout, registry = local_room(member)
    registry.add_presence("lobby", "u:1", "alice")
    fanout.publish_presence("lobby")
    assert member.frames == [
        {
            "type": "presence",
            "online": ["alice"],
            "people": [{"id": "u:1", "name": "alice", "guest": False}],
        }
    ]


# the Redis fan-out ----------------------------------------------------------------------------


@pytest.fixture
def cluster():
    hubs, reactor, django, redis = make_cluster(2)
    a, b = (Instance(hub, reactor, bus) for hub, bus in zip(hubs, redis.buses, strict=True))
    return a, b, reactor, django, redis


def envelopes(redis) -> list[dict]:
    return [orjson.loads(p) for p in redis.published]


def test_room_events_cross_instances_in_one_envelope(cluster):
    """A deletion Django announced on A and a typing notice on A reach B's sockets; both travel
    in the one `event` envelope (presence keeps its own per-instance report)."""
    a, b, reactor, django, redis = cluster
    alice, bob = a.connect(), Seen(b.connect(uid="u:2", name="bob"))
    redis.flush()
    say(alice, "hello", reactor)
    redis.flush()
    redis.published.clear()
    a.hub.announce("lobby", {"type": "deleted", "id": 1})
    alice.send({"type": "typing"})
    redis.flush()
    assert bob.of_type("deleted") == [{"type": "deleted", "id": 1}]
    assert bob.of_type("typing") == [{"type": "typing", "user": "alice"}]
    room_events = [e for e in envelopes(redis) if e["type"] == "event"]
    assert [(e["room"], e["event"]["type"]) for e in room_events] == [
        ("lobby", "deleted"),
        ("lobby", "typing"),
    ]
    assert {e["type"] for e in envelopes(redis)} == {"event"}


def test_an_event_waits_for_the_message_it_refers_to(cluster):
    """`after_message`: a deletion that reaches B while B holds the message for a gap is
    delivered after the message, never before it."""
    a, b, reactor, django, redis = cluster
    alice, bob = a.connect(), Seen(b.connect(uid="u:2", name="bob"))
    redis.flush()
    say(alice, "first", reactor)
    assert redis.drop() == 1  # B never hears of message 1 through Redis
    say(alice, "second", reactor)
    b.hub.fanout.received(redis.queue.pop())  # message 2 reaches B: held, 1 is missing
    a.hub.announce("lobby", {"type": "deleted", "id": 2})
    redis.flush()
    assert bob.of_type("message") == bob.of_type("deleted") == []  # waits with its message
    reactor.advance(GAP_WAIT)  # the gap is filled from Django
    seen = [f for f in bob.update().frames if f["type"] in ("message", "deleted")]
    assert [(f["type"], f["id"]) for f in seen] == [
        ("message", 1),
        ("message", 2),
        ("deleted", 2),
    ]


def test_the_previous_release_envelopes_are_still_read(cluster):
    """During a rolling upgrade an instance of the previous release sends `deleted` and
    `typing` envelopes: they reach this instance's sockets."""
    a, b, reactor, django, redis = cluster
    bob = Seen(b.connect(uid="u:2", name="bob"))
    b.hub.fanout.received(
        orjson.dumps({"type": "deleted", "origin": "old", "room": "lobby", "id": 3})
    )
    b.hub.fanout.received(
        orjson.dumps({"type": "typing", "origin": "old", "room": "lobby", "user": "carol"})
    )
    assert bob.of_type("deleted") == [{"type": "deleted", "id": 3}]
    assert bob.of_type("typing") == [{"type": "typing", "user": "carol"}]


def test_a_room_event_of_an_unknown_kind_is_ignored_quietly(cluster):
    """An `event` envelope of a kind this release does not know (a newer instance during an
    upgrade) reaches nobody and is not counted as a bad envelope."""
    a, b, reactor, django, redis = cluster
    bob = Seen(b.connect(uid="u:2", name="bob"))
    before = len(bob.update().frames)
    envelope = {"type": "event", "origin": "new", "room": "lobby", "event": {"type": "future_kind"}}
    b.hub.fanout.received(orjson.dumps(envelope))
    assert len(bob.update().frames) == before
    assert b.hub.metrics.registry.get_sample_value(
        "chat_errors_total", {"kind": "bad_envelope"}
    ) in (
        None,
        0,
    )


def test_archive_crosses_instances_as_a_state_event(cluster):
    """Archiving through the events endpoint on A closes B's sockets (4004) too."""
    a, b, reactor, django, redis = cluster
    bob = b.connect(uid="u:2", name="bob")
    bob.frames()
    a.hub.archive("lobby")
    redis.flush()
    assert bob.close_frame() == (4004, "room archived")


# the control endpoint -------------------------------------------------------------------------


@pytest.fixture
def env():
    return Env()


def test_events_endpoint_takes_an_event_or_a_list(env):
    """`POST /internal/rooms/<slug>/events`: one event answers as its alias does; a list
    answers `results` in order; every event reaches the room's sockets."""
    alice = env.socket(uid="u:1")
    answer = env.call("/internal/rooms/lobby/events", {"type": "deleted", "id": 7})
    assert answer.responseCode == 200 and body_json(answer) == {"notified": 1}
    answer = env.call(
        "/internal/rooms/lobby/events", [{"type": "deleted", "id": 8}, {"type": "archived"}]
    )
    assert body_json(answer) == {"results": [{"notified": 1}, {"closed": 1}]}
    frames = alice.frames()
    deleted = [orjson.loads(p) for op, p in frames if op == 1]
    assert [f["id"] for f in deleted if f["type"] == "deleted"] == [7, 8]
    assert [p[:2] for op, p in frames if op == 8] == [(4004).to_bytes(2, "big")]


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "typing", "user": "x"},  # not a kind Django may send
        {"type": "message", "id": 1},
        {"type": "deleted"},
        {"type": "deleted", "id": "7"},
        {"type": "deleted", "id": 2**53},
        {"type": "room_deleted"},
        {"type": "access", "before_ms": NOW_MS, "scope": "some"},
        [],
        [{"type": "deleted", "id": 1}, {"type": "nope"}],
        "deleted",
    ],
)
def test_events_endpoint_refuses_what_it_cannot_apply(env, payload):
    """An unknown kind, a kind Django may not send, a missing or malformed field, an empty
    list or a list with one bad event: 400 `bad_request`, and nothing reaches the room."""
    alice = env.socket(uid="u:1")
    answer = env.call("/internal/rooms/lobby/events", payload)
    assert answer.responseCode == 400 and body_json(answer)["error"] == "bad_request"
    assert alice.json_frames() == [] and alice.close_frame() is None


def test_the_old_urls_are_aliases_of_the_events_endpoint(env):
    """The per-change URLs of the previous release answer and act as their event does."""
    alice = env.socket(uid="u:1")
    answer = env.call("/internal/rooms/lobby/messages/9/deleted")
    assert body_json(answer) == {"notified": 1}
    assert alice.json_frames()[-1] == {"type": "deleted", "id": 9}
    assert body_json(env.call("/internal/rooms/lobby/unarchived")) == {"archived": False}
    answer = env.call("/internal/rooms/lobby/access", {"before_ms": NOW_MS, "scope": "all"})
    assert body_json(answer) == {"closed": 1}
    assert alice.close_frame() == (4003, "access revoked")


# typing and long polls ------------------------------------------------------------------------


def poll_post(env: Env, payload: dict, uid: str = "u:2", name: str = "bob"):
    t = env.ticket(uid=uid, name=name)
    request = web_request(
        "POST",
        f"/poll/lobby?ticket={t}",
        "/poll/",
        orjson.dumps(payload),
        {"Origin": ORIGIN, "Content-Type": "application/json"},
    )
    return render(env.poll, request)


def test_typing_from_a_socket_wakes_a_held_poll_with_the_typing_frame(env):
    """Typing wakes held polls (the table's `wakes_polls`): the answer carries the socket's
    typing frame in `events`."""
    alice = env.socket(uid="u:1")
    held = env.held_poll(uid="u:2", name="bob")
    assert not held.finished
    alice.send({"type": "typing"})
    assert held.finished
    assert {"type": "typing", "user": "alice"} in body_json(held)["events"]


def test_a_poller_types_with_a_post_and_others_see_it_but_not_itself(env):
    """`POST /poll/<slug>` with `{"type": "typing"}` answers `{"events": []}`; the room's
    sockets and other pollers' held polls get the typing frame, the typist's own held poll
    does not; a second notice within `typing_interval` is not relayed."""
    alice = env.socket(uid="u:1")
    own = env.held_poll(uid="u:2", name="bob")
    carol = env.held_poll(uid="u:3", name="carol")

    def typed() -> list[dict]:
        return [f for f in alice.json_frames() if f["type"] == "typing"]

    typed()
    answer = poll_post(env, {"type": "typing"})
    assert answer.responseCode == 200 and body_json(answer) == {"events": []}
    assert typed() == [{"type": "typing", "user": "bob"}]
    assert carol.finished and {"type": "typing", "user": "bob"} in body_json(carol)["events"]
    assert not own.finished
    poll_post(env, {"type": "typing"})
    assert typed() == []
    env.reactor.advance(env.hub.config.typing_interval)
    poll_post(env, {"type": "typing"})
    assert typed() == [{"type": "typing", "user": "bob"}]


def test_a_poll_answer_carries_remembered_events_and_the_cursor(env):
    """A poll that comes back after a deletion gets it among its `events` (remembered), and
    `cursor` names the `since` of its next poll."""
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "one", "nonce": "n-1"})
    env.reactor.advance(1)
    env.hub.announce("lobby", {"type": "deleted", "id": 1})
    alice.send({"type": "message", "body": "two", "nonce": "n-2"})
    env.reactor.advance(1)
    answer = env.held_poll(uid="u:2", since=0)
    body = body_json(answer)
    assert [(f["type"], f.get("id")) for f in body["events"]] == [
        ("message", 2),
        ("deleted", 1),
        ("presence", None),
    ]
    assert body["cursor"] == 2 and body["deleted"] == [1]


def test_the_socket_hello_keeps_buffered_deletions_of_older_messages():
    """An event about a message older than hello's history (a deletion during the history
    read) is delivered after hello, not dropped with the messages hello already holds."""
    env = Env()
    env.django.add("lobby", "old")
    read: list = []
    env.django.latest_messages("lobby", 50).addCallback(read.append)
    pending: Deferred = Deferred()
    env.django.latest_messages = lambda room, limit: pending  # the read is under way
    client = env.socket(uid="u:1")
    env.hub.announce("lobby", {"type": "deleted", "id": 1})
    pending.callback(read[0])
    frames = client.json_frames()
    assert [f["type"] for f in frames] == ["hello", "deleted"]
