"""Identity: a guest can never pass for a registered person or for another guest.

Names are refused for control and bidi characters, and compared by a key (NFKC, case folding,
default-ignorables removed, UTS #39 skeleton); messages carry a stable author id; new guest
identities are rate-limited per client address.
"""

from __future__ import annotations

import importlib
import json
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone

from chat import actions
from chat import identity as identity_module
from chat.forms import AdminUserCreationForm, SignUpForm
from chat.identity import GUEST_NAME_KEY
from chat.models import Message, NameClaim
from chat.names import name_error, name_key

from .conftest import SignedClient

BATCH = "/internal/messages/batch/"

# Each of these looks like "admin": case, Cyrillic а (U+0430), a zero-width space, full-width
# letters, "rn" for "m" (UTS #39 confusables), a soft hyphen (default ignorable).
ADMIN_LOOKALIKES = [
    "admin",
    "Admin",
    "ADMIN",
    "\u0430dmin",
    "adm\u200bin",
    "ａｄｍｉｎ",
    "adrnin",
    "ad\xadmin",
]
# Refused in every name: NUL, other C0/C1 controls, bidi overrides/isolates/marks, surrogates.
BAD_NAMES = [
    "nul\x00name",
    "bell\x07",
    "c1\x85x",
    "\u202efdp.exe",
    "iso\u2066late",
    "mark\u200f",
    "arabic\u061cmark",
    "lone\ud800",
]


def set_name(client: Client, name: str):
    return client.post("/chats/lobby/guest-name/", {"name": name}, follow=True)


def guest_name_of(client: Client) -> str:
    return client.session[GUEST_NAME_KEY]


# --- the name rule -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_name_rule_refuses_controls_bidi_and_surrogates(name):
    """Control characters (NUL included), bidi controls and lone surrogates are never a name."""
    assert name_error(name) is not None


@pytest.mark.parametrize("name", ["Zoë", "محمد", "李小龙", "👩\u200d💻 dev", "o'brien"])
def test_name_rule_keeps_ordinary_names(name):
    """Accents, right-to-left scripts, CJK and emoji sequences (with a joiner) are fine."""
    assert name_error(name) is None


@pytest.mark.parametrize("name", ADMIN_LOOKALIKES)
def test_lookalikes_share_the_key_of_admin(name):
    """The key folds case, NFKC forms, ignorables and UTS #39 confusables to one value."""
    assert name_key(name) == name_key("admin")


@pytest.mark.parametrize("name", ["admins", "adnim", "bob", "guest-1000"])
def test_different_names_keep_different_keys(name):
    """Names that do not look alike stay distinct."""
    assert name_key(name) != name_key("admin")


# --- guest names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ADMIN_LOOKALIKES)
def test_guest_cannot_take_or_mimic_a_registered_username(lobby, django_user_model, name):
    """A guest renaming itself `admin` (or anything that looks like it) is refused and keeps its
    old name; on the original code the rename was accepted."""
    django_user_model.objects.create_superuser("admin", password="pw-admin-123456")
    guest = Client()
    guest.get("/chats/lobby/")
    before = guest_name_of(guest)
    response = set_name(guest, name)
    assert "This name is taken" in response.content.decode()
    assert guest_name_of(guest) == before


@pytest.mark.parametrize("name", [n for n in BAD_NAMES if "\ud800" not in n])
def test_guest_name_with_controls_is_refused(lobby, name):
    """NUL, controls and bidi controls never become a guest name."""
    guest = Client()
    guest.get("/chats/lobby/")
    before = guest_name_of(guest)
    set_name(guest, name)
    assert guest_name_of(guest) == before


@pytest.mark.parametrize("copy", ["zoe", "ZOE", "z\u043ee", "zo\u200de"])
def test_guest_cannot_take_another_active_guests_name(lobby, copy):
    """While a guest holds a name, no other guest may take it or a look-alike."""
    first, second = Client(), Client()
    first.get("/chats/lobby/")
    second.get("/chats/lobby/")
    set_name(first, "zoe")
    assert guest_name_of(first) == "zoe"
    response = set_name(second, copy)
    assert "This name is taken" in response.content.decode()
    assert guest_name_of(second) != copy


def test_a_lapsed_guest_name_can_be_taken_and_its_old_holder_gets_a_new_one(lobby):
    """After CHAT_GUEST_NAME_HOLD without being seen, a guest's name is free; when the old
    holder comes back it shows a fresh default name, never the name someone else now holds."""
    first, second = Client(), Client()
    first.get("/chats/lobby/")
    set_name(first, "zoe")
    NameClaim.objects.filter(name="zoe").update(last_seen=timezone.now() - timedelta(days=2))
    second.get("/chats/lobby/")
    set_name(second, "Zoe")
    assert guest_name_of(second) == "Zoe"
    first.get("/chats/lobby/")
    assert guest_name_of(first).startswith("guest-")
    names = set(NameClaim.objects.filter(guest=True).values_list("name", flat=True))
    assert names == {"Zoe", guest_name_of(first)}


def test_default_guest_names_avoid_names_in_use(lobby, monkeypatch):
    """A default `guest-NNNN` that another guest holds is skipped (the draw is forced to collide
    twice; the third number is free)."""
    holder = Client()
    holder.get("/chats/lobby/")
    set_name(holder, "guest-1000")
    draws = iter([0, 0, 5])
    monkeypatch.setattr(identity_module.secrets, "randbelow", lambda n: next(draws))
    newcomer = Client()
    newcomer.get("/chats/lobby/")
    assert guest_name_of(newcomer) == "guest-1005"


def test_a_rename_is_announced_to_the_chat_server(
    lobby, monkeypatch, django_capture_on_commit_callbacks
):
    """An accepted rename calls the chat server's rename control with the guest's uid."""
    calls = []
    monkeypatch.setattr(actions.chatserver_client, "renamed", lambda *a: calls.append(a))
    guest = Client()
    guest.get("/chats/lobby/")
    uid = "g:" + guest.session["chat_guest_id"]
    with django_capture_on_commit_callbacks(execute=True):
        set_name(guest, "newname")
    assert calls == [(uid, "newname")]


# --- sign-up and the admin -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["\u0430dmin", "Admin", "adm\u200bin"])
def test_sign_up_refuses_a_lookalike_of_a_username(db, django_user_model, name):
    """`аdmin` (Cyrillic а) next to `admin` is refused at sign-up, as are other look-alikes."""
    django_user_model.objects.create_user("admin", password="pw-admin-123456")
    form = SignUpForm(
        data={
            "username": name,
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
        }
    )
    assert not form.is_valid()
    assert "username" in form.errors


def test_sign_up_refuses_a_name_an_active_guest_holds(lobby):
    """A new account cannot take the name a guest is using right now."""
    guest = Client()
    guest.get("/chats/lobby/")
    set_name(guest, "zoe")
    response = Client().post(
        "/accounts/signup/",
        {
            "username": "ZOE",
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
        },
    )
    assert response.status_code == 200
    assert "This name is taken" in response.content.decode()


def test_sign_up_refuses_bidi_controls_and_accepts_plain_names(db, django_user_model):
    """A username with a bidi override is refused; an ordinary one is created and claimed."""
    password = "a-long-unusual-pass-42"
    bad = SignUpForm(data={"username": "\u202eevil", "password1": password, "password2": password})
    assert not bad.is_valid()
    good = SignUpForm(data={"username": "newbie", "password1": password, "password2": password})
    assert good.is_valid(), good.errors
    user = good.save()
    assert NameClaim.objects.get(uid=f"u:{user.pk}").key == name_key("newbie")


def test_admin_add_user_form_refuses_a_lookalike(db, django_user_model):
    """The admin's "add user" form applies the same rule."""
    django_user_model.objects.create_user("admin", password="pw-admin-123456")
    form = AdminUserCreationForm(
        data={
            "username": "\u0430dmin",
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
            "usable_password": "true",
        }
    )
    assert not form.is_valid()
    assert "username" in form.errors


# --- the stable author id ------------------------------------------------------------------------


def _item(**fields):
    base = {"room": "lobby", "nonce": "uid-1", "body": "hi", "name": "x"}
    return {**base, **fields}


def test_batch_stores_the_author_uid_and_messages_carry_it(lobby, alice, signed: SignedClient):
    """The item's uid is stored and comes back as `user.id` for users and guests."""
    items = [
        _item(nonce="u1", name="alice", uid=f"u:{alice.pk}", user_id=alice.pk, guest=False),
        _item(nonce="g1", name="admin", uid="g:0123456789abcdef", user_id=None, guest=True),
    ]
    results = json.loads(signed.post_json(BATCH, {"messages": items}).content)["results"]
    users = [r["message"]["user"] for r in results]
    assert users == [
        {"id": f"u:{alice.pk}", "name": "alice", "guest": False},
        {"id": "g:0123456789abcdef", "name": "admin", "guest": True},
    ]
    assert Message.objects.get(nonce="g1").author_uid == "g:0123456789abcdef"


@pytest.mark.parametrize(
    "fields",
    [
        {"uid": "u:999", "user_id": 7, "guest": False},  # a user uid naming another user
        {"uid": "g:0123456789abcdef", "user_id": 7, "guest": False},  # a user as a guest id
        {"uid": "u:7", "user_id": None, "guest": True},  # a guest with a user's id
        {"uid": "g:XYZ", "user_id": None, "guest": True},  # not 16 hex
        {"user_id": None, "guest": True},  # no uid at all
    ],
)
def test_batch_refuses_an_author_uid_that_does_not_match(lobby, signed: SignedClient, fields):
    """A uid that does not agree with user_id/guest is `bad_item`; nothing is stored."""
    response = signed.post_json(BATCH, {"messages": [_item(**fields)]})
    (result,) = json.loads(response.content)["results"]
    assert result["ok"] is False and result["error"] == "bad_item"
    assert not Message.objects.exists()


def test_room_page_marks_own_messages_by_id_and_guests_visibly(client, lobby, django_user_model):
    """The admin's page styles only the admin's own message as own, never a guest named
    `admin`; the guest's message carries a visible guest badge; names are <bdi>."""
    admin = django_user_model.objects.create_superuser("admin", password="pw-admin-123456")
    Message.objects.create(
        room=lobby,
        author=admin,
        author_name="admin",
        author_uid=f"u:{admin.pk}",
        body="real",
        nonce="real",
    )
    Message.objects.create(
        room=lobby,
        author_name="admin",
        author_is_guest=True,
        author_uid="g:0123456789abcdef",
        body="fake",
        nonce="fake",
    )
    client.force_login(admin)
    html = client.get("/chats/lobby/").content.decode()
    real = html[html.index('data-nonce="real"') - 80 : html.index('data-nonce="real"')]
    fake = html[html.index('data-nonce="fake"') - 80 : html.index('data-nonce="fake"')]
    assert " own" in real and " own" not in fake
    assert "by-guest" in fake
    assert html.count('class="guest-badge"') == 1
    assert '<bdi class="author" dir="auto">admin</bdi>' in html
    assert f'data-user-id="u:{admin.pk}"' in html


# --- rate limit on new guest identities ---------------------------------------------------------


@override_settings(RATELIMIT_GUEST_IDENTITY="3/m")
def test_cookieless_ticket_requests_cannot_mint_identities_without_end(lobby):
    """From one address, the fourth cookie-less ticket request within the window gets a clear
    429 JSON with retry_after, and no identity is created for it (the original code minted one
    identity per request)."""
    for _ in range(3):
        assert Client().get("/api/rooms/lobby/ticket/").status_code == 200
    response = Client().get("/api/rooms/lobby/ticket/")
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "rate_limited" and body["retry_after"] >= 1
    assert int(response["Retry-After"]) == body["retry_after"]
    assert NameClaim.objects.filter(guest=True).count() == 3


@override_settings(RATELIMIT_GUEST_IDENTITY="2/m")
def test_cookieless_page_views_are_limited_and_kept_sessions_are_not(lobby):
    """The room page answers 429 to a new guest over the limit; a guest that keeps its cookie is
    never limited by it (only creation counts)."""
    kept = Client()
    assert kept.get("/chats/lobby/").status_code == 200
    assert Client().get("/chats/lobby/").status_code == 200
    response = Client().get("/chats/lobby/")
    assert response.status_code == 429
    assert "Too many new guests" in response.content.decode()
    for _ in range(3):
        assert kept.get("/chats/lobby/").status_code == 200
        assert kept.get("/api/rooms/lobby/ticket/").status_code == 200


def test_migration_fills_author_uid_for_old_rows_and_claims_usernames(lobby, django_user_model):
    """The data step of migration 0003: old messages with an author get `u:<id>`, old guest
    messages stay empty (their session is unknown), every existing username is claimed."""
    from django.apps import apps

    fill = importlib.import_module("chat.migrations.0003_identity").fill
    user = django_user_model.objects.create_user("oldtimer")
    Message.objects.create(room=lobby, author=user, author_name="oldtimer", body="a", nonce="a")
    Message.objects.create(room=lobby, author_name="g", author_is_guest=True, body="b", nonce="b")
    NameClaim.objects.all().delete()  # as before the migration: no claims yet
    fill(apps, None)
    assert Message.objects.get(nonce="a").author_uid == f"u:{user.pk}"
    assert Message.objects.get(nonce="b").author_uid == ""
    assert NameClaim.objects.get(uid=f"u:{user.pk}").key == name_key("oldtimer")


def test_admin_marks_guest_messages_and_filters_by_guest(client, lobby, django_user_model):
    """The message list has a Guest column and filter, so staff see who is a guest."""
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    Message.objects.create(
        room=lobby, author_name="admin", author_is_guest=True, body="g", nonce="g"
    )
    Message.objects.create(room=lobby, author=boss, author_name="boss", body="u", nonce="u")
    client.force_login(boss)
    page = client.get("/admin/chat/message/").content.decode()
    assert "column-guest" in page and "author_is_guest" in page
    only_guests = client.get("/admin/chat/message/?author_is_guest__exact=1").content.decode()
    assert '<td class="field-excerpt">g</td>' in only_guests
    assert '<td class="field-excerpt">u</td>' not in only_guests


def test_admin_user_screens_refuse_a_lookalike_username(client, db, django_user_model):
    """Adding a user `аdmin` in the admin (next to `admin`) shows a form error, creates nothing."""
    boss = django_user_model.objects.create_superuser("admin", password="pw-boss-123456")
    client.force_login(boss)
    response = client.post(
        "/admin/auth/user/add/",
        {
            "username": "\u0430dmin",
            "password1": "a-long-unusual-pass-42",
            "password2": "a-long-unusual-pass-42",
            "usable_password": "true",
        },
    )
    assert response.status_code == 200
    assert "This name is taken" in response.content.decode()
    assert django_user_model.objects.count() == 1


def test_admin_can_still_edit_users_whose_old_names_clash(client, db, django_user_model):
    """Two users registered before the rule as `bob` and `Bob`: staff can still edit (e.g.
    deactivate) one of them; only renaming to a look-alike is refused."""
    boss = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    django_user_model.objects.create_user("bob")
    other = django_user_model.objects.create_user("Bob")
    client.force_login(boss)
    # The change form with "active" unticked (an unticked checkbox is simply absent).
    data = {"username": "Bob", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"}
    response = client.post(f"/admin/auth/user/{other.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    other.refresh_from_db()
    assert other.is_active is False
    data["username"] = "B\u043eb"  # Cyrillic о: a look-alike of both
    response = client.post(f"/admin/auth/user/{other.pk}/change/", data)
    assert response.status_code == 200 and "This name is taken" in response.content.decode()


def test_lapsed_guest_claims_are_forgotten_when_new_guests_arrive(lobby):
    """Names of guests not seen within the hold do not pile up: a new guest's arrival removes
    them, while fresh claims stay."""
    old = Client()
    old.get("/chats/lobby/")
    NameClaim.objects.filter(guest=True).update(last_seen=timezone.now() - timedelta(days=3))
    fresh = Client()
    fresh.get("/chats/lobby/")
    assert list(NameClaim.objects.filter(guest=True).values_list("name", flat=True)) == [
        guest_name_of(fresh)
    ]
