"""Deleting your own message through the public JSON API: who may, what is refused, and the
same `deleted` event staff moderation sends (a real HTTP server records it)."""

from __future__ import annotations

from django.test import Client

from chat.models import Message, Room

from . import test_admin

# The recording fake chat server of the admin tests (a real HTTP server on a free port).
chat_server = test_admin.chat_server


def delete(client: Client, slug: str, message_id: int, **extra):
    return client.post(f"/api/rooms/{slug}/messages/{message_id}/delete/", **extra)


def test_author_deletes_and_chat_server_gets_the_moderation_event(
    alice_client, alice, alice_message, chat_server, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = delete(alice_client, "lobby", alice_message.pk)
    assert response.status_code == 200 and response.json() == {"deleted": alice_message.pk}
    alice_message.refresh_from_db()
    assert alice_message.is_deleted and alice_message.deleted_by == alice
    [call] = [r for r in chat_server.requests if r["method"] == "POST"]
    assert call["path"] == "/internal/rooms/lobby/events" and call["signature_ok"]
    assert call["body"] == {"type": "deleted", "id": alice_message.pk}
    # Reload agrees with live: the message is gone from the page and from history.
    assert alice_client.get("/api/rooms/lobby/messages/").json()["messages"] == []
    assert alice_message.body not in alice_client.get("/chats/lobby/").content.decode()


def test_deleting_twice_says_gone(alice_client, alice_message):
    assert delete(alice_client, "lobby", alice_message.pk).status_code == 200
    response = delete(alice_client, "lobby", alice_message.pk)
    assert response.status_code == 404 and response.json()["error"] == "message_gone"


def test_someone_else_is_refused_but_staff_may(client, django_user_model, alice_message):
    bob = django_user_model.objects.create_user("bob", password="pw-bob-123456")
    client.force_login(bob)
    response = delete(client, "lobby", alice_message.pk)
    assert response.status_code == 403 and response.json()["error"] == "not_author"
    staff = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(staff)
    assert delete(client, "lobby", alice_message.pk).status_code == 200


def test_a_guest_deletes_what_it_sent_only(client, lobby):
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
    assert delete(client, "lobby", theirs.pk).json()["error"] == "not_author"
    assert delete(client, "lobby", mine.pk).status_code == 200


def test_archived_room_and_guests_no_longer_allowed(client, lobby):
    client.get("/chats/lobby/")
    uid = client.get("/api/rooms/lobby/ticket/").json()["user"]["id"]
    mine = Message.objects.create(
        room=lobby, author_uid=uid, author_name="g", author_is_guest=True, body="a", nonce="g1"
    )
    Room.objects.filter(pk=lobby.pk).update(allow_guests=False)
    response = delete(client, "lobby", mine.pk)
    assert response.status_code == 403 and response.json()["error"] == "sign_in_required"
    Room.objects.filter(pk=lobby.pk).update(allow_guests=True, is_archived=True)
    response = delete(client, "lobby", mine.pk)
    assert response.status_code == 409 and response.json()["error"] == "room_archived"
    assert not Message.objects.get(pk=mine.pk).is_deleted


def test_csrf_is_required_and_get_is_not_allowed(alice, alice_message):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = delete(client, "lobby", alice_message.pk)
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
    assert client.get(f"/api/rooms/lobby/messages/{alice_message.pk}/delete/").status_code == 405
    token = client.get("/chats/lobby/").cookies["csrftoken"].value
    assert delete(client, "lobby", alice_message.pk, HTTP_X_CSRFTOKEN=token).status_code == 200
