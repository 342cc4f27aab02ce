"""Exactly once: a resent stored nonce is answered to its sender alone and never published.

Django's batch answer is authoritative (`created: false`, with `deleted`): whatever the recent
buffer holds (the original may have been evicted by newer messages, or forgotten because staff
deleted it) and after a restart (a fresh hub with an empty buffer), a repeat reaches no other
member, no held poll and no later visitor; the sender gets an `ack` frame (socket) or a `repeat`
answer (long-poll POST). Refusals for a full queue (`busy`) say how long to wait.
"""

from __future__ import annotations

import orjson
import pytest

from chatserver.frames import ClientFrame
from chatserver.hub import BUSY_RETRY_AFTER, ChatHub
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from chatserver.service import build_hub
from tests.chatserver.support import (
    ORIGIN,
    WsClient,
    body_json,
    make_hub,
    render,
    ticket,
    web_request,
)

# More than the recent buffer (200 by default): the original is no longer remembered there.
NEWER = 205


class Room:
    """One hub with a WebSocket factory and a long-poll resource over a shared FakeDjango."""

    def __init__(self, hub: ChatHub, reactor, django) -> None:
        self.hub, self.reactor, self.django = hub, reactor, django
        self.factory = ChatServerFactory(hub, reactor, hub.config)
        self.poll = LongPollResource(hub, hub.config, hub.clock)

    def restarted(self) -> Room:
        """A fresh chat server (empty buffer, no members) over the same Django."""
        return Room(
            build_hub(self.hub.config, self.reactor, self.django), self.reactor, self.django
        )

    def socket(self, uid: str, name: str, since: int | None = None) -> WsClient:
        t = ticket(self.reactor, uid=uid, name=name)
        extra = "" if since is None else f"&since={since}"
        client = WsClient(self.factory, f"/ws/lobby?ticket={t}{extra}", ORIGIN)
        assert client.status == 101
        return client

    def settle(self) -> None:
        """Let the persistence queue send its batches (the fake Django answers at once)."""
        for _ in range(5):
            self.reactor.advance(0.01)

    def post(self, body: str, nonce: str, uid: str = "u:1", name: str = "alice"):
        t = ticket(self.reactor, uid=uid, name=name)
        headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
        raw = orjson.dumps({"body": body, "nonce": nonce})
        request = render(
            self.poll, web_request("POST", f"/poll/lobby?ticket={t}", "/poll/", raw, headers)
        )
        self.settle()
        return request

    def held_poll(self, since: int):
        t = ticket(self.reactor, uid="u:3", name="carol")
        request = render(
            self.poll,
            web_request("GET", f"/poll/lobby?ticket={t}&since={since}", "/poll/", b"", {}),
        )
        assert not request.finished  # held: nothing newer yet
        return request

    def newer(self, count: int) -> None:
        """`count` newer messages from someone else, through the hub like any socket's."""
        for i in range(count):
            self.post(f"newer {i}", f"newer-{i}", uid="u:9", name="dave")


@pytest.fixture
def room() -> Room:
    hub, reactor, django = make_hub(rate=1000.0, burst=1000)
    return Room(hub, reactor, django)


def send(client: WsClient, body: str, nonce: str) -> None:
    client.send({"type": "message", "body": body, "nonce": nonce})


def kinds(frames: list[dict]) -> list[str]:
    return [f["type"] for f in frames if f["type"] not in ("presence", "typing")]


def events(client: WsClient) -> list[dict]:
    """Frames since the last call, without presence and typing."""
    return [f for f in client.json_frames() if f["type"] not in ("presence", "typing")]


def first_message(room: Room, alice: WsClient, bob: WsClient, body: str = "first") -> dict:
    send(alice, body, "n-first")
    room.settle()
    (frame,) = [f for f in bob.json_frames() if f["type"] == "message"]
    alice.json_frames()
    return {key: value for key, value in frame.items() if key != "type"}


@pytest.mark.parametrize("resent_body", ["first", "a different text"])
def test_repeat_after_the_buffer_moved_on_is_acked_to_the_sender_only(room, resent_body):
    """Resending a stored nonce after more newer messages than the recent buffer holds: the
    other member receives nothing (not the old message after newer ids), the sender gets one
    `ack` with the original id and message, and a new visitor's history has it once, in id
    order."""
    assert room.hub.config.recent_buffer < NEWER
    alice = room.socket("u:1", "alice")
    bob = room.socket("u:2", "bob")
    original = first_message(room, alice, bob)
    room.newer(NEWER)
    assert len([f for f in bob.json_frames() if f["type"] == "message"]) == NEWER
    alice.json_frames()

    send(alice, resent_body, "n-first")
    room.settle()
    assert kinds(bob.json_frames()) == []
    assert events(alice) == [
        {
            "type": "ack",
            "nonce": "n-first",
            "id": original["id"],
            "deleted": False,
            "message": original,
        }
    ]
    ids = [m["id"] for m in room.socket("u:4", "erin", since=0).json_frames()[0]["history"]]
    assert ids == sorted(set(ids)) and ids.count(original["id"]) == 1


@pytest.mark.parametrize("resent_body", ["first", "the same nonce, other words"])
def test_repeat_of_a_deleted_message_never_comes_back(room, resent_body):
    """Resending the nonce of a message staff deleted: nobody else receives it, the sender gets
    `ack` with `deleted: true` and no text, and later visitors (socket hello, poll) never see it."""
    alice = room.socket("u:1", "alice")
    bob = room.socket("u:2", "bob")
    original = first_message(room, alice, bob, body="regrettable")
    room.django.delete(original["id"])
    room.hub.announce("lobby", {"type": "deleted", "id": original["id"]})
    bob.json_frames()
    alice.json_frames()
    held = room.held_poll(since=original["id"])

    send(alice, resent_body, "n-first")
    room.settle()
    assert kinds(bob.json_frames()) == []
    assert events(alice) == [
        {"type": "ack", "nonce": "n-first", "id": original["id"], "deleted": True}
    ]
    assert not held.finished
    assert room.socket("u:4", "erin").json_frames()[0]["history"] == []
    assert room.hub.registry.history("lobby", None, 50) in (None, [])


@pytest.mark.parametrize("deleted", [False, True])
def test_repeat_after_a_restart_is_not_broadcast(room, deleted):
    """After a chat server restart (fresh hub, empty buffer), a resent stored nonce is still
    answered to its sender only: Django decides, not the buffer."""
    alice = room.socket("u:1", "alice")
    bob = room.socket("u:2", "bob")
    original = first_message(room, alice, bob)
    if deleted:
        room.django.delete(original["id"])
    fresh = room.restarted()
    bob = fresh.socket("u:2", "bob", since=original["id"])
    alice = fresh.socket("u:1", "alice", since=original["id"])
    bob.json_frames()
    alice.json_frames()

    send(alice, "first", "n-first")
    fresh.settle()
    assert kinds(bob.json_frames()) == []
    (ack,) = events(alice)
    assert ack["type"] == "ack" and ack["id"] == original["id"] and ack["deleted"] is deleted
    assert ack.get("message") == (None if deleted else original)
    assert fresh.hub.registry.history("lobby", original["id"], 50) in (None, [])


def test_long_poll_repeat_answers_the_sender_and_releases_no_poll(room):
    """On the long-poll POST a repeat answers the socket's `ack` frame in `events` (beside
    the previous release's `{"message", "repeat": true}`), or an `ack` with `deleted` (beside
    `{"deleted": true, "id", "repeat": true}`) once deleted; held polls stay held."""
    first = body_json(room.post("first", "p-1"))["message"]
    room.newer(NEWER)
    held = room.held_poll(since=first["id"] + NEWER)
    ack = {"type": "ack", "nonce": "p-1", "id": first["id"], "deleted": False, "message": first}
    assert body_json(room.post("again", "p-1")) == {
        "events": [ack],
        "message": first,
        "repeat": True,
    }
    room.django.delete(first["id"])
    room.hub.announce("lobby", {"type": "deleted", "id": first["id"]})
    held = room.held_poll(since=first["id"] + NEWER)
    answer = room.post("again", "p-1")
    assert answer.responseCode == 200
    ack = {"type": "ack", "nonce": "p-1", "id": first["id"], "deleted": True}
    assert body_json(answer) == {
        "events": [ack],
        "deleted": True,
        "id": first["id"],
        "repeat": True,
    }
    assert not held.finished


def test_busy_refusals_carry_retry_after_on_both_transports():
    """A full persistence queue refuses with `busy` and a `retry_after` in seconds: in the error
    frame, and in the long poll's 503 body with a whole-second `Retry-After` header."""
    hub, reactor, django = make_hub(queue_limit=1)
    django.hold = True
    room = Room(hub, reactor, django)
    alice = room.socket("u:1", "alice")
    send(alice, "fills the queue", "q-1")
    send(alice, "refused", "q-2")
    (error,) = [f for f in alice.json_frames() if f["type"] == "error"]
    assert error["code"] == "busy" and error["nonce"] == "q-2"
    assert error["retry_after"] == BUSY_RETRY_AFTER > 0
    answer = room.post("refused too", "q-3")
    assert answer.responseCode == 503
    assert body_json(answer)["retry_after"] == BUSY_RETRY_AFTER
    assert answer.responseHeaders.getRawHeaders(b"retry-after") == [b"1"]


def test_busy_while_shutting_down_carries_retry_after():
    """A server that is stopping refuses new messages with `busy` and a `retry_after` too."""
    hub, reactor, _ = make_hub()
    hub.shutting_down = True
    frame = ClientFrame(type="message", body="x", nonce="s-1")
    result = hub.submit("lobby", hub.verify(ticket(reactor), "lobby"), frame).result
    assert result["error"] == "busy" and result["retry_after"] == BUSY_RETRY_AFTER
