"""Fixtures for the Django tests: rooms, users, and request signing written from the protocol.

``protocol_headers`` re-implements the signature from docs/protocol.md with ``hmac`` directly
instead of calling ``chat.signing``, so the tests pin the format rather than echo the code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from chat.models import Message, Room


def protocol_signature(secret: str, ts: str, method: str, target: str, body: bytes) -> str:
    """Hex HMAC-SHA256 over ``ts\\nMETHOD\\ntarget\\nbody``, as docs/protocol.md defines it."""
    msg = ts.encode() + b"\n" + method.encode() + b"\n" + target.encode() + b"\n" + body
    return hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()


def protocol_headers(
    method: str, target: str, body: bytes = b"", secret: str | None = None, ts: int | None = None
) -> dict[str, str]:
    """Django test-client keyword arguments carrying the two signature headers."""
    ts_text = str(int(time.time()) if ts is None else ts)
    key = settings.CHAT_SHARED_SECRET if secret is None else secret
    return {
        "HTTP_X_CHAT_TIMESTAMP": ts_text,
        "HTTP_X_CHAT_SIGNATURE": protocol_signature(key, ts_text, method, target, body),
    }


class SignedClient:
    """Calls the internal API the way the chat server does: signed, without cookies."""

    def __init__(self) -> None:
        self.client = Client()

    def get(self, target: str, **extra):
        """A signed GET of ``target`` (path and query exactly as signed)."""
        return self.client.get(target, **protocol_headers("GET", target), **extra)

    def post_json(self, target: str, data: object):
        """A signed POST of ``data`` as JSON."""
        body = json.dumps(data).encode()
        return self.client.post(
            target, body, content_type="application/json", **protocol_headers("POST", target, body)
        )


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    """Every test starts with empty rate-limit counters (the cache outlives a test)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def signed() -> SignedClient:
    """A client that signs its requests with the shared secret."""
    return SignedClient()


@pytest.fixture
def lobby(db) -> Room:
    """The demo room created by the data migration (guests allowed)."""
    return Room.objects.get(slug="lobby")


@pytest.fixture
def members_room(db) -> Room:
    """A room for signed-in users only."""
    return Room.objects.create(slug="members", name="Members", description="Sign-in only")


@pytest.fixture
def archived_room(db) -> Room:
    """An archived room (which allowed guests)."""
    return Room.objects.create(slug="old", name="Old", allow_guests=True, is_archived=True)


@pytest.fixture
def alice(django_user_model):
    """An ordinary signed-up user."""
    return django_user_model.objects.create_user("alice", password="correct horse battery")


@pytest.fixture
def alice_client(client, alice) -> Client:
    """A client signed in as alice."""
    client.force_login(alice)
    return client


@pytest.fixture
def alice_message(lobby, alice) -> Message:
    """A message alice sent in the lobby just now (her own, inside the edit window)."""
    return Message.objects.create(
        room=lobby,
        author=alice,
        author_uid=f"u:{alice.pk}",
        author_name="alice",
        body="helo",
        nonce="n1",
    )


@pytest.fixture
def bob(django_user_model):
    """Another signed-up user."""
    return django_user_model.objects.create_user("bob", password="correct horse battery")


@pytest.fixture
def carol(django_user_model):
    """A third signed-up user."""
    return django_user_model.objects.create_user("carol", password="correct horse battery")


@pytest.fixture
def sign_in(db):
    """``sign_in(user)``: a new client signed in as ``user`` (several people in one test)."""

    def signed_in_client(user) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return signed_in_client
