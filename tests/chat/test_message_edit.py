"""Editing a message through the public JSON API: who may, until when, what is refused, and the
`edited` event Django sends the chat server after commit (a real HTTP server records it)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from chat.models import Message, Room

from . import test_admin

# The recording fake chat server of the admin tests (a real HTTP server on a free port).
chat_server = test_admin.chat_server


def edit(client: Client, slug: str, message_id: int, body: object, **extra):
    return client.post(
        f"/api/rooms/{slug}/messages/{message_id}/edit/",
        json.dumps({"body": body}),
        content_type="application/json",
        **extra,
    )


def posts(server) -> list[dict]:
    return [r for r in server.requests if r["method"] == "POST"]


def test_author_edits_and_chat_server_gets_the_event(
    alice_client,
    alice_message,
    chat_server,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = edit(alice_client, "lobby", alice_message.pk, "  hello  ")
    assert response.status_code == 200
    shape = response.json()["message"]
    assert shape["body"] == "hello" and shape["version"] == 1 and shape["edited_at"]
    alice_message.refresh_from_db()
    assert alice_message.body == "hello" and alice_message.version == 1
    [call] = posts(chat_server)
    assert call["path"] == "/internal/rooms/lobby/events" and call["signature_ok"]
    assert call["body"] == {
        "type": "edited",
        "id": alice_message.pk,
        "version": 1,
        "body": "hello",
        "html": "<p>hello</p>",
        "edited_at": shape["edited_at"],
    }
    # History (and so a reload) shows the latest body, the marker's timestamp and the version.
    listed = alice_client.get("/api/rooms/lobby/messages/").json()["messages"]
    assert [(m["body"], m["version"]) for m in listed] == [("hello", 1)]


def test_each_edit_counts_a_version(alice_client, alice_message, chat_server):
    edit(alice_client, "lobby", alice_message.pk, "one")
    response = edit(alice_client, "lobby", alice_message.pk, "two")
    assert response.json()["message"]["version"] == 2


def test_same_body_changes_nothing(
    alice_client,
    alice_message,
    chat_server,
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        response = edit(alice_client, "lobby", alice_message.pk, "helo")
    assert response.status_code == 200 and response.json()["message"]["version"] == 0
    assert posts(chat_server) == []


def test_someone_else_is_refused(client, django_user_model, alice_message):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123456")
    client.force_login(bob)
    response = edit(client, "lobby", alice_message.pk, "mine now")
    assert response.status_code == 403 and response.json()["error"] == "not_author"
    alice_message.refresh_from_db()
    assert alice_message.body == "helo"


def test_a_guest_edits_what_it_sent_and_no_other_guests(client, lobby):
    client.get("/chats/lobby/")
    uid = client.get("/api/rooms/lobby/ticket/").json()["user"]["id"]
    mine = Message.objects.create(
        room=lobby, author_uid=uid, author_name="g", author_is_guest=True, body="a", nonce="g1"
    )
    theirs = Message.objects.create(
        room=lobby,
        author_uid="g:0123456789abcdef",
        author_name="h",
        author_is_guest=True,
        body="b",
        nonce="g2",
    )
    unknown = Message.objects.create(room=lobby, author_name="old", body="c", nonce="g3")
    assert edit(client, "lobby", mine.pk, "a!").status_code == 200
    for other in (theirs, unknown):
        response = edit(client, "lobby", other.pk, "x")
        assert response.status_code == 403 and response.json()["error"] == "not_author"


def test_window_passed_but_staff_may(alice_client, alice_message, django_user_model):
    Message.objects.filter(pk=alice_message.pk).update(
        sent_at=timezone.now() - timedelta(minutes=16)
    )
    response = edit(alice_client, "lobby", alice_message.pk, "late")
    assert response.status_code == 403 and response.json()["error"] == "edit_window_passed"
    staff = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    staff_client = Client()
    staff_client.force_login(staff)
    assert edit(staff_client, "lobby", alice_message.pk, "fixed").status_code == 200


def test_window_is_a_setting(alice_client, alice_message):
    with override_settings(CHAT_EDIT_WINDOW=0):
        response = edit(alice_client, "lobby", alice_message.pk, "late")
    assert response.json()["error"] == "edit_window_passed"


def test_archived_room_refused(alice_client, alice_message, lobby):
    Room.objects.filter(pk=lobby.pk).update(is_archived=True)
    response = edit(alice_client, "lobby", alice_message.pk, "x")
    assert response.status_code == 409 and response.json()["error"] == "room_archived"


def test_unknown_room_and_gone_message(alice_client, alice_message):
    assert edit(alice_client, "nope", alice_message.pk, "x").json()["error"] == "unknown_room"
    assert edit(alice_client, "lobby", alice_message.pk + 1, "x").json()["error"] == "message_gone"
    Message.objects.filter(pk=alice_message.pk).update(is_deleted=True)
    response = edit(alice_client, "lobby", alice_message.pk, "x")
    assert response.status_code == 404 and response.json()["error"] == "message_gone"


def test_guest_in_room_that_no_longer_allows_guests(client, lobby):
    client.get("/chats/lobby/")
    uid = client.get("/api/rooms/lobby/ticket/").json()["user"]["id"]
    mine = Message.objects.create(
        room=lobby, author_uid=uid, author_name="g", author_is_guest=True, body="a", nonce="g1"
    )
    Room.objects.filter(pk=lobby.pk).update(allow_guests=False)
    response = edit(client, "lobby", mine.pk, "b")
    assert response.status_code == 403 and response.json()["error"] == "sign_in_required"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("   ", "empty_body"),
        (None, "empty_body"),
        ("x" * 4001, "body_too_long"),
        ("a\x00", "bad_body"),
    ],
)
def test_bad_bodies(alice_client, alice_message, body, code):
    response = edit(alice_client, "lobby", alice_message.pk, body)
    assert response.status_code == 400 and response.json()["error"] == code


def test_not_json(alice_client, alice_message):
    response = alice_client.post(
        f"/api/rooms/lobby/messages/{alice_message.pk}/edit/",
        "body=x",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 400 and response.json()["error"] == "bad_json"


def test_csrf_is_required(alice, alice_message):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = edit(client, "lobby", alice_message.pk, "x")
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    page = client.get("/chats/lobby/")
    token = page.cookies["csrftoken"].value
    assert edit(client, "lobby", alice_message.pk, "x", HTTP_X_CSRFTOKEN=token).status_code == 200


def test_get_is_not_allowed(alice_client, alice_message):
    response = alice_client.get(f"/api/rooms/lobby/messages/{alice_message.pk}/edit/")
    assert response.status_code == 405


def test_room_page_shows_the_edited_marker(alice_client, alice_message):
    edit(alice_client, "lobby", alice_message.pk, "hello")
    html = alice_client.get("/chats/lobby/").content.decode()
    assert 'data-version="1"' in html and "(edited)" in html and "hello" in html
