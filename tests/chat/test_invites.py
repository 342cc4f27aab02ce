"""Creating rooms and inviting people (chat/room_views.py, chat/invites.py): owners invite by
username or by link; a link admits as documented (expiry, single use, withdrawn); removing a
member or leaving tells the chat server at once; the forms are CSRF-protected POSTs and the
creation and invitation of rooms are rate-limited per user."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from chat.membership import MEMBER, OWNER, Invite, Membership
from chat.models import PRIVATE, Room

from . import test_admin

# The running fake chat server of test_admin (CHAT_INTERNAL_URL points at it).
chat_server = test_admin.chat_server


@pytest.fixture
def secret(alice, sign_in) -> Room:
    """A private room made by alice through the page: she owns it."""
    response = sign_in(alice).post(
        "/chats/new/", {"name": "Secret plans", "description": "", "visibility": PRIVATE}
    )
    assert response.status_code == 302 and response["Location"] == "/chats/secret-plans/"
    return Room.objects.get(slug="secret-plans")


def make_link(client, room, single_use=True, lifetime=86400) -> str:
    """The members page's link form, posted with an owner's ``client``; returns the link's
    path, read from the page (shown once)."""
    data = {"lifetime": str(lifetime)}
    if single_use:
        data["single_use"] = "on"
    assert client.post(f"/chats/{room.slug}/members/link/", data).status_code == 302
    page = client.get(f"/chats/{room.slug}/members/").content.decode()
    path = re.search(r'value="http://testserver(/chats/invite/[^"]+)"', page).group(1)
    # Shown once: the next view of the page no longer has it.
    assert "/chats/invite/" not in client.get(f"/chats/{room.slug}/members/").content.decode()
    return path


def test_creating_a_room_makes_its_owner(secret, alice, sign_in):
    """A signed-in user creates a room from the room list: its owner; a guest is sent to sign
    in; the slug never takes a reserved word."""
    assert secret.visibility == PRIVATE
    assert Membership.objects.get(room=secret).user == alice
    assert Membership.objects.get(room=secret).role == OWNER
    assert Client().get("/chats/new/").status_code == 302  # to sign in
    sign_in(alice).post("/chats/new/", {"name": "New", "visibility": "public"})
    assert Room.objects.filter(slug="room-new", visibility="public").exists()
    sign_in(alice).post("/chats/new/", {"name": "Secret plans", "visibility": "signed_in"})
    assert Room.objects.filter(slug="secret-plans-2").exists()


def test_a_single_use_link_admits_one_person(secret, alice, bob, carol, sign_in):
    """A single-use link: the first person who accepts joins; the next gets 410 "used"; only
    the token's SHA-256 is stored."""
    path = make_link(sign_in(alice), secret)
    token = path.rstrip("/").rsplit("/", 1)[1]
    assert Invite.objects.get().token_hash == hashlib.sha256(token.encode()).hexdigest()
    bob_client = sign_in(bob)
    assert b"Join Secret plans" in bob_client.get(path).content
    joined = bob_client.post(path)
    assert joined.status_code == 302 and joined["Location"] == "/chats/secret-plans/"
    assert Membership.objects.get(room=secret, user=bob).role == MEMBER
    refused = sign_in(carol).post(path)
    assert refused.status_code == 410 and b"has been used" in refused.content
    assert not Membership.objects.filter(room=secret, user=carol).exists()


def test_a_multi_use_link_admits_several_until_it_expires(
    secret, alice, bob, carol, django_user_model, sign_in
):
    """A link for several people admits each; after its expiry nobody."""
    path = make_link(sign_in(alice), secret, single_use=False)
    assert sign_in(bob).post(path).status_code == 302
    assert sign_in(carol).post(path).status_code == 302
    Invite.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    dave = django_user_model.objects.create_user("dave", password="correct horse battery")
    refused = sign_in(dave).post(path)
    assert refused.status_code == 410 and b"expired" in refused.content
    assert sign_in(dave).get(path).status_code == 410
    assert Membership.objects.filter(room=secret).count() == 3


def test_a_withdrawn_link_admits_nobody(secret, alice, bob, sign_in):
    """The owner withdraws a link: it admits nobody from then on; an unknown token is 404."""
    path = make_link(sign_in(alice), secret)
    invite = Invite.objects.get()
    assert (
        sign_in(alice).post(f"/chats/{secret.slug}/invites/{invite.pk}/revoke/").status_code == 302
    )
    refused = sign_in(bob).post(path)
    assert refused.status_code == 410 and b"withdrawn" in refused.content
    assert sign_in(bob).get("/chats/invite/not-a-token/").status_code == 404
    assert not Membership.objects.filter(room=secret, user=bob).exists()


def test_a_guest_with_a_link_is_asked_to_sign_in(secret, alice, sign_in):
    """A visitor opening a link sees a sign-in link back to it; posting does not join."""
    path = make_link(sign_in(alice), secret)
    guest = Client()
    assert b"Sign in" in guest.get(path).content
    guest.post(path)
    assert Invite.objects.get().uses == 0


def test_an_invitation_by_username_is_for_that_user_only(secret, alice, bob, carol, sign_in):
    """Invited by username: the invitee sees it on the room list and accepts; nobody else can
    use it; a second invitation while one is pending is refused; declining withdraws it."""
    owner = sign_in(alice)
    owner.post(f"/chats/{secret.slug}/members/invite/", {"username": "bob"})
    owner.post(f"/chats/{secret.slug}/members/invite/", {"username": "carol"})
    invite = Invite.objects.get(invitee=bob)
    assert Invite.objects.filter(invitee=bob).count() == 1
    owner.post(f"/chats/{secret.slug}/members/invite/", {"username": "bob"})
    assert Invite.objects.filter(invitee=bob).count() == 1
    # carol cannot take bob's invitation.
    sign_in(carol).post(f"/chats/invites/{invite.pk}/accept/")
    assert not Membership.objects.filter(room=secret, user=carol).exists()
    assert "Secret plans" in sign_in(bob).get("/chats/").content.decode()
    accepted = sign_in(bob).post(f"/chats/invites/{invite.pk}/accept/")
    assert accepted["Location"] == "/chats/secret-plans/"
    assert Membership.objects.filter(room=secret, user=bob).exists()
    carol_invite = Invite.objects.get(invitee=carol)
    sign_in(carol).post(f"/chats/invites/{carol_invite.pk}/decline/")
    sign_in(carol).post(f"/chats/invites/{carol_invite.pk}/accept/")
    assert not Membership.objects.filter(room=secret, user=carol).exists()


def test_only_owners_invite_and_remove(secret, alice, bob, carol, sign_in):
    """A member who does not own the room gets 404 for every owner action."""
    Membership.objects.create(room=secret, user=bob, role=MEMBER)
    Membership.objects.create(room=secret, user=carol, role=MEMBER)
    member = sign_in(bob)
    for url, data in (
        (f"/chats/{secret.slug}/members/invite/", {"username": "carol"}),
        (f"/chats/{secret.slug}/members/link/", {"lifetime": "3600"}),
        (f"/chats/{secret.slug}/members/{carol.pk}/remove/", {}),
        (f"/chats/{secret.slug}/members/{bob.pk}/owner/", {}),
    ):
        assert member.post(url, data).status_code == 404, url
    assert Invite.objects.count() == 0 and Membership.objects.filter(room=secret).count() == 3


def test_forms_need_csrf_and_post(secret, alice, bob, sign_in):
    """Every state change is a POST with Django's CSRF token: without one 403, GET 405."""
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    for url in (
        "/chats/new/",
        f"/chats/{secret.slug}/members/invite/",
        f"/chats/{secret.slug}/members/link/",
        f"/chats/{secret.slug}/leave/",
        f"/chats/direct/{bob.pk}/",
    ):
        assert strict.post(url, {"username": "bob", "name": "x"}).status_code == 403, url
    for url in (
        f"/chats/{secret.slug}/members/invite/",
        f"/chats/{secret.slug}/leave/",
        f"/chats/direct/{bob.pk}/",
        f"/chats/{secret.slug}/members/{bob.pk}/remove/",
    ):
        assert sign_in(alice).get(url).status_code == 405, url


def test_removing_a_member_tells_the_chat_server_after_commit(
    secret, alice, bob, chat_server, django_capture_on_commit_callbacks, sign_in
):
    """Removal: one signed `access` event with scope member and the member's uid, after
    commit; the removed member's next ticket is refused 404 `unknown_room` (the room no longer
    exists for them)."""
    Membership.objects.create(room=secret, user=bob, role=MEMBER)
    with django_capture_on_commit_callbacks(execute=False) as pending:
        response = sign_in(alice).post(f"/chats/{secret.slug}/members/{bob.pk}/remove/")
    assert response.status_code == 302
    assert [r for r in chat_server.requests if r["method"] == "POST"] == []
    for callback in pending:
        callback()
    [call] = [r for r in chat_server.requests if r["method"] == "POST"]
    assert call["path"] == "/internal/rooms/secret-plans/events" and call["signature_ok"]
    assert {k: call["body"][k] for k in ("type", "scope", "uid")} == {
        "type": "access",
        "scope": "member",
        "uid": f"u:{bob.pk}",
    }
    refused = sign_in(bob).get("/api/rooms/secret-plans/ticket/")
    assert refused.status_code == 404 and refused.json()["error"] == "unknown_room"


def test_leaving_and_the_last_owner(
    secret, alice, bob, chat_server, django_capture_on_commit_callbacks, sign_in
):
    """A member leaves (the same event as a removal); the last owner cannot leave while others
    remain, and may once another member is made an owner."""
    Membership.objects.create(room=secret, user=bob, role=MEMBER)
    owner = sign_in(alice)
    owner.post(f"/chats/{secret.slug}/leave/")
    assert Membership.objects.filter(room=secret, user=alice).exists()
    owner.post(f"/chats/{secret.slug}/members/{bob.pk}/owner/")
    with django_capture_on_commit_callbacks(execute=True):
        assert owner.post(f"/chats/{secret.slug}/leave/")["Location"] == "/chats/"
    assert not Membership.objects.filter(room=secret, user=alice).exists()
    bodies = [r["body"] for r in chat_server.requests if r["method"] == "POST"]
    assert [(b["scope"], b["uid"]) for b in bodies] == [("member", f"u:{alice.pk}")]


@override_settings(RATELIMIT_ROOM_CREATE="2/h", RATELIMIT_INVITE="2/h")
def test_room_creation_and_invitations_are_rate_limited(secret, alice, bob, sign_in):
    """Over RATELIMIT_ROOM_CREATE / RATELIMIT_INVITE a user gets 429 with Retry-After and
    nothing is made."""
    client = sign_in(alice)
    for name in ("Two", "Three"):
        assert client.post("/chats/new/", {"name": name, "visibility": "private"})["Location"]
    limited = client.post("/chats/new/", {"name": "Four", "visibility": "private"})
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert not Room.objects.filter(name="Four").exists()
    for _ in range(2):
        client.post(f"/chats/{secret.slug}/members/link/", {"lifetime": "3600"})
    limited = client.post(f"/chats/{secret.slug}/members/invite/", {"username": "bob"})
    assert limited.status_code == 429
    assert Invite.objects.count() == 2


def test_invitation_by_username_is_a_feed_event_for_the_invitee(
    alice, bob, secret, chat_server, django_capture_on_commit_callbacks, sign_in
):
    """The invitee's feed hears of the invitation (after commit) so the room list shows it."""
    with django_capture_on_commit_callbacks(execute=True):
        sign_in(alice).post(f"/chats/{secret.slug}/members/invite/", {"username": "bob"})
    invite = Invite.objects.get(room=secret, invitee=bob)
    items = [
        item
        for r in chat_server.requests
        if r["path"] == "/internal/users/events"
        for item in r["body"]
    ]
    assert items == [
        {
            "users": [bob.pk],
            "event": {
                "type": "invitation",
                "id": invite.pk,
                "room": "secret-plans",
                "room_name": "Secret plans",
                "by": {"id": f"u:{alice.pk}", "name": alice.get_username()},
            },
        }
    ]
