"""The public JSON API: room list, history paging, tickets; guest, sign-in and archived rooms."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.test import override_settings

from chat.models import Message, Room
from chat.tickets import verify_ticket


def fill(room: Room, n: int) -> list[int]:
    return [
        Message.objects.create(room=room, author_name="a", body=f"m{i}", nonce=f"p{i}").id
        for i in range(n)
    ]


def test_room_list_hides_archived(client, lobby, members_room, archived_room):
    """/api/rooms/ lists open rooms with last activity of visible messages only."""
    fill(lobby, 1)
    rooms = {r["slug"]: r for r in client.get("/api/rooms/").json()["rooms"]}
    assert set(rooms) == {"lobby", "members"}
    assert rooms["lobby"]["last_activity"] == Message.objects.get().sent_at_iso
    assert rooms["members"] == {
        "slug": "members",
        "name": "Members",
        "description": "Sign-in only",
        "allow_guests": False,
        "visibility": "signed_in",
        "last_activity": None,
    }


def test_history_default_newest_page(client, lobby):
    """Without parameters: the newest 50 in id order, has_more when older ones exist."""
    ids = fill(lobby, 55)
    data = client.get("/api/rooms/lobby/messages/").json()
    assert [m["id"] for m in data["messages"]] == ids[5:]
    assert data["has_more"] is True


def test_history_before_and_after(client, lobby):
    """before pages backwards, after pages forwards; has_more follows the direction asked."""
    ids = fill(lobby, 10)
    data = client.get(f"/api/rooms/lobby/messages/?before={ids[5]}&limit=3").json()
    assert [m["id"] for m in data["messages"]] == ids[2:5] and data["has_more"] is True
    data = client.get(f"/api/rooms/lobby/messages/?before={ids[2]}&limit=3").json()
    assert [m["id"] for m in data["messages"]] == ids[0:2] and data["has_more"] is False
    data = client.get(f"/api/rooms/lobby/messages/?after={ids[5]}&limit=3").json()
    assert [m["id"] for m in data["messages"]] == ids[6:9] and data["has_more"] is True
    data = client.get(f"/api/rooms/lobby/messages/?after={ids[6]}&limit=3").json()
    assert [m["id"] for m in data["messages"]] == ids[7:10] and data["has_more"] is False


def test_history_limit_is_capped_and_deleted_hidden(client, lobby):
    """limit is at most 100; deleted messages are never listed."""
    ids = fill(lobby, 105)
    Message.objects.filter(id=ids[-1]).update(is_deleted=True)
    data = client.get("/api/rooms/lobby/messages/?limit=500").json()
    assert len(data["messages"]) == 100
    assert ids[-1] not in [m["id"] for m in data["messages"]]


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=-1", "limit=x", "before=abc", "after=1.5", "before=1&after=2"]
)
def test_history_bad_parameters(client, lobby, query):
    """Bad parameters answer 400 with an error body."""
    response = client.get(f"/api/rooms/lobby/messages/?{query}")
    assert response.status_code == 400
    assert response.json()["error"] == "bad_parameter"


def test_sign_in_room_refuses_anonymous(client, members_room, alice):
    """A sign-in room: 403 sign_in_required for visitors (history, ticket); 200 signed in."""
    for url in ("/api/rooms/members/messages/", "/api/rooms/members/ticket/"):
        response = client.get(url)
        assert response.status_code == 403
        assert response.json()["error"] == "sign_in_required"
    client.force_login(alice)
    assert client.get("/api/rooms/members/messages/").status_code == 200
    assert client.get("/api/rooms/members/ticket/").status_code == 200


def test_unknown_and_archived_rooms_are_404(client, archived_room):
    """Unknown and archived rooms answer 404 for history and tickets."""
    for slug in ("nope", "old"):
        assert client.get(f"/api/rooms/{slug}/messages/").status_code == 404
        assert client.get(f"/api/rooms/{slug}/ticket/").status_code == 404


@override_settings(CHAT_PUBLIC_URL="https://chat.example.org", CHAT_TICKET_TTL=30)
def test_ticket_for_user(alice_client, alice, lobby):
    """A signed-in user's ticket: uid u:<id>, ready-to-open wss/https URLs, no-store."""
    response = alice_client.get("/api/rooms/lobby/ticket/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    data = response.json()
    payload = verify_ticket(data["ticket"], "lobby", [settings.CHAT_SHARED_SECRET])
    assert payload["sub"] == f"u:{alice.id}" and payload["user_id"] == alice.id
    assert payload["aud"] == "room:lobby"
    assert payload["exp"] - payload["iat"] == 30
    assert data["user"] == {"id": f"u:{alice.pk}", "name": "alice", "guest": False}
    assert data["expires_in"] == 30
    ws = urlsplit(data["ws_url"])
    assert (ws.scheme, ws.netloc, ws.path) == ("wss", "chat.example.org", "/ws/lobby")
    assert parse_qs(ws.query) == {"ticket": [data["ticket"]]}
    poll = urlsplit(data["poll_url"])
    assert (poll.scheme, poll.path) == ("https", "/poll/lobby")
    assert parse_qs(poll.query) == {"ticket": [data["ticket"]]}


@override_settings(CHAT_PUBLIC_URL="http://127.0.0.1:9000")
def test_ticket_for_guest_is_stable(client, lobby):
    """A guest's ticket carries g:<16 hex> from the session, the same on every call."""
    first = client.get("/api/rooms/lobby/ticket/").json()
    second = client.get("/api/rooms/lobby/ticket/").json()
    assert first["ws_url"].startswith("ws://127.0.0.1:9000/ws/lobby?ticket=")
    p1 = verify_ticket(first["ticket"], "lobby", [settings.CHAT_SHARED_SECRET])
    p2 = verify_ticket(second["ticket"], "lobby", [settings.CHAT_SHARED_SECRET])
    assert p1["guest"] is True and p1["user_id"] is None
    assert p1["sub"] == p2["sub"]
    assert p1["sub"].startswith("g:") and len(p1["sub"]) == 18
    int(p1["sub"][2:], 16)
    assert first["user"] == {"id": p1["sub"], "name": p1["name"], "guest": True}
    assert p1["name"].startswith("guest-")


def test_two_visitors_get_different_guest_ids(client, lobby):
    """Different sessions are different guests."""
    from django.test import Client

    a = client.get("/api/rooms/lobby/ticket/").json()["ticket"]
    b = Client().get("/api/rooms/lobby/ticket/").json()["ticket"]
    secrets = [settings.CHAT_SHARED_SECRET]
    assert verify_ticket(a, "lobby", secrets)["sub"] != verify_ticket(b, "lobby", secrets)["sub"]
