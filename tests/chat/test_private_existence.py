"""A private room does not exist for anyone outside it: on every path that takes a room slug,
a non-member (signed in, staff or guest) gets exactly the answer an unknown slug gets, so nobody
can probe which private room names exist (chat.access.known_room; docs/security.md).

The URLs come from chat/urls.py itself: a new URL taking a slug is checked without anyone
remembering to add it here (a new kind of URL argument makes the test fail until it is given a
value below).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, reverse
from django.utils import timezone

from chat import urls as chat_urls
from chat.membership import OWNER, Invite, Membership
from chat.models import PRIVATE, Message, Room

from . import test_admin

# The running fake chat server of test_admin (CHAT_INTERNAL_URL points at it).
chat_server = test_admin.chat_server

UNKNOWN = "no-such-room"
# Paths that name a room in their query instead of their path.
QUERY_PATHS = [("chat:api_search", {"q": "plan"}), ("chat:search", {"q": "plan"})]
# Bodies sent with each POST: one JSON (the API), one form (the pages).
JSON_BODY = {"body": "mine now", "emoji": "👍", "last_read_id": 1, "muted": True}
FORM_BODY = {"name": "Probe", "username": "alice", "lifetime": "3600", "single_use": "on"}


def slug_patterns() -> list[tuple[str, list[str]]]:
    """(name, argument names) of every named URL of chat/urls.py taking a ``slug``, walked from
    its URL groups (``urlpatterns``, and the groups a project lays out itself)."""
    found: dict[str, list[str]] = {}

    def walk(patterns):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns)
            elif isinstance(entry, URLPattern) and "slug" in entry.pattern.converters:
                found[entry.name] = list(entry.pattern.converters)

    for group in (chat_urls.urlpatterns, chat_urls.accounts, chat_urls.search):
        walk(group)
    return sorted(found.items())


@pytest.fixture
def hidden(db, alice, bob) -> Room:
    """alice's private room with a message and a pending invitation (archived when the test's
    parameter says so: an archived room must not answer "archived" to outsiders either)."""
    room = Room.objects.create(slug="hideout", name="Hideout", visibility=PRIVATE)
    Membership.objects.create(room=room, user=alice, role=OWNER)
    Message.objects.create(
        room=room,
        author=alice,
        author_uid=f"u:{alice.pk}",
        author_name="alice",
        body="the plan",
        nonce="n-1",
    )
    Invite.objects.create(
        room=room, created_by=alice, invitee=bob, expires_at=timezone.now() + timedelta(days=1)
    )
    return room


def arguments(room: Room, alice) -> dict[str, object]:
    """A real value for each URL argument: the private room's message, owner and invitation
    (the unknown slug is asked with the same ids)."""
    invite = Invite.objects.filter(room=room).first()
    return {
        "message_id": room.messages.get().pk,
        "user_id": alice.pk,
        "invite_id": invite.pk if invite else 1,
    }


def answer(response, slug: str) -> tuple:
    """What an asker learns from a response: status, error code or body, and where it sends
    them, with the slug asked for taken out (so two slugs compare)."""
    body = response.content.decode(errors="replace").replace(slug, "<slug>")
    # Per-response values (the masked CSRF token, a CSP nonce) differ between any two pages.
    body = re.sub(r'(csrfmiddlewaretoken" value|nonce)="[^"]*"', r'\1=""', body)
    if response.get("Content-Type", "").startswith("application/json"):
        body = json.loads(body).get("error")
    return (response.status_code, body, response.get("Location", "").replace(slug, "<slug>"))


def asks(client: Client, path: str, query: dict | None = None) -> list:
    """The same path asked as GET, JSON POST and form POST."""
    return [
        client.get(path, query or {}),
        client.post(path, json.dumps(JSON_BODY), content_type="application/json"),
        client.post(path, FORM_BODY),
    ]


@pytest.mark.parametrize("archived", [False, True], ids=["open", "archived"])
@pytest.mark.parametrize("who", ["outsider", "staff", "removed", "guest"])
def test_a_private_room_answers_outsiders_as_an_unknown_room(
    hidden, alice, chat_server, django_user_model, who, archived
):
    """Every slug-taking URL of chat/urls.py (GET, JSON POST, form POST) and every room filter
    in a query: a signed-in non-member, a staff non-member, a removed member and a guest get
    the same status, error code or page and redirect as for a slug that names no room."""
    if archived:
        Room.objects.filter(pk=hidden.pk).update(is_archived=True)
    client = Client()
    if who != "guest":
        user = django_user_model.objects.create_user(
            who, password="pw-0123456789", is_staff=who == "staff"
        )
        if who == "removed":
            Membership.objects.create(room=hidden, user=user).delete()
        client.force_login(user)
    values = arguments(hidden, alice)
    patterns = slug_patterns()
    assert {"room", "api_messages", "api_ticket", "api_read", "api_edit_message"} <= {
        name for name, _ in patterns
    }
    checked = 0
    for name, params in patterns:
        missing = set(params) - {"slug"} - set(values)
        assert not missing, f"give test values for {missing} (URL {name})"
        kwargs = {p: values[p] for p in params if p != "slug"}
        seen = [
            [
                answer(r, slug)
                for r in asks(client, reverse(f"chat:{name}", kwargs={**kwargs, "slug": slug}))
            ]
            for slug in (hidden.slug, UNKNOWN)
        ]
        assert seen[0] == seen[1], name
        checked += 1
    for name, query in QUERY_PATHS:
        seen = [
            [answer(r, slug) for r in asks(client, reverse(name), {**query, "room": slug})]
            for slug in (hidden.slug, UNKNOWN)
        ]
        assert seen[0] == seen[1], name
    assert checked >= 15
