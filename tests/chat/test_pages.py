"""HTML pages: room list, room page contract, escaping, guest names, sign-up/in/out."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from chat.models import Message, Room


def test_home_redirects_to_rooms(client, db):
    """/ redirects to /chats/."""
    response = client.get("/")
    assert response.status_code == 302 and response["Location"] == "/chats/"


def test_room_list_page(client, lobby, archived_room, django_assert_max_num_queries):
    """The list shows open rooms and descriptions, not archived ones, in a fixed query count."""
    for i in range(5):
        Room.objects.create(slug=f"r{i}", name=f"Room {i}", allow_guests=True)
        Message.objects.create(
            room_id=Room.objects.get(slug=f"r{i}").id, author_name="a", body="x", nonce="n"
        )
    with django_assert_max_num_queries(4):
        html = client.get("/chats/").content.decode()
    assert "Lobby" in html and "Say hello" in html and "Room 4" in html
    assert 'href="/chats/old/"' not in html


def test_room_page_dom_contract(client, lobby):
    """The room page carries the ids and data attributes the browser client relies on."""
    msg = Message.objects.create(room=lobby, author_name="bob", body="line1\nline2", nonce="z1")
    response = client.get("/chats/lobby/")
    assert response.status_code == 200
    html = response.content.decode()
    main = re.search(r"<main [^>]*>", html).group(0)
    assert 'id="chat-room"' in main
    assert 'data-room="lobby"' in main
    assert 'data-ticket-url="/api/rooms/lobby/ticket/"' in main
    assert 'data-messages-url="/api/rooms/lobby/messages/"' in main
    assert 'data-guest="true"' in main and 'data-user-name="guest-' in main
    for needle in (
        # The badge is not a live region (its countdown ticks); the announcer is, per state.
        '<span id="connection-state">',
        'id="connection-announce" class="visually-hidden" role="status"',
        'id="reconnect-now"',
        'id="outbox-status" role="status" hidden',
        'id="presence" aria-label="Online now"',
        'id="message-log" role="log" aria-live="polite" aria-label="Messages"',
        'id="message-list" tabindex="0" aria-label="Messages"',
        'class="skip-link" href="#composer-input"',
        'rel="icon"',
        'id="typing-indicator"',
        'id="composer"',
        # No maxlength (it counts UTF-16 units): the client counts code points, as the server.
        'id="composer-input" name="body" rows="2" required aria-describedby="composer-limit"',
        'id="composer-limit" class="composer-limit" hidden',
        # The shared rules come from settings (CHAT_MAX_BODY) and Django's page size.
        'data-max-body="4000" data-page-size="50"',
        f'data-id="{msg.id}" data-nonce="z1"',
        f'<time datetime="{msg.sent_at_iso}">',
        # The stored rendering (a newline is a line break), with the source kept for editing.
        '<div class="body" dir="auto" data-body="line1\nline2"><p>line1<br>\nline2</p></div>',
        "chat/client/main.js",
        "chat/client/client.css",
        "chat/client/richtext.css",
        "chat/site.css",
    ):
        assert needle in html, needle
    assert re.search(r'id="guest-name-input"[^>]*maxlength="64"', html)


def test_no_inline_script_or_handlers(client, lobby):
    """No inline <script> and no on* attributes: a strict Content-Security-Policy must work."""
    html = client.get("/chats/lobby/").content.decode()
    for tag in re.findall(r"<script[^>]*>", html):
        assert "src=" in tag
    assert not re.search(r"\son[a-z]+\s*=", html)


def test_room_page_shows_latest_50_oldest_first(client, lobby):
    """The server renders the newest 50 visible messages, oldest first."""
    ids = [
        Message.objects.create(room=lobby, author_name="a", body=f"m{i}", nonce=f"n{i}").id
        for i in range(60)
    ]
    Message.objects.filter(id=ids[-1]).update(is_deleted=True)
    html = client.get("/chats/lobby/").content.decode()
    shown = [int(x) for x in re.findall(r'class="message" data-id="(\d+)"', html)]
    assert shown == ids[9:59]


def test_message_body_is_escaped(client, lobby):
    """A script in a message body is rendered as text."""
    Message.objects.create(
        room=lobby, author_name="<b>x</b>", body="<script>alert(1)</script>", nonce="x"
    )
    html = client.get("/chats/lobby/").content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html


def test_unknown_room_friendly_404(client, db):
    """An unknown slug gets the friendly 404 page."""
    response = client.get("/chats/nope/")
    assert response.status_code == 404
    assert "See all rooms" in response.content.decode()


def test_archived_room_page(client, archived_room):
    """An archived room answers 404 with a page saying it is archived."""
    response = client.get("/chats/old/")
    assert response.status_code == 404
    assert "This room is archived" in response.content.decode()


def test_sign_in_room_prompts_anonymous(client, members_room, alice):
    """A sign-in room shows a 403 page with a sign-in link back to the room; members get in."""
    response = client.get("/chats/members/")
    assert response.status_code == 403
    assert 'href="/accounts/login/?next=/chats/members/"' in response.content.decode()
    client.force_login(alice)
    response = client.get("/chats/members/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-user-name="alice"' in html and 'data-guest="false"' in html
    assert "guest-name" not in html


def test_guest_name_change(lobby):
    """A guest can rename with the CSRF-protected form; the ticket then carries the new name."""
    client = Client(enforce_csrf_checks=True)
    page = client.get("/chats/lobby/")
    token = page.cookies["csrftoken"].value
    assert client.post("/chats/lobby/guest-name/", {"name": "Zed"}).status_code == 403
    response = client.post(
        "/chats/lobby/guest-name/", {"name": "  Zed  ", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/chats/lobby/"
    assert client.get("/api/rooms/lobby/ticket/").json()["user"]["name"] == "Zed"
    assert 'data-user-name="Zed"' in client.get("/chats/lobby/").content.decode()


@pytest.mark.parametrize("name", ["", "   ", "x" * 65])
def test_guest_name_validation(client, lobby, name):
    """Empty or over-long names are refused and the old name kept."""
    client.get("/chats/lobby/")
    before = client.session["chat_guest_name"]
    response = client.post("/chats/lobby/guest-name/", {"name": name}, follow=True)
    assert response.status_code == 200
    assert client.session["chat_guest_name"] == before
    assert "flash-error" in response.content.decode()


def test_guest_name_only_by_post(client, lobby, members_room):
    """GET is not allowed; a sign-in room has no guest names."""
    assert client.get("/chats/lobby/guest-name/").status_code == 405
    assert client.post("/chats/members/guest-name/", {"name": "x"}).status_code == 404


def test_sign_up_sign_in_sign_out(client, lobby, django_user_model):
    """Sign up logs in; sign out (POST) logs out; sign in logs in and follows ?next."""
    response = client.post(
        "/accounts/signup/",
        {
            "username": "carol",
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
            "next": "/chats/lobby/",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/chats/lobby/"
    assert django_user_model.objects.filter(username="carol").exists()
    header = client.get("/chats/").content.decode()
    assert (
        'Signed in as <a href="/accounts/profile/"><bdi dir="auto"><strong>carol</strong>' in header
    )

    assert client.post("/accounts/logout/").status_code == 302
    assert "Sign in" in client.get("/chats/").content.decode()
    assert "_auth_user_id" not in client.session

    response = client.post(
        "/accounts/login/?next=/chats/lobby/",
        {"username": "carol", "password": "a-long-unusual-pass-42", "next": "/chats/lobby/"},
    )
    assert response.status_code == 302 and response["Location"] == "/chats/lobby/"
    carol = django_user_model.objects.get(username="carol")
    assert client.get("/api/rooms/lobby/ticket/").json()["user"] == {
        "id": f"u:{carol.pk}",
        "name": "carol",
        "guest": False,
    }


def test_sign_up_refuses_offsite_next(client, db):
    """An off-site ?next is ignored after sign-up."""
    response = client.post(
        "/accounts/signup/",
        {
            "username": "dave",
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
            "next": "https://evil.example/",
        },
    )
    assert response["Location"] == "/chats/"


def test_login_page_renders(client, db):
    """The sign-in and sign-up pages render their forms."""
    assert 'name="password"' in client.get("/accounts/login/").content.decode()
    assert 'name="password2"' in client.get("/accounts/signup/").content.decode()
