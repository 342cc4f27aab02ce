"""Rules of rooms and messages: body and nonce validation, uniqueness, the protocol shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from chat.models import Message, Room, iso_utc_ms


def make(room: Room, nonce: str = "n-1", body: str = "hi") -> Message:
    return Message(room=room, author_name="alice", body=body, nonce=nonce)


def test_lobby_exists_after_migrations(lobby):
    """The data migration creates the guest-friendly demo room `lobby`."""
    assert lobby.name == "Lobby"
    assert lobby.allow_guests is True
    assert lobby.is_archived is False


@pytest.mark.parametrize("body", ["", "   ", "\n\t "])
def test_empty_body_refused(lobby, body):
    """A body that is empty after stripping fails validation."""
    with pytest.raises(ValidationError) as info:
        make(lobby, body=body).full_clean()
    assert "body" in info.value.message_dict


def test_body_length_limit(lobby):
    """4,000 characters are accepted, 4,001 refused."""
    make(lobby, body="x" * 4000).full_clean()
    with pytest.raises(ValidationError) as info:
        make(lobby, body="x" * 4001).full_clean()
    assert "body" in info.value.message_dict


@pytest.mark.parametrize("nonce", ["", "a b", "ü", "x" * 65, "a/b", "a.b"])
def test_bad_nonce_refused(lobby, nonce):
    """Nonces are 1 to 64 characters of [A-Za-z0-9_-]."""
    with pytest.raises(ValidationError) as info:
        make(lobby, nonce=nonce).full_clean()
    assert "nonce" in info.value.message_dict


@pytest.mark.parametrize("nonce", ["a", "A-z_09", "x" * 64])
def test_good_nonce_accepted(lobby, nonce):
    """Valid nonces pass."""
    make(lobby, nonce=nonce).full_clean()


def test_nonce_unique_per_room_only(lobby, members_room):
    """The same nonce twice in a room is refused by the database; another room may reuse it."""
    make(lobby).save()
    make(members_room).save()
    with pytest.raises(IntegrityError), transaction.atomic():
        make(lobby).save()
    assert Message.objects.filter(nonce="n-1").count() == 2


def test_visible_excludes_deleted(lobby):
    """visible() hides moderated messages."""
    kept = Message.objects.create(room=lobby, author_name="a", body="keep", nonce="k")
    Message.objects.create(room=lobby, author_name="a", body="gone", nonce="g", is_deleted=True)
    assert list(Message.objects.visible()) == [kept]


def test_to_dict_shape(lobby):
    """to_dict builds exactly the protocol's message shape with a millisecond UTC timestamp."""
    msg = Message.objects.create(
        room=lobby,
        author_name="bob",
        author_is_guest=True,
        body="hello <b>world</b>",
        nonce="abc",
        sent_at=datetime(2026, 11, 22, 9, 14, 3, 512999, tzinfo=UTC),
    )
    assert msg.to_dict() == {
        "id": msg.id,
        "room": "lobby",
        "user": {"id": "", "name": "bob", "guest": True},
        "body": "hello <b>world</b>",
        "html": "<p>hello &lt;b&gt;world&lt;/b&gt;</p>",
        "sent_at": "2026-11-22T09:14:03.512Z",
        "nonce": "abc",
        "edited_at": None,
        "version": 0,
        "reactions": [],
        "reactions_version": 0,
        "reply_to": None,
        "attachments": [],
    }
    msg.edited_at = datetime(2026, 11, 22, 9, 20, 0, 1000, tzinfo=UTC)
    msg.version = 2
    assert (msg.to_dict()["edited_at"], msg.to_dict()["version"]) == ("2026-11-22T09:20:00.001Z", 2)


def test_iso_utc_ms_converts_to_utc():
    """Aware times in other zones are converted to UTC before formatting."""
    from datetime import timedelta, timezone

    moment = datetime(2026, 1, 1, 1, 0, 0, 5000, tzinfo=timezone(timedelta(hours=2)))
    text = iso_utc_ms(moment)
    assert text == "2025-12-31T23:00:00.005Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
