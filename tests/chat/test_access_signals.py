"""Every path that changes who may be connected makes exactly one signed control call, after
commit (docs/protocol.md, "Control API"). A real HTTP server on a free port (the one of
test_admin.py) records and checks the calls; nothing of Django is mocked.
"""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction

from chat import actions
from chat.models import Room

from . import test_admin
from .test_admin import FakeChatServer

# The running fake chat server of test_admin (CHAT_INTERNAL_URL points at it).
chat_server = test_admin.chat_server


@pytest.fixture
def staff(client, django_user_model):
    """A client signed in as a superuser (its own sign-in makes no control call)."""
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(boss)
    return client


def posts(server: FakeChatServer) -> list[str]:
    """Paths of the control calls made (stats reads excluded); a room event as
    `<path> <event type>`."""
    return [
        r["path"] + (f" {r['body']['type']}" if r["path"].endswith("/events") else "")
        for r in server.requests
        if r["method"] == "POST"
    ]


def assert_signed_recent(server: FakeChatServer, started_ms: int) -> None:
    """Every call is signed and fresh; a cut-off, when present, is taken after the change."""
    for request in server.requests:
        assert request["signature_ok"] and request["fresh"]
        before_ms = (request["body"] or {}).get("before_ms")
        if before_ms is not None:
            assert started_ms <= before_ms <= time.time_ns() // 1_000_000


def test_sign_out_revokes_the_user(client, alice, chat_server, django_capture_on_commit_callbacks):
    """Signing out: POST /internal/users/u:<id>/revoked with a cut-off, once, after commit."""
    client.force_login(alice)
    started = time.time_ns() // 1_000_000
    with django_capture_on_commit_callbacks(execute=False) as pending:
        assert client.post("/accounts/logout/").status_code == 302
    assert posts(chat_server) == []  # nothing before commit
    for callback in pending:
        callback()
    assert posts(chat_server) == [f"/internal/users/u:{alice.pk}/revoked"]
    assert_signed_recent(chat_server, started)


def test_deactivating_revokes_once(alice, chat_server, django_capture_on_commit_callbacks):
    """is_active true -> false revokes; saving the inactive user again does not call again."""
    started = time.time_ns() // 1_000_000
    with django_capture_on_commit_callbacks(execute=True):
        alice.is_active = False
        alice.save()
        alice.first_name = "Al"
        alice.save()
        get_user_model().objects.get(pk=alice.pk).save(update_fields=["last_login"])
    assert posts(chat_server) == [f"/internal/users/u:{alice.pk}/revoked"]
    assert_signed_recent(chat_server, started)


def test_deleting_a_user_revokes(alice, chat_server, django_capture_on_commit_callbacks):
    """Deleting a user (admin, shell) revokes its uid."""
    pk = alice.pk
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()
    assert posts(chat_server) == [f"/internal/users/u:{pk}/revoked"]


def test_admin_deactivation_and_delete_button(
    staff, alice, chat_server, django_capture_on_commit_callbacks
):
    """The admin's user change form (unticking Active) and its Delete button each revoke."""
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            f"/admin/auth/user/{alice.pk}/change/",
            {
                "username": "alice",
                "is_active": "",
                "date_joined_0": "2026-01-01",
                "date_joined_1": "00:00:00",
            },
        )
    assert response.status_code == 302, response.content[:500]
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/auth/user/{alice.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert posts(chat_server) == [f"/internal/users/u:{alice.pk}/revoked"] * 2


def test_room_stops_allowing_guests(lobby, chat_server, django_capture_on_commit_callbacks):
    """allow_guests true -> false: an `access` room event with scope guests; widening calls
    nothing."""
    started = time.time_ns() // 1_000_000
    with django_capture_on_commit_callbacks(execute=True):
        lobby.allow_guests = False
        lobby.save()
        lobby.allow_guests = True
        lobby.save()
    assert posts(chat_server) == ["/internal/rooms/lobby/events access"]
    assert chat_server.requests[0]["body"]["scope"] == "guests"
    assert_signed_recent(chat_server, started)


def test_archive_and_unarchive_on_the_change_form(
    staff, lobby, chat_server, django_capture_on_commit_callbacks
):
    """Ticking and unticking Archived in the admin: `archived`, then `unarchived` events."""
    form = {
        "name": "Lobby",
        "slug": "lobby",
        "description": "",
        "visibility": "public",
        # The members inline's management form (no member rows).
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/admin/chat/room/{lobby.pk}/change/", form | {"is_archived": "on"})
    with django_capture_on_commit_callbacks(execute=True):
        staff.post(f"/admin/chat/room/{lobby.pk}/change/", form)
    assert posts(chat_server) == [
        "/internal/rooms/lobby/events archived",
        "/internal/rooms/lobby/events unarchived",
    ]


def test_admin_delete_button(staff, lobby, chat_server, django_capture_on_commit_callbacks):
    """The admin's stock Delete button: a `room_deleted` event with a cut-off."""
    started = time.time_ns() // 1_000_000
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"/admin/chat/room/{lobby.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302 and not Room.objects.filter(slug="lobby").exists()
    assert posts(chat_server) == ["/internal/rooms/lobby/events room_deleted"]
    assert_signed_recent(chat_server, started)


def test_admin_bulk_delete_action(staff, lobby, chat_server, django_capture_on_commit_callbacks):
    """The admin's "Delete selected rooms" action: one call per room."""
    other = Room.objects.create(slug="other", name="Other")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            "/admin/chat/room/",
            {"action": "delete_selected", "_selected_action": [lobby.pk, other.pk], "post": "yes"},
        )
    assert response.status_code == 302 and Room.objects.count() == 0
    assert sorted(posts(chat_server)) == [
        "/internal/rooms/lobby/events room_deleted",
        "/internal/rooms/other/events room_deleted",
    ]


def test_queryset_delete_in_the_shell(lobby, chat_server, django_capture_on_commit_callbacks):
    """``Room.objects.filter(...).delete()`` (the shell, a management command) is covered."""
    with django_capture_on_commit_callbacks(execute=True):
        Room.objects.filter(slug="lobby").delete()
    assert posts(chat_server) == ["/internal/rooms/lobby/events room_deleted"]


def test_queryset_update_in_the_shell(lobby, chat_server, django_capture_on_commit_callbacks):
    """``QuerySet.update()`` sends no model signals; rooms still report what it changed."""
    Room.objects.create(slug="second", name="Second", allow_guests=True)
    with django_capture_on_commit_callbacks(execute=True):
        Room.objects.filter(slug__in=["lobby", "second"]).update(is_archived=True)
        Room.objects.filter(slug="lobby").update(is_archived=False, allow_guests=False)
        Room.objects.filter(slug="lobby").update(description="no access change")
    assert posts(chat_server) == [
        "/internal/rooms/lobby/events archived",
        "/internal/rooms/second/events archived",
        "/internal/rooms/lobby/events unarchived",
        "/internal/rooms/lobby/events access",
    ]


def test_ticket_api_tells_archived_from_unknown(client, archived_room):
    """The browser stops with "archived" or "deleted" by the ticket API's 404 code."""
    assert client.get("/api/rooms/old/ticket/").json()["error"] == "room_archived"
    assert client.get("/api/rooms/nope/ticket/").json()["error"] == "unknown_room"


def test_slug_change_closes_the_old_address(lobby, chat_server, django_capture_on_commit_callbacks):
    """Renaming a room's slug: the chat server closes and forgets the old slug."""
    with django_capture_on_commit_callbacks(execute=True):
        lobby.slug = "hall"
        lobby.save()
    assert posts(chat_server) == ["/internal/rooms/lobby/events room_deleted"]


def test_a_rolled_back_change_calls_nothing(db, chat_server, django_capture_on_commit_callbacks):
    """A change that is rolled back never reaches the chat server; a committed one does."""
    Room.objects.create(slug="rb", name="Rollback", allow_guests=True)
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            Room.objects.filter(slug="rb").delete()
            raise RuntimeError("abort")
    assert posts(chat_server) == [] and Room.objects.filter(slug="rb").exists()
    with django_capture_on_commit_callbacks(execute=True):
        Room.objects.filter(slug="rb").delete()
    assert posts(chat_server) == ["/internal/rooms/rb/events room_deleted"]


def test_one_unanswered_call_skips_the_rest_of_its_transaction(
    lobby, no_chat_server, django_capture_on_commit_callbacks, caplog
):
    """With the chat server down, a bulk change waits for one failure, not one per row."""
    for n in range(5):
        Room.objects.create(slug=f"bulk-{n}", name=f"Bulk {n}")
    with django_capture_on_commit_callbacks(execute=True):
        Room.objects.filter(slug__startswith="bulk-").delete()
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 4


def test_actions_refuse_an_unknown_scope(lobby):
    """A programming error in a caller is loud, not a silent no-op."""
    with pytest.raises(ValueError):
        actions.room_access_changed("lobby", "nobody")


no_chat_server = test_admin.no_chat_server
