"""Attachments on the chat server (docs/protocol.md, `attachments`): a message frame or long-poll
POST may name 1 to CHAT_MAX_FILES_PER_MESSAGE upload ids; with them the body may be empty. The
chat server checks only the list's shape (else `bad_attachments` with the nonce, nothing queued),
passes the ids in the batch item, and broadcasts Django's stored message, attachments included.
"""

from __future__ import annotations

import pytest

from chatserver.config import ChatServerConfig
from chatserver.frames import FrameError, parse_client_frame, validate_message
from tests.chatserver.support import body_json
from tests.chatserver.test_access import Env
from tests.chatserver.test_events import poll_post

ID = "Xq3" + "a" * 19  # 22 characters of the token alphabet


@pytest.fixture
def env() -> Env:
    return Env()


def test_attachments_are_optional_and_allow_an_empty_body():
    assert validate_message({"body": "hi", "nonce": "n"}, 4000).attachments == ()
    frame = validate_message({"body": "  ", "nonce": "n", "attachments": [ID, "b" * 22]}, 4000)
    assert frame.body == "" and frame.attachments == (ID, "b" * 22)
    assert (
        validate_message({"body": "x", "nonce": "n", "attachments": None}, 4000).attachments == ()
    )
    with pytest.raises(FrameError) as refused:
        validate_message({"body": " ", "nonce": "n", "attachments": None}, 4000)
    assert refused.value.code == "empty_body"


@pytest.mark.parametrize(
    "value",
    [
        [],
        "abc",
        [ID, ID],
        ["short"],
        ["x" * 23],
        ["a/b" + "c" * 19],
        [1],
        [None],
        {"id": ID},
        [f"{i:022d}" for i in range(11)],
    ],
)
def test_a_bad_list_is_bad_attachments_with_the_nonce(value):
    with pytest.raises(FrameError) as refused:
        validate_message({"body": "hi", "nonce": "n-7", "attachments": value}, 4000)
    assert (refused.value.code, refused.value.nonce) == ("bad_attachments", "n-7")


def test_the_limit_is_the_configured_number_of_files():
    """CHAT_MAX_FILES_PER_MESSAGE (the config's `max_files`) is the most ids a frame may carry."""
    config = ChatServerConfig.from_environ(
        {"CHAT_SHARED_SECRET": "s" * 32, "CHAT_MAX_FILES_PER_MESSAGE": "2"}
    )
    assert config.max_files == 2
    two = b'{"type":"message","body":"","nonce":"n","attachments":["%s","%s"]}' % (
        b"a" * 22,
        b"b" * 22,
    )
    assert len(parse_client_frame(two, 4000, config.max_files).attachments) == 2
    three = two.replace(b'"]}', b'","' + b"c" * 22 + b'"]}')
    with pytest.raises(FrameError) as refused:
        parse_client_frame(three, 4000, config.max_files)
    assert refused.value.code == "bad_attachments"


def test_a_socket_message_with_attachments_reaches_django_and_the_room(env):
    """The ids go to Django in the batch item; every member receives Django's stored shape."""
    shape = env.django.upload("lobby", "u:1")
    alice = env.socket(uid="u:1")
    bob = env.socket(uid="u:2", name="bob")
    alice.send({"type": "message", "body": "", "nonce": "n-1", "attachments": [shape["id"]]})
    env.reactor.advance(1)
    assert [item.get("attachments") for batch in env.django.batches for item in batch] == [
        [shape["id"]]
    ]
    received = [f for f in bob.json_frames() if f["type"] == "message"]
    assert received[-1]["attachments"] == [shape] and received[-1]["body"] == ""


def test_a_bad_list_on_a_socket_is_refused_and_nothing_is_queued(env):
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "x", "nonce": "n-2", "attachments": ["nope"]})
    env.reactor.advance(1)
    [error] = alice.json_frames()
    assert (error["type"], error["code"], error["nonce"]) == ("error", "bad_attachments", "n-2")
    assert env.django.batches == []


def test_django_refusing_the_ids_reaches_the_sender_on_both_transports(env):
    """Someone else's upload: Django refuses `bad_attachments`; the socket sender gets an error
    frame with its nonce, a poller a 400 with the code. A poller's own upload is stored."""
    theirs = env.django.upload("lobby", "u:9")
    alice = env.socket(uid="u:1")
    alice.send({"type": "message", "body": "", "nonce": "n-1", "attachments": [theirs["id"]]})
    env.reactor.advance(1)
    [error] = alice.json_frames()
    assert (error["code"], error["nonce"]) == ("bad_attachments", "n-1")
    refused = poll_post(env, {"body": "", "nonce": "n-2", "attachments": [theirs["id"]]})
    env.reactor.advance(1)
    assert refused.responseCode == 400 and body_json(refused)["error"] == "bad_attachments"
    mine = env.django.upload("lobby", "u:2")
    answer = poll_post(env, {"body": "", "nonce": "n-3", "attachments": [mine["id"]]})
    env.reactor.advance(1)
    assert answer.responseCode == 200
    assert body_json(answer)["message"]["attachments"] == [mine]
