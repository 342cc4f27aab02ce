"""Replies on the chat server (docs/protocol.md, `reply_to`): a message frame or long-poll POST
may name the message it answers. The chat server checks only the shape (a positive message id,
else `bad_reply_to` with the nonce, and nothing is queued) and passes it to Django in the batch
item; whether the parent exists in the room is Django's answer (`unknown_parent`), forwarded to
the sender. When Django says the parent was edited or deleted (`quote` on the `edited` /
`deleted` event), replies in the recent buffer take the new quote, so history answered from
memory agrees with a reload.
"""

from __future__ import annotations

import pytest

from chatserver.events import KINDS
from chatserver.frames import FrameError, validate_message
from tests.chatserver.support import ORIGIN, WsClient, body_json
from tests.chatserver.test_access import Env
from tests.chatserver.test_events import poll_post

MAX_ID = 2**53 - 1


@pytest.fixture
def env() -> Env:
    return Env()


def test_reply_to_is_optional_and_a_positive_message_id():
    plain = validate_message({"body": "hi", "nonce": "n1"}, 4000)
    assert plain.reply_to is None
    assert validate_message({"body": "hi", "nonce": "n1", "reply_to": None}, 4000).reply_to is None
    assert validate_message({"body": "hi", "nonce": "n1", "reply_to": 12}, 4000).reply_to == 12
    assert (
        validate_message({"body": "x", "nonce": "n", "reply_to": MAX_ID}, 4000).reply_to == MAX_ID
    )


@pytest.mark.parametrize("value", ["12", 0, -3, 1.5, 12.0, True, MAX_ID + 1, [12], {"id": 12}])
def test_anything_else_is_bad_reply_to_with_the_nonce(value):
    with pytest.raises(FrameError) as refused:
        validate_message({"body": "hi", "nonce": "n-7", "reply_to": value}, 4000)
    assert refused.value.code == "bad_reply_to" and refused.value.nonce == "n-7"
    assert "reply_to" in refused.value.message


def test_a_socket_reply_reaches_django_and_the_room_with_its_quote(env):
    alice = env.socket(uid="u:1")
    bob = env.socket(uid="u:2", name="bob")
    alice.send({"type": "message", "body": "lunch?", "nonce": "n-1"})
    bob.send({"type": "message", "body": "yes", "nonce": "n-2", "reply_to": 1})
    env.reactor.advance(1)
    assert [item.get("reply_to") for batch in env.django.batches for item in batch] == [None, 1]
    reply = [f for f in alice.json_frames() if f["type"] == "message"][-1]
    assert reply["reply_to"] == {
        "id": 1,
        "author": {"id": "u:1", "name": "alice", "guest": False},
        "snippet": "lunch?",
        "deleted": False,
    }


def test_a_bad_reply_to_on_a_socket_is_refused_and_nothing_is_queued(env):
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "yes", "nonce": "n-2", "reply_to": "1"})
    env.reactor.advance(1)
    [error] = alice.json_frames()
    assert (error["type"], error["code"], error["nonce"]) == ("error", "bad_reply_to", "n-2")
    assert env.django.batches == []


def test_django_refusing_the_parent_reaches_the_sender_on_both_transports(env):
    """A parent in another room or missing: Django refuses the item `unknown_parent`; the
    socket sender gets an error frame with its nonce, a poller a 400 with the code."""
    env.django.add("elsewhere", "secret plans")  # id 1, another room
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "yes", "nonce": "n-1", "reply_to": 1})
    env.reactor.advance(1)
    [error] = alice.json_frames()
    assert (error["code"], error["nonce"]) == ("unknown_parent", "n-1")
    answer = poll_post(env, {"body": "yes", "nonce": "n-2", "reply_to": 99})
    env.reactor.advance(1)
    assert answer.responseCode == 400 and body_json(answer)["error"] == "unknown_parent"
    refused = poll_post(env, {"body": "yes", "nonce": "n-3", "reply_to": 0})
    assert refused.responseCode == 400 and body_json(refused)["error"] == "bad_reply_to"
    assert [m["room"] for m in env.django.messages] == ["elsewhere"]


def test_a_poller_replies_and_gets_the_stored_reply(env):
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "lunch?", "nonce": "n-1"})
    env.reactor.advance(1)
    answer = poll_post(env, {"body": "yes", "nonce": "n-2", "reply_to": 1})
    env.reactor.advance(1)
    assert answer.responseCode == 200
    assert body_json(answer)["message"]["reply_to"]["snippet"] == "lunch?"


def test_edited_and_deleted_may_carry_a_quote_that_revises_buffered_replies(env):
    assert KINDS["edited"].requotes and KINDS["deleted"].requotes
    assert not KINDS["reactions"].requotes
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "lunch?", "nonce": "n-1"})
    alice.send({"type": "message", "body": "yes", "nonce": "n-2", "reply_to": 1})
    alice.send({"type": "message", "body": "no", "nonce": "n-3"})
    env.reactor.advance(1)
    quote = {"id": 1, "author": {"id": "u:1", "name": "alice", "guest": False}}
    edited = {
        "type": "edited",
        "id": 1,
        "version": 1,
        "body": "dinner?",
        "html": "<p>dinner?</p>",
        "edited_at": "2026-11-22T09:15:00.000Z",
        "quote": {**quote, "snippet": "dinner?", "deleted": False},
    }
    assert env.call("/internal/rooms/lobby/events", edited).responseCode == 200

    def buffered() -> dict:
        fresh = WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:9')}", ORIGIN)
        return {m["id"]: m.get("reply_to") for m in fresh.json_frames()[0]["history"]}

    assert buffered()[2]["snippet"] == "dinner?" and buffered()[3] is None
    gone = {"id": 1, "author": None, "snippet": "", "deleted": True}
    answer = env.call("/internal/rooms/lobby/events", {"type": "deleted", "id": 1, "quote": gone})
    assert answer.responseCode == 200
    assert buffered() == {2: gone, 3: None}
    # Resuming past the reply: the remembered deletion carries the quote too.
    again = WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:8')}&since=3", ORIGIN)
    events = again.json_frames()[0]["events"]
    assert {"type": "deleted", "id": 1, "quote": gone} in events


def test_the_control_api_refuses_a_quote_about_another_message_or_kind(env):
    for broken in (
        {"type": "deleted", "id": 1, "quote": {"id": 2, "deleted": True}},
        {"type": "deleted", "id": 1, "quote": "deleted"},
        {
            "type": "reactions",
            "id": 1,
            "version": 1,
            "reactions_version": 1,
            "reactions": [],
            "quote": {"id": 1},
        },
    ):
        answer = env.call("/internal/rooms/lobby/events", broken)
        assert answer.responseCode == 400 and body_json(answer)["error"] == "bad_request"
