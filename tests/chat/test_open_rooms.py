"""Membership of open rooms (public and sign-in): the room list shows every room's member count
and the reader's membership whatever its visibility; a signed-in user joins an open room from the
list (it then follows it: unread counts from the join, even before opening it) and leaves it
(it stops following; its connections are not revoked, as the room stays open to it)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from chat.membership import MEMBER, OWNER, Membership
from chat.models import PRIVATE, PUBLIC, SIGNED_IN, Message, ReadState, Room

from . import test_admin

chat_server = test_admin.chat_server


def card(page: str, slug: str) -> str:
    """The room list's card of room ``slug`` (its HTML)."""
    found = re.search(rf'<li class="room-card" data-slug="{slug}">(.*?)</li>', page, re.S)
    assert found, slug
    return found.group(1)


@pytest.fixture
def rooms(db, alice, bob) -> dict[str, Room]:
    """One room of each visibility, owned by alice, bob a member of each."""
    made = {}
    for visibility in (PUBLIC, SIGNED_IN, PRIVATE):
        room = Room.objects.create(slug=f"r-{visibility}", name=visibility, visibility=visibility)
        Membership.objects.create(room=room, user=alice, role=OWNER)
        Membership.objects.create(room=room, user=bob, role=MEMBER)
        made[visibility] = room
    return made


def test_the_list_shows_members_and_membership_for_every_visibility(
    rooms, alice, bob, carol, sign_in
):
    """Each card says how many members the room has and what the reader is in it: "you own it",
    "you are a member"; a non-member of an open room is offered to join it."""
    for user, says in ((alice, "you own it"), (bob, "you are a member")):
        page = sign_in(user).get("/chats/").content.decode()
        for room in rooms.values():
            shown = card(page, room.slug)
            assert "2 members" in shown and says in shown, (user, room.slug)
    page = sign_in(carol).get("/chats/").content.decode()
    for visibility in (PUBLIC, SIGNED_IN):
        shown = card(page, rooms[visibility].slug)
        assert "2 members" in shown and "Join" in shown and "you are" not in shown
    assert rooms[PRIVATE].slug not in page
    # A room nobody joined says so too.
    assert "0 members" in card(page, "lobby")


def test_joining_and_leaving_an_open_room(
    rooms, alice, carol, sign_in, chat_server, signed, django_capture_on_commit_callbacks
):
    """carol joins the sign-in room from the list: a member, counted, and following it (a
    message after the join is unread for her before she ever opened the room). She leaves: no
    longer a member nor following, and nothing is revoked on the chat server (the room stays
    open to her). A private room cannot be joined (it answers as no room); a guest is sent to
    sign in."""
    room = rooms[SIGNED_IN]
    Message.objects.create(room=room, author=alice, author_name="alice", body="old", nonce="o")
    client = sign_in(carol)
    joined = client.post(f"/chats/{room.slug}/join/", {"next": "/chats/"})
    assert joined.status_code == 302 and joined["Location"] == "/chats/"
    assert Membership.objects.get(room=room, user=carol).role == MEMBER
    assert "3 members" in card(client.get("/chats/").content.decode(), room.slug)
    Message.objects.create(room=room, author=alice, author_name="alice", body="new", nonce="n")
    counts = {r["room"]: r["unread"] for r in client.get("/api/attention/").json()["rooms"]}
    assert counts == {room.slug: 1}
    # Joining twice changes nothing.
    assert client.post(f"/chats/{room.slug}/join/").status_code == 302
    assert Membership.objects.filter(room=room, user=carol).count() == 1

    client.post(
        f"/api/rooms/{room.slug}/read/", {"last_read_id": 0}, content_type="application/json"
    )
    assert ReadState.objects.filter(room=room, user=carol).exists()
    chat_server.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        left = client.post(f"/chats/{room.slug}/leave/")
    assert left.status_code == 302
    assert not Membership.objects.filter(room=room, user=carol).exists()
    assert not ReadState.objects.filter(room=room, user=carol).exists()
    assert client.get("/api/attention/").json()["rooms"] == []
    assert [r for r in chat_server.requests if r["method"] == "POST"] == []
    assert client.get(f"/api/rooms/{room.slug}/ticket/").status_code == 200

    private = client.post(f"/chats/{rooms[PRIVATE].slug}/join/")
    assert private.status_code == 404
    assert not Membership.objects.filter(room=rooms[PRIVATE], user=carol).exists()
    guest = Client().post(f"/chats/{room.slug}/join/")
    assert guest.status_code == 302 and "/accounts/login/" in guest["Location"]


def test_an_owner_renames_describes_and_narrows_a_room_from_its_page(
    rooms, alice, bob, carol, sign_in, chat_server, django_capture_on_commit_callbacks
):
    """The room page's menu links an owner (only) to the room's settings: a new name and
    description, and visibility; making the open room private refuses every older ticket of it
    on the chat server (`access` scope all, after commit), so carol, who is not a member, is cut
    off (her fresh ticket: 404 as no room) while bob, a member, gets a new one. The slug stays.
    A member who does not own the room, and a direct conversation, have no settings (404)."""
    room = rooms[SIGNED_IN]
    owner = sign_in(alice)
    url = f"/chats/{room.slug}/settings/"
    assert url in owner.get(f"/chats/{room.slug}/").content.decode()
    assert url not in sign_in(bob).get(f"/chats/{room.slug}/").content.decode()
    assert sign_in(bob).get(url).status_code == 404
    assert sign_in(bob).post(url, {"name": "Mine"}).status_code == 404
    page = owner.get(url)
    assert page.status_code == 200 and 'value="signed_in"' in page.content.decode()

    blank = owner.post(url, {"name": "  ", "description": "", "visibility": SIGNED_IN})
    assert blank.status_code == 200 and 'class="errorlist' in blank.content.decode()
    room.refresh_from_db()
    assert room.name == SIGNED_IN
    chat_server.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        saved = owner.post(
            url, {"name": "Inner circle", "description": "Plans", "visibility": PRIVATE}
        )
    assert saved.status_code == 302 and saved["Location"] == f"/chats/{room.slug}/"
    room.refresh_from_db()
    assert (room.name, room.description, room.visibility) == ("Inner circle", "Plans", PRIVATE)
    events = [r["body"] for r in chat_server.requests if r["path"].endswith("/events")]
    assert [(e["type"], e["scope"]) for e in events] == [("access", "all")]
    refused = sign_in(carol).get(f"/api/rooms/{room.slug}/ticket/")
    assert refused.status_code == 404 and refused.json()["error"] == "unknown_room"
    assert "ticket" in sign_in(bob).get(f"/api/rooms/{room.slug}/ticket/").json()
    assert "Inner circle" in owner.get("/chats/").content.decode()

    from chat import direct

    dm = direct.open_direct(alice, bob.pk)
    assert owner.get(f"/chats/{dm.slug}/settings/").status_code == 404
