"""Private rooms admit their members only, on every path that reads or writes (chat/access.py):
the page, the JSON history API, tickets, search, message actions, the room lists, and the
internal batch the chat server stores messages through. Also: ``visibility`` and the older
``allow_guests`` stay in step whichever one code sets."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from chat.membership import MEMBER, OWNER, Membership
from chat.models import PRIVATE, PUBLIC, SIGNED_IN, Message, Room

from . import test_admin

# The running fake chat server of test_admin (CHAT_INTERNAL_URL points at it).
chat_server = test_admin.chat_server


@pytest.fixture
def secret(db, alice) -> Room:
    """A private room owned by alice, with one message."""
    room = Room.objects.create(slug="secret", name="Secret", visibility=PRIVATE)
    Membership.objects.create(room=room, user=alice, role=OWNER)
    Message.objects.create(
        room=room,
        author=alice,
        author_name="alice",
        author_uid=f"u:{alice.pk}",
        body="the plan",
        nonce="n-1",
    )
    return room


def as_user(client, user):
    client.force_login(user)
    return client


def test_visibility_and_allow_guests_stay_in_step(db):
    """Old code setting allow_guests and new code setting visibility agree, by save and update;
    contradicting values are refused; the database refuses a row where they disagree."""
    room = Room.objects.create(slug="a", name="A", allow_guests=True)
    assert room.visibility == PUBLIC
    room.allow_guests = False
    room.save(update_fields=["allow_guests"])
    room.refresh_from_db()
    assert (room.visibility, room.allow_guests) == (SIGNED_IN, False)
    room.visibility = PUBLIC
    room.save()
    room.refresh_from_db()
    assert room.allow_guests is True
    Room.objects.filter(pk=room.pk).update(visibility=PRIVATE)
    room.refresh_from_db()
    assert (room.visibility, room.allow_guests) == (PRIVATE, False)
    # Narrowing guests on a private room leaves it private (not opened to signed-in users).
    Room.objects.filter(pk=room.pk).update(allow_guests=False)
    room.refresh_from_db()
    assert room.visibility == PRIVATE
    Room.objects.filter(pk=room.pk).update(allow_guests=True)
    assert Room.objects.get(pk=room.pk).visibility == PUBLIC
    assert Room.objects.create(slug="b", name="B").visibility == SIGNED_IN
    with pytest.raises(ValueError):
        Room(slug="c", name="C", visibility=PRIVATE, allow_guests=True)
    with pytest.raises(ValueError):
        Room.objects.filter(pk=room.pk).update(visibility=PRIVATE, allow_guests=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        # Below the model (plain QuerySet.update): the database constraint itself.
        QuerySet.update(Room.objects.filter(pk=room.pk), allow_guests=False, visibility=PUBLIC)


def test_migration_keeps_existing_rooms_access(db):
    """Rooms from before visibility: the demo room (guests allowed) is public."""
    assert Room.objects.get(slug="lobby").visibility == PUBLIC


def test_non_member_is_refused_on_every_django_path(client, alice, bob, secret):
    """A signed-in non-member: the page is the 404 page; history, ticket, search naming the
    room, edit and reaction are 404 `unknown_room` (as for no room: test_private_existence.py
    checks every path); search everywhere finds nothing there; the room is in no list."""
    as_user(client, bob)
    message = secret.messages.get()
    page = client.get("/chats/secret/")
    assert page.status_code == 404 and b"Not found" in page.content
    for url in ("/api/rooms/secret/messages/", "/api/rooms/secret/ticket/"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"] == "unknown_room", url
    named = client.get("/api/search/", {"q": "plan", "room": "secret"})
    assert named.status_code == 404 and named.json()["error"] == "unknown_room"
    assert client.get("/api/search/", {"q": "plan"}).json()["results"] == []
    for action, data in (("edit", {"body": "mine now"}), ("react", {"emoji": "👍"})):
        response = client.post(
            f"/api/rooms/secret/messages/{message.id}/{action}/",
            json.dumps(data),
            content_type="application/json",
        )
        assert response.status_code == 404 and response.json()["error"] == "unknown_room"
    assert "secret" not in {r["slug"] for r in client.get("/api/rooms/").json()["rooms"]}
    assert b"/chats/secret/" not in client.get("/chats/").content


def test_guest_never_sees_the_room(client, secret):
    """A visitor: 404 `unknown_room` on history and ticket, the 404 page, nothing in lists or
    search (signing in would not open it: there is nothing to sign in for)."""
    for url in ("/api/rooms/secret/messages/", "/api/rooms/secret/ticket/"):
        response = client.get(url)
        assert response.status_code == 404 and response.json()["error"] == "unknown_room"
    assert client.get("/chats/secret/").status_code == 404
    assert "secret" not in {r["slug"] for r in client.get("/api/rooms/").json()["rooms"]}
    assert client.get("/api/search/", {"q": "plan"}).json()["results"] == []


def test_member_may_do_everything(client, alice, bob, secret):
    """A member (not only the owner) reads the page and history, gets a ticket, finds the
    message by search and sees the room listed with its member count and membership."""
    Membership.objects.create(room=secret, user=bob, role=MEMBER)
    as_user(client, bob)
    assert client.get("/chats/secret/").status_code == 200
    history = client.get("/api/rooms/secret/messages/").json()["messages"]
    assert [m["body"] for m in history] == ["the plan"]
    assert "ticket" in client.get("/api/rooms/secret/ticket/").json()
    assert len(client.get("/api/search/", {"q": "plan"}).json()["results"]) == 1
    listing = client.get("/chats/").content.decode()
    assert "/chats/secret/" in listing and "2 members" in listing and "you are a member" in listing


def test_internal_batch_refuses_non_members_of_private_rooms(signed, alice, bob, secret):
    """The chat server stores through the batch API: a message for a private room from a user
    who is not a member (removed a moment ago) or from a guest is refused `not_a_member`;
    a member's is stored."""

    def item(nonce, user, guest=False):
        return {
            "room": "secret",
            "nonce": nonce,
            "body": "hello",
            "name": "someone",
            "guest": guest,
            "user_id": None if guest else user.pk,
            "uid": "g:0123456789abcdef" if guest else f"u:{user.pk}",
        }

    answer = signed.post_json(
        "/internal/messages/batch/",
        {"messages": [item("a", bob), item("b", None, guest=True), item("c", alice)]},
    ).json()["results"]
    assert [r.get("error") for r in answer] == ["not_a_member", "not_a_member", None]
    assert answer[2]["ok"] is True
    assert list(secret.messages.values_list("nonce", flat=True).order_by("id")) == ["n-1", "c"]


def test_making_a_room_private_closes_every_connection(
    db, chat_server, django_capture_on_commit_callbacks
):
    """An open room becoming private refuses every older ticket of it (`access` scope all):
    members reconnect with a fresh ticket, everyone else is refused."""
    room = Room.objects.create(slug="open", name="Open")
    with django_capture_on_commit_callbacks(execute=True):
        room.visibility = PRIVATE
        room.save()
    events = [r["body"] for r in chat_server.requests if r["path"] == "/internal/rooms/open/events"]
    assert [(e["type"], e["scope"]) for e in events] == [("access", "all")]
