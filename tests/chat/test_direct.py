"""Direct conversations (chat/direct.py): one private two-person room per pair, whoever opens it
and however often, race-safe through a unique key; guests can neither open nor receive one;
nobody else sees it (lists, page, the admin's "online now")."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction

from chat import direct
from chat.membership import Membership
from chat.models import PRIVATE, Room

from . import test_admin

chat_server = test_admin.chat_server


def test_opening_twice_from_either_side_finds_one_room(alice, bob, sign_in):
    """alice opens it, again, then bob: one private room with exactly the two of them."""
    first = sign_in(alice).post(f"/chats/direct/{bob.pk}/")
    again = sign_in(alice).post(f"/chats/direct/{bob.pk}/")
    other_side = sign_in(bob).post(f"/chats/direct/{alice.pk}/")
    assert first.status_code == 302
    assert first["Location"] == again["Location"] == other_side["Location"]
    room = Room.objects.get(direct_key__isnull=False)
    assert room.visibility == PRIVATE and room.direct_key == direct.direct_key(bob.pk, alice.pk)
    assert set(Membership.objects.filter(room=room).values_list("user", flat=True)) == {
        alice.pk,
        bob.pk,
    }
    assert sign_in(bob).get(first["Location"]).status_code == 200


def test_the_race_loser_reads_the_winners_room(alice, bob):
    """Two requests that both found no room: the second create hits the unique key and answers
    the room the first one made (no second room, no error)."""
    key = direct.direct_key(alice.pk, bob.pk)
    winner = direct.create_direct(alice, bob, key)
    loser = direct.create_direct(bob, alice, key)
    assert loser.pk == winner.pk and Room.objects.filter(direct_key=key).count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Room.objects.create(slug="other", name="x", visibility=PRIVATE, direct_key=key)


def test_a_slug_taken_by_another_room_is_worked_around(alice, bob):
    """Staff made a room called dm-<a>-<b>: the conversation takes another slug."""
    key = direct.direct_key(alice.pk, bob.pk)
    Room.objects.create(slug=f"dm-{key}", name="staff room")
    room = direct.open_direct(alice, bob.pk)
    assert room.direct_key == key and room.slug.startswith(f"dm-{key}-")


def test_guests_cannot_open_or_receive_one(client, alice, sign_in):
    """A guest gets 403 opening one; a user id that is no active user (a guest has none, a
    deactivated user) or oneself is 404; no room is made."""
    assert client.post(f"/chats/direct/{alice.pk}/").status_code == 403
    alice_client = sign_in(alice)
    assert alice_client.post("/chats/direct/999999/").status_code == 404
    assert alice_client.post(f"/chats/direct/{alice.pk}/").status_code == 404
    assert not Room.objects.filter(direct_key__isnull=False).exists()


def test_nobody_else_sees_it(alice, bob, carol, django_user_model, chat_server, sign_in):
    """carol: 404 on the page and the API, not in any list; the room list shows it to alice
    under "Direct messages" with bob's name, apart from the rooms; the admin's "online now"
    says "private" to staff who are not in it."""
    room = direct.open_direct(alice, bob.pk)
    carol_client = sign_in(carol)
    assert carol_client.get(f"/chats/{room.slug}/").status_code == 404
    refused = carol_client.get(f"/api/rooms/{room.slug}/messages/")
    assert refused.status_code == 404 and refused.json()["error"] == "unknown_room"
    assert room.slug not in carol_client.get("/chats/").content.decode()
    listing = sign_in(alice).get("/chats/").content.decode()
    direct_part = listing.split("Direct messages", 1)[1]
    assert f"/chats/{room.slug}/" in direct_part and "bob" in direct_part
    assert f"/chats/{room.slug}/" not in listing.split("Direct messages", 1)[0]
    assert room.slug not in {r["slug"] for r in sign_in(alice).get("/api/rooms/").json()["rooms"]}
    chat_server.stats = {"connections": 2, "rooms": {room.slug: {"online": ["alice", "bob"]}}}
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    admin_page = sign_in(boss).get("/admin/chat/room/").content.decode()
    row = admin_page.split(f">{room.slug}<", 1)[1].split("</tr>", 1)[0]
    assert "private" in row and ">2<" not in row
