"""The `edited` room event (docs/protocol.md): its row in the kind table, both fan-out paths
(local and Redis), the control endpoint, socket hello and long-poll answers.

An edit is remembered (returning polls and resuming sockets apply it), waits for its message,
is versioned (the newest edit wins when edits race across instances) and revises the recent
buffer, so history answered from memory shows the message as it is now.
"""

from __future__ import annotations

import orjson
import pytest

from chatserver.events import KINDS, refers_to_message
from tests.chatserver.support import ORIGIN, WsClient, body_json, make_cluster, render, web_request
from tests.chatserver.test_access import Env
from tests.chatserver.test_events import Member, local_room
from tests.chatserver.test_redis_fanout import GAP_WAIT, Instance, Seen, say


def edited(message_id: int, version: int, body: str) -> dict:
    return {
        "type": "edited",
        "id": message_id,
        "version": version,
        "body": body,
        "html": f"<p>{body}</p>",
        "edited_at": f"2026-11-22T09:15:0{version}.000Z",
    }


def test_the_row_of_an_edit():
    kind = KINDS["edited"]
    assert kind.control and kind.remembered and kind.after_message and kind.versioned
    assert kind.hello_buffer and kind.wakes_polls and kind.relayed and not kind.retracts
    assert kind.revises == ("body", "html", "edited_at", "version")
    assert refers_to_message(kind)


def test_local_fanout_revises_the_buffer_keeps_the_newest_and_remembers():
    member = Member()
    fanout, registry = local_room(member)
    fanout.publish("lobby", {"id": 5, "room": "lobby", "body": "helo", "version": 0})
    before = registry.history("lobby", 0, 50)
    assert fanout.publish_event("lobby", edited(5, 2, "hello")) == 1
    assert fanout.publish_event("lobby", edited(5, 1, "stale")) == 0  # lost the race
    [message] = registry.history("lobby", 0, 50)
    assert (message["body"], message["version"]) == ("hello", 2)
    assert message["edited_at"] == "2026-11-22T09:15:02.000Z"
    assert before[0]["body"] == "helo"  # a page already handed out is not changed under it
    assert registry.remembered("lobby") == [edited(5, 2, "hello")]
    assert [f["type"] for f in member.frames] == ["message", "edited"]


@pytest.fixture
def cluster():
    hubs, reactor, django, redis = make_cluster(2)
    a, b = (Instance(hub, reactor, bus) for hub, bus in zip(hubs, redis.buses, strict=True))
    return a, b, reactor, django, redis


def test_an_edit_crosses_instances_and_the_newest_wins(cluster):
    a, b, reactor, django, redis = cluster
    alice, bob = Seen(a.connect()), Seen(b.connect(uid="u:2", name="bob"))
    redis.flush()
    say(alice.client, "helo", reactor)
    redis.flush()
    # Two edits race: B hears version 2 (through A's Redis relay) before version 1 (announced on
    # B directly, as a slower Django process would): version 1 is dropped on B.
    a.hub.announce("lobby", edited(1, 2, "hello!"))
    redis.flush()
    b.hub.announce("lobby", edited(1, 1, "hello"))
    redis.flush()
    assert [f["version"] for f in bob.of_type("edited")] == [2]
    assert [f["version"] for f in alice.of_type("edited")] == [2]
    envelopes = [orjson.loads(p) for p in redis.published]
    assert any(e["type"] == "event" and e["event"]["type"] == "edited" for e in envelopes)


def test_an_edit_waits_for_its_message_on_the_other_instance(cluster):
    a, b, reactor, django, redis = cluster
    alice, bob = a.connect(), Seen(b.connect(uid="u:2", name="bob"))
    redis.flush()
    say(alice, "first", reactor)
    assert redis.drop() == 1  # B never hears of message 1 through Redis
    say(alice, "secnd", reactor)
    b.hub.fanout.received(redis.queue.pop())  # message 2 reaches B: held, 1 is missing
    a.hub.announce("lobby", django.edit(2, "second"))
    redis.flush()
    assert bob.of_type("message") == bob.of_type("edited") == []
    reactor.advance(GAP_WAIT)  # the gap is filled from Django
    seen = [f for f in bob.update().frames if f["type"] in ("message", "edited")]
    assert [(f["type"], f["id"]) for f in seen] == [("message", 1), ("message", 2), ("edited", 2)]


@pytest.fixture
def env():
    return Env()


def test_control_endpoint_takes_an_edit_and_refuses_a_broken_one(env):
    alice = env.socket(uid="u:1")
    answer = env.call("/internal/rooms/lobby/events", edited(7, 1, "x"))
    assert answer.responseCode == 200 and body_json(answer) == {"notified": 1}
    for broken in (
        {"type": "edited", "id": 7, "body": "x", "html": "x", "edited_at": None},  # no version
        {"type": "edited", "id": 7, "version": "2", "body": "x", "html": "x", "edited_at": None},
        {"type": "edited", "id": 7, "version": 3},  # no body
        {"type": "edited", "id": 7, "version": 3, "body": "x", "edited_at": None},  # no html
        {"type": "edited", "version": 3, "body": "x", "html": "x", "edited_at": None},  # no id
    ):
        answer = env.call("/internal/rooms/lobby/events", broken)
        assert answer.responseCode == 400 and body_json(answer)["error"] == "bad_request"
    assert [f["type"] for f in alice.json_frames()] == ["edited"]


def test_a_resuming_socket_and_a_returning_poll_see_the_edit():
    """A client that comes back with `since` past the edited message still gets the edit:
    hello's `events` and the poll answer's `events` carry the remembered events."""
    env = Env()
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "helo", "nonce": "n-1"})
    env.reactor.advance(1)
    env.hub.announce("lobby", env.django.edit(1, "hello"))
    client = WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:3')}&since=1", ORIGIN)
    hello = client.json_frames()[0]
    assert hello["type"] == "hello" and hello["history"] == []
    assert [(e["type"], e["body"]) for e in hello["events"]] == [("edited", "hello")]
    # A poll answer repeats the remembered events (a poll with nothing new is held until
    # something wakes it, as for deletions: here the page after 0 answers at once).
    answer = body_json(env.held_poll(uid="u:2", since=0))
    kinds = [(f["type"], f.get("body")) for f in answer["events"] if f["type"] != "presence"]
    assert kinds == [("message", "hello"), ("edited", "hello")]
    # Without `since`, history answered from memory already shows the new body.
    fresh = WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:4')}", ORIGIN)
    [message] = fresh.json_frames()[0]["history"]
    assert (message["body"], message["html"], message["version"]) == ("hello", "<p>hello</p>", 1)


def poll(env: Env, query: str, uid: str = "u:2"):
    """A GET poll of the lobby by `uid` with `query` (after the ticket), rendered."""
    url = f"/poll/lobby?ticket={env.ticket(uid=uid)}&{query}"
    return render(env.poll, web_request("GET", url, "/poll/", b"", {"Origin": ORIGIN}))


@pytest.mark.parametrize("kind", ["edited", "reactions", "deleted"])
def test_an_event_between_two_polls_answers_the_next_poll_at_once(kind):
    """A poller between two polls (its answer sent, the next GET not here yet) when an edit, a
    reaction or a deletion arrives gets it from its next poll at once, not after the hold: the
    answer's `event_cursor` says which remembered events it has seen. Without it the next poll
    (`since` = the newest message, nothing new) was held until the poll timeout or the next
    message, so a long-polling reader saw the change up to 25 s late."""
    env = Env()
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "helo", "nonce": "n-1"})
    env.reactor.advance(1)
    first = body_json(poll(env, "since=0"))
    assert first["cursor"] == 1 and first["event_cursor"]
    # Nothing new since the first answer: the next poll is held.
    held = poll(env, f"since=1&event_cursor={first['event_cursor']}")
    assert not held.finished
    env.poll.release_all()
    quiet = body_json(held)
    assert quiet["event_cursor"] == first["event_cursor"]
    events = {
        "edited": env.django.edit(1, "hello"),
        "reactions": {"type": "reactions", "id": 1, "version": 1, "reactions": []},
        "deleted": {"type": "deleted", "id": 1},
    }
    env.hub.announce("lobby", events[kind])  # nobody is polling at this instant
    answer = poll(env, f"since=1&event_cursor={quiet['event_cursor']}")
    assert answer.finished, "the poll was held although an event arrived between two polls"
    got = body_json(answer)
    assert [e["type"] for e in got["events"] if e["type"] != "presence"] == [kind]
    assert got["event_cursor"] != quiet["event_cursor"]
    # Seen now: the poll after it is held again.
    assert not poll(env, f"since=1&event_cursor={got['event_cursor']}").finished


def test_another_instances_event_cursor_holds_the_poll_as_none_would():
    """Polls alternate between instances behind a balancer without sticky sessions: a cursor
    from another process must not answer every poll at once (a busy loop while the room
    remembers anything); it is held, as a poll without a cursor is."""
    env = Env()
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "helo", "nonce": "n-1"})
    env.reactor.advance(1)
    env.hub.announce("lobby", env.django.edit(1, "hello"))
    ours = body_json(poll(env, "since=0"))["event_cursor"]
    epoch, number = ours.split(".")
    elsewhere = ("0" if epoch[0] != "0" else "1") + epoch[1:]
    assert not poll(env, f"since=1&event_cursor={elsewhere}.{number}").finished
    assert not poll(env, f"since=1&event_cursor={elsewhere}.0").finished
    assert not poll(env, f"since=1&event_cursor={ours}").finished


@pytest.mark.parametrize("value", ["x", "1.2.3", "a" * 80, "-", "1,2"])
def test_a_malformed_event_cursor_is_400(value):
    env = Env()
    answer = poll(env, f"since=0&event_cursor={value}")
    assert answer.responseCode == 400
    assert body_json(answer)["error"] == "bad_event_cursor"


def test_the_chat_server_passes_html_through_as_opaque_data():
    """`html` is Django's rendering: the chat server never renders, parses or rewrites it. The
    message frame, the edit frame, hello's remembered events and history answered from memory
    all carry exactly the string Django gave."""
    env = Env()
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "**hi**", "nonce": "n-1"})
    env.reactor.advance(1)
    [stored] = [f for f in alice.json_frames() if f["type"] == "message"]
    assert stored["html"] == "<p>**hi**</p>"  # the fake's stand-in, untouched
    odd = '<p data-x="1">\u202e<b>not ours to judge</b></p>'
    event = {**edited(1, 1, "**bye**"), "html": odd}
    assert env.call("/internal/rooms/lobby/events", event).responseCode == 200
    assert [f["html"] for f in alice.json_frames() if f["type"] == "edited"] == [odd]
    fresh = WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:4')}", ORIGIN)
    [message] = fresh.json_frames()[0]["history"]
    assert message["html"] == odd
