"""Management commands: createroom and ensuredemo."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.test import override_settings

from chat.models import Room


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_createroom_creates_and_is_idempotent(db):
    """createroom makes the room; a second run reports it and changes nothing."""
    out = run("createroom", "dev-talk", "--name", "Dev talk", "--description", "Code", "--guests")
    assert "Created" in out
    room = Room.objects.get(slug="dev-talk")
    assert (room.name, room.description, room.allow_guests) == ("Dev talk", "Code", True)
    out = run("createroom", "dev-talk", "--name", "Other")
    assert "already exists" in out
    assert Room.objects.get(slug="dev-talk").name == "Dev talk"


def test_createroom_defaults_to_sign_in_room(db):
    """Without --guests the room is for signed-in users; the name defaults from the slug."""
    run("createroom", "team-room")
    room = Room.objects.get(slug="team-room")
    assert room.allow_guests is False and room.name == "Team Room"


def test_createroom_refuses_bad_slug(db):
    """An invalid slug is a clear error."""
    with pytest.raises(CommandError):
        run("createroom", "not a slug")


@override_settings(CHAT_DEMO_ADMIN_PASSWORD="demo-pass-123")
def test_ensuredemo_with_configured_password(db, django_user_model):
    """ensuredemo repairs the lobby and sets the configured admin password on every run."""
    Room.objects.filter(slug="lobby").update(allow_guests=False)
    out = run("ensuredemo")
    assert "CHAT_DEMO_ADMIN_PASSWORD" in out and "demo-pass-123" in out
    assert Room.objects.get(slug="lobby").allow_guests is True
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    admin.set_password("changed")
    admin.save()
    run("ensuredemo")
    assert authenticate(username="admin", password="demo-pass-123") is not None


@override_settings(CHAT_DEMO_ADMIN_PASSWORD="")
def test_ensuredemo_generates_password_once(db):
    """Without a configured password one is generated and printed on creation only."""
    Room.objects.filter(slug="lobby").delete()
    out = run("ensuredemo")
    assert Room.objects.get(slug="lobby").allow_guests
    password = out.split("Password: ")[1].split()[0]
    assert authenticate(username="admin", password=password) is not None
    out = run("ensuredemo")
    assert "Password:" not in out
    assert authenticate(username="admin", password=password) is not None
