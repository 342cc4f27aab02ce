"""Hostile names and bodies are rendered as text on the room page, the room list and the admin.

Each page is parsed with :class:`html.parser.HTMLParser`: the test fails if the hostile string
produced any element or attribute (an ``<img>``, a ``<script>``, an ``on*`` handler), and checks
that the text a person reads is exactly the string that was typed.
"""

from __future__ import annotations

import socket
from html.parser import HTMLParser

import pytest
from django.test import Client, override_settings

from chat.models import Message, Room

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "'><svg onload=alert(1)>",
]


class PageAudit(HTMLParser):
    """Collects tag names, ``on*`` attributes and the page's text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.handlers: list[str] = []
        self.attribute_values: list[str] = []
        self.image_sources: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record every element and attribute."""
        self.tags.append(tag)
        if tag == "img":
            self.image_sources.append(dict(attrs).get("src") or "")
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(name)
            self.attribute_values.append(value or "")

    def handle_data(self, data: str) -> None:
        """Record the text."""
        self.text.append(data)


def audit(html: str) -> PageAudit:
    """Parse ``html``."""
    page = PageAudit()
    page.feed(html)
    page.close()
    return page


def assert_inert(html: str, hostile: str, *, in_text: bool = True) -> PageAudit:
    """``hostile`` made no element or handler, and (when ``in_text``) reads back verbatim."""
    page = audit(html)
    assert "img" not in page.tags and "svg" not in page.tags
    assert page.handlers == []
    scripts = page.tags.count("script")
    assert scripts <= 1  # at most the client module on the room page; never one from content
    if in_text:
        assert any(hostile in text for text in page.text), hostile
    return page


@pytest.mark.parametrize("hostile", HOSTILE)
def test_guest_name_escaped_on_room_page_and_list(lobby, hostile):
    """A guest name with markup shows as text in the header, the form and the data attribute."""
    browser = Client()
    browser.get("/chats/lobby/")
    browser.post("/chats/lobby/guest-name/", {"name": hostile})
    html = browser.get("/chats/lobby/").content.decode()
    page = assert_inert(html, hostile)
    # The data attribute and the input value hold the exact name (the client reads them as text).
    assert page.attribute_values.count(hostile) == 2
    assert_inert(browser.get("/chats/").content.decode(), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_author_and_body_escaped_on_room_page(client, lobby, hostile):
    """A message's author name and body with markup render as text, with no element made."""
    Message.objects.create(room=lobby, author_name=hostile, body=hostile, nonce="x1")
    html = client.get("/chats/lobby/").content.decode()
    page = assert_inert(html, hostile)
    assert sum(text.count(hostile) for text in page.text) == 2


@pytest.mark.parametrize("hostile", HOSTILE)
def test_room_name_and_description_escaped_on_room_list(client, db, hostile):
    """A room named or described with markup is listed as text."""
    Room.objects.create(slug="evil", name=hostile, description=hostile, allow_guests=True)
    page = assert_inert(client.get("/chats/").content.decode(), hostile)
    assert sum(text.count(hostile) for text in page.text) == 2
    assert_inert(client.get("/chats/evil/").content.decode(), hostile)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_signed_in_username_escaped(lobby, django_user_model, hostile):
    """A username with markup (the auth model allows few characters, but never trust that)."""
    user = django_user_model.objects.create_user(hostile[:150], password="x" * 20)
    browser = Client()
    browser.force_login(user)
    assert_inert(browser.get("/chats/lobby/").content.decode(), hostile)
    assert_inert(browser.get("/chats/").content.decode(), hostile)


@pytest.fixture
def staff_client(client, django_user_model):
    """A superuser, with the chat server's control URL pointed at a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    user = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(user)
    with override_settings(CHAT_INTERNAL_URL=f"http://127.0.0.1:{port}", CHAT_CONTROL_TIMEOUT=0.2):
        yield client


@pytest.mark.parametrize("hostile", HOSTILE)
def test_admin_escapes_names_and_bodies(staff_client, lobby, hostile):
    """The admin lists and change forms show hostile room names, authors and bodies as text."""
    room = Room.objects.create(slug="evil", name=hostile, description=hostile, allow_guests=True)
    message = Message.objects.create(room=room, author_name=hostile, body=hostile, nonce="x1")
    for path in (
        "/admin/chat/room/",
        f"/admin/chat/room/{room.id}/change/",
        "/admin/chat/message/",
        f"/admin/chat/message/{message.id}/change/",
    ):
        response = staff_client.get(path)
        assert response.status_code == 200, path
        page = audit(response.content.decode())
        # The admin draws its own icons with <img> and <svg>; none may come from the hostile
        # text (no "src=x" image, no handler attribute anywhere).
        assert "x" not in page.image_sources, path
        assert page.handlers == [], path
        shown = "".join(page.text) + "".join(page.attribute_values)
        assert hostile in shown, path
