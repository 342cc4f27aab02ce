"""Reactions through the public JSON API: any participant toggles one emoji on a message,
counts and who reacted are stored in Django and sent to the chat server as a `reactions`
event after commit (a real HTTP server records it); what is refused and why."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from chat.models import Message, Room

from . import test_admin

# The recording fake chat server of the admin tests (a real HTTP server on a free port).
chat_server = test_admin.chat_server


def react(client: Client, slug: str, message_id: int, emoji: object, **extra):
    return client.post(
        f"/api/rooms/{slug}/messages/{message_id}/react/",
        json.dumps({"emoji": emoji}),
        content_type="application/json",
        **extra,
    )


@pytest.fixture
def message(lobby) -> Message:
    return Message.objects.create(
        room=lobby, author_uid="u:999", author_name="zed", body="news", nonce="n1"
    )


def test_toggle_adds_then_removes_and_tells_the_chat_server(
    alice_client, alice, message, chat_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        added = react(alice_client, "lobby", message.pk, "👍")
    assert added.status_code == 200
    shape = added.json()["message"]
    me = {"id": f"u:{alice.pk}", "name": "alice"}
    assert shape["reactions"] == [{"emoji": "👍", "users": [me], "count": 1}]
    assert shape["reactions_version"] == 1
    with django_capture_on_commit_callbacks(execute=True):
        removed = react(alice_client, "lobby", message.pk, "👍")
    assert removed.json()["message"]["reactions"] == []
    calls = [r["body"] for r in chat_server.requests if r["method"] == "POST"]
    assert calls == [
        {
            "type": "reactions",
            "id": message.pk,
            "version": 1,
            "reactions_version": 1,
            "reactions": [{"emoji": "👍", "users": [me], "count": 1}],
        },
        {
            "type": "reactions",
            "id": message.pk,
            "version": 2,
            "reactions_version": 2,
            "reactions": [],
        },
    ]


def test_counts_and_who_from_several_people_and_history_shows_them(
    alice_client, alice, message, client
):
    react(alice_client, "lobby", message.pk, "🎉")
    guest = Client()
    guest.get("/chats/lobby/")
    guest_id = guest.get("/api/rooms/lobby/ticket/").json()["user"]["id"]
    react(guest, "lobby", message.pk, "🎉")
    react(guest, "lobby", message.pk, "👨‍👩‍👧")  # a ZWJ sequence is one emoji
    [listed] = alice_client.get("/api/rooms/lobby/messages/").json()["messages"]
    assert [(r["emoji"], r["count"]) for r in listed["reactions"]] == [("🎉", 2), ("👨‍👩‍👧", 1)]
    assert [u["id"] for u in listed["reactions"][0]["users"]] == [f"u:{alice.pk}", guest_id]
    assert listed["reactions_version"] == 3


@pytest.mark.parametrize("value", ["", "a", "👍👍", ":thumbsup:", "👍 ", None, 7, "x" * 40])
def test_only_one_emoji_is_a_reaction(alice_client, message, value):
    response = react(alice_client, "lobby", message.pk, value)
    assert response.status_code == 400 and response.json()["error"] == "bad_emoji"


def test_distinct_reactions_are_limited(alice_client, message, client, django_user_model):
    with override_settings(CHAT_MAX_REACTIONS=2):
        assert react(alice_client, "lobby", message.pk, "👍").status_code == 200
        assert react(alice_client, "lobby", message.pk, "❤️").status_code == 200
        refused = react(alice_client, "lobby", message.pk, "😂")
        assert refused.status_code == 409 and refused.json()["error"] == "too_many_reactions"
        # An emoji already there still counts one more person.
        bob = django_user_model.objects.create_user("bob", password="pw-bob-123456")
        client.force_login(bob)
        assert (
            react(client, "lobby", message.pk, "👍").json()["message"]["reactions"][0]["count"] == 2
        )


def test_refusals(alice_client, message, lobby):
    assert react(alice_client, "nope", message.pk, "👍").json()["error"] == "unknown_room"
    gone = react(alice_client, "lobby", message.pk + 1, "👍")
    assert gone.status_code == 404 and gone.json()["error"] == "message_gone"
    Message.objects.filter(pk=message.pk).update(is_deleted=True)
    assert react(alice_client, "lobby", message.pk, "👍").json()["error"] == "message_gone"
    Room.objects.filter(pk=lobby.pk).update(is_archived=True)
    archived = react(alice_client, "lobby", message.pk, "👍")
    assert archived.status_code == 409 and archived.json()["error"] == "room_archived"


def test_guest_in_room_that_no_longer_allows_guests(client, message, lobby):
    client.get("/chats/lobby/")
    Room.objects.filter(pk=lobby.pk).update(allow_guests=False)
    response = react(client, "lobby", message.pk, "👍")
    assert response.status_code == 403 and response.json()["error"] == "sign_in_required"


def test_csrf_is_required(alice, message):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = react(client, "lobby", message.pk, "👍")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
