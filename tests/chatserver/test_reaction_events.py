"""The `reactions` room event: its row in the kind table, both fan-out paths (local and Redis)
and the control endpoint. It carries a message's whole reaction summary, so the newest summary
(highest `version`) wins and the recent buffer takes it."""

from __future__ import annotations

import pytest

from chatserver.events import KINDS
from tests.chatserver.support import body_json, make_cluster
from tests.chatserver.test_access import Env
from tests.chatserver.test_events import Member, local_room
from tests.chatserver.test_redis_fanout import Instance, Seen, say


def reactions(message_id: int, version: int, *emoji: str) -> dict:
    summary = [{"emoji": e, "users": [{"id": "u:1", "name": "alice"}], "count": 1} for e in emoji]
    return {
        "type": "reactions",
        "id": message_id,
        "version": version,
        "reactions_version": version,
        "reactions": summary,
    }


def test_the_row_of_reactions():
    kind = KINDS["reactions"]
    assert kind.control and kind.remembered and kind.after_message and kind.versioned
    assert kind.revises == ("reactions", "reactions_version")


def test_local_fanout_keeps_the_newest_summary_in_the_buffer():
    member = Member()
    fanout, registry = local_room(member)
    fanout.publish("lobby", {"id": 5, "room": "lobby", "body": "x", "reactions": []})
    assert fanout.publish_event("lobby", reactions(5, 2, "👍", "🎉")) == 1
    assert fanout.publish_event("lobby", reactions(5, 1, "👍")) == 0
    [message] = registry.history("lobby", 0, 50)
    assert [r["emoji"] for r in message["reactions"]] == ["👍", "🎉"]
    assert message["reactions_version"] == 2


@pytest.fixture
def cluster():
    hubs, reactor, django, redis = make_cluster(2)
    a, b = (Instance(hub, reactor, bus) for hub, bus in zip(hubs, redis.buses, strict=True))
    return a, b, reactor, django, redis


def test_reactions_cross_instances_after_their_message(cluster):
    a, b, reactor, django, redis = cluster
    alice, bob = a.connect(), Seen(b.connect(uid="u:2", name="bob"))
    redis.flush()
    say(alice, "hello", reactor)
    redis.flush()
    a.hub.announce("lobby", reactions(1, 1, "👍"))
    redis.flush()
    kinds = ("message", "reactions")
    seen = [(f["type"], f["id"]) for f in bob.update().frames if f["type"] in kinds]
    assert seen == [("message", 1), ("reactions", 1)]


def test_control_endpoint_refuses_reactions_without_their_fields():
    env = Env()
    for broken in (
        {"type": "reactions", "id": 7, "version": 1, "reactions_version": 1},
        {"type": "reactions", "id": 7, "reactions": [], "reactions_version": 1},
    ):
        answer = env.call("/internal/rooms/lobby/events", broken)
        assert answer.responseCode == 400 and body_json(answer)["error"] == "bad_request"
    answer = env.call("/internal/rooms/lobby/events", reactions(7, 1, "👍"))
    assert answer.responseCode == 200
