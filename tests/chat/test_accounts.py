"""Accounts: the display name (profile), the sign-up policy, password reset and change.

Display names follow the same look-alike rule as every other name (chat/names.py): no one may
take a name that looks like another person's username, display name or an active guest's name.
"""

from __future__ import annotations

import re
import time

import pytest
from django.conf import settings
from django.core import mail, signing
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import Client, override_settings

from chat import actions, conf
from chat.identity import set_display_name, shown_name
from chat.models import NameClaim
from chat.signup_invites import EXPIRED, INVALID, MISSING, mint_invite

PASSWORD = "pw-accounts-123456789"

# Each of these looks like "mallory": Cyrillic а/о (U+0430/U+043E), a zero-width space,
# full-width letters, a soft hyphen, upper case.
MALLORY_LOOKALIKES = [
    "mallory",
    "MALLORY",
    "m\u0430ll\u043ery",
    "mall\u200bory",
    "ｍａｌｌｏｒｙ",
    "mal\xadlory",
]


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", "alice@example.org", PASSWORD)


@pytest.fixture
def signed_in(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def renames(monkeypatch):
    """The rename control calls Django sends (after commit), recorded instead of sent."""
    calls: list[tuple[str, str]] = []
    monkeypatch.setattr(actions.chatserver_client, "renamed", lambda *a: calls.append(a))
    return calls


@pytest.fixture
def revocations(monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(
        actions.chatserver_client, "user_revoked", lambda uid, ms: calls.append(uid)
    )
    return calls


def post_profile(client: Client, name: str):
    return client.post("/accounts/profile/", {"display_name": name})


# --- display name ------------------------------------------------------------------------------


def test_a_display_name_is_what_tickets_and_the_header_show(
    signed_in, alice, lobby, renames, django_capture_on_commit_callbacks
):
    """The profile form sets the display name: the ticket (hence presence and new messages)
    carries it, the header shows it, the username stays, and the chat server is told at once."""
    with django_capture_on_commit_callbacks(execute=True):
        response = post_profile(signed_in, "Alice Liddell")
    assert response.status_code == 302 and response["Location"] == "/accounts/profile/"
    alice.refresh_from_db()
    assert alice.username == "alice"
    assert shown_name(alice) == "Alice Liddell"
    ticket = signed_in.get("/api/rooms/lobby/ticket/").json()
    assert ticket["user"] == {"id": f"u:{alice.pk}", "name": "Alice Liddell", "guest": False}
    assert "Alice Liddell" in signed_in.get("/chats/").content.decode()
    assert renames == [(f"u:{alice.pk}", "Alice Liddell")]


def test_clearing_the_display_name_shows_the_username_again(
    signed_in, alice, renames, django_capture_on_commit_callbacks
):
    """An empty display name goes back to the username (and says so to the chat server)."""
    assert set_display_name(alice, "Ally") is None
    with django_capture_on_commit_callbacks(execute=True):
        assert post_profile(signed_in, "  ").status_code == 302
    assert shown_name(alice) == "alice"
    assert NameClaim.objects.get(uid=f"u:{alice.pk}").display_key == ""
    assert renames[-1] == (f"u:{alice.pk}", "alice")


@pytest.mark.parametrize("name", MALLORY_LOOKALIKES)
def test_a_display_name_may_not_look_like_another_users_username(
    signed_in, alice, django_user_model, renames, name
):
    """Cyrillic, zero-width, full-width, soft-hyphen and case look-alikes of another user's
    username are refused with a 400 and the reason; nothing changes, nothing is announced."""
    django_user_model.objects.create_user("mallory", password=PASSWORD)
    response = post_profile(signed_in, name)
    assert response.status_code == 400
    assert "looks too much like a name someone else uses" in response.content.decode()
    assert shown_name(alice) == "alice" and renames == []


@pytest.mark.parametrize("name", MALLORY_LOOKALIKES)
def test_a_display_name_may_not_look_like_another_users_display_name(
    alice, django_user_model, name
):
    """Display names are held like usernames: a look-alike of one is refused to another user,
    to sign-up and to a guest."""
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    assert set_display_name(bob, "Mallory") is None
    assert set_display_name(alice, name) is not None
    assert shown_name(alice) == "alice"


def test_nobody_else_may_take_a_display_name_as_username_or_guest_name(alice, lobby):
    """Sign-up (username) and guests cannot take a look-alike of a user's display name."""
    assert set_display_name(alice, "QueenOfHearts") is None
    response = Client().post(
        "/accounts/signup/",
        {"username": "qu\u0435enofhearts", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 200 and "looks too much like" in response.content.decode()
    guest = Client()
    guest.get("/chats/lobby/")
    before = guest.session["chat_guest_name"]
    guest.post("/chats/lobby/guest-name/", {"name": "QUEEN\u200bOF\u200bHEARTS"})
    assert guest.session["chat_guest_name"] == before


def test_a_display_name_may_not_look_like_an_active_guests_name(alice, lobby):
    """A guest seen recently holds its name: a user cannot take a look-alike of it."""
    guest = Client()
    guest.get("/chats/lobby/")
    guest.post("/chats/lobby/guest-name/", {"name": "whiterabbit"})
    assert guest.session["chat_guest_name"] == "whiterabbit"
    assert set_display_name(alice, "White\u200bRabbit") is not None


def test_a_display_name_may_look_like_the_users_own_username(alice):
    """Only other people's names count: `Alice` is fine for `alice`."""
    assert set_display_name(alice, "ALICE") is None
    assert shown_name(alice) == "ALICE"


@pytest.mark.parametrize(
    "name", ["\u202eecila", "iso\u2066late", "bell\x07", "nul\x00x", "\u200b\u200b", "x" * 65]
)
def test_display_names_with_controls_bidi_or_nothing_visible_are_refused(alice, name):
    """Control and bidi characters, invisible-only and over-long names are refused."""
    assert set_display_name(alice, name) is not None
    assert shown_name(alice) == "alice"


def test_the_profile_page_needs_a_signed_in_user_and_csrf(alice):
    """Anonymous visitors are sent to sign in; a POST without the CSRF token is 403."""
    response = Client().get("/accounts/profile/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/accounts/profile/", {"display_name": "x"}).status_code == 403
    assert shown_name(alice) == "alice"


def test_the_profile_page_shows_the_avatar_and_the_username(signed_in, alice):
    """The profile draws the avatar from the display name and says the username stays."""
    set_display_name(alice, "Alice Liddell")
    html = signed_in.get("/accounts/profile/").content.decode()
    assert 'aria-hidden="true">AL</span>' in html
    assert 'Username: <bdi dir="auto">alice</bdi>' in html


# --- sign-up policy ------------------------------------------------------------------------------


def _signup(client: Client, username: str, **extra):
    data = {"username": username, "password1": PASSWORD, "password2": PASSWORD, **extra}
    return client.post("/accounts/signup/", data)


@override_settings(CHAT_SIGNUP="open")
def test_open_sign_up_lets_anyone_create_an_account(db, django_user_model):
    """`open`: the link is on the pages and anyone can sign up."""
    assert 'href="/accounts/signup/' in Client().get("/accounts/login/").content.decode()
    assert _signup(Client(), "newcomer").status_code == 302
    assert django_user_model.objects.filter(username="newcomer").exists()


@override_settings(CHAT_SIGNUP="closed")
def test_closed_sign_up_answers_403_and_hides_the_links(db, django_user_model):
    """`closed`: GET and POST answer 403 with a clear page, no account is made, and neither the
    header nor the sign-in page links to sign-up."""
    response = Client().get("/accounts/signup/")
    assert response.status_code == 403 and "Sign-up is closed" in response.content.decode()
    assert _signup(Client(), "newcomer").status_code == 403
    assert not django_user_model.objects.filter(username="newcomer").exists()
    for page in ("/chats/", "/accounts/login/"):
        assert "/accounts/signup/" not in Client().get(page).content.decode()


@override_settings(CHAT_SIGNUP="invite")
def test_invite_sign_up_needs_a_valid_invite(db, django_user_model):
    """`invite`: without an invite, or with an altered one, 403 saying why; with one, the form
    carries it and the account is made."""
    response = Client().get("/accounts/signup/")
    assert response.status_code == 403 and MISSING in response.content.decode()
    invite = mint_invite()
    altered = invite[:-2] + ("AA" if not invite.endswith("AA") else "BB")
    response = Client().get("/accounts/signup/", {"invite": altered})
    assert response.status_code == 403 and INVALID in response.content.decode()
    assert _signup(Client(), "sneaky", invite=altered).status_code == 403
    page = Client().get("/accounts/signup/", {"invite": invite})
    assert page.status_code == 200
    assert f'name="invite" value="{invite}"' in page.content.decode()
    assert _signup(Client(), "invited", invite=invite).status_code == 302
    assert django_user_model.objects.filter(username="invited").exists()
    assert not django_user_model.objects.filter(username="sneaky").exists()


@override_settings(CHAT_SIGNUP="invite", CHAT_SIGNUP_INVITE_MAX_AGE=3600)
def test_an_expired_invite_is_refused(db, monkeypatch, django_user_model):
    """An invite older than CHAT_SIGNUP_INVITE_MAX_AGE is refused with "expired"."""
    invite = mint_invite()
    later = time.time() + 3601
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = _signup(Client(), "late", invite=invite)
    assert response.status_code == 403 and EXPIRED in response.content.decode()
    assert not django_user_model.objects.filter(username="late").exists()


@override_settings(CHAT_SIGNUP="invite")
def test_an_invite_made_with_another_key_or_salt_is_refused(db):
    """Only invites signed by this site for sign-up count (not any signed value of ours)."""
    other_salt = signing.dumps({"i": "0" * 16}, salt="something-else")
    other_key = signing.dumps({"i": "0" * 16}, key="another key", salt="chat.signup-invite")
    for token in (other_salt, other_key):
        assert Client().get("/accounts/signup/", {"invite": token}).status_code == 403


@override_settings(CHAT_SIGNUP="invite")
def test_the_signupinvite_command_prints_a_working_link(db, capsys):
    """`manage.py signupinvite --base-url ...` prints a link whose invite the page accepts."""
    call_command("signupinvite", "--base-url", "https://chat.example.org/")
    link = capsys.readouterr().out.strip()
    assert link.startswith("https://chat.example.org/accounts/signup/?invite=")
    path = link.removeprefix("https://chat.example.org")
    assert Client().get(path).status_code == 200


def test_an_unknown_policy_refuses_to_start():
    """CHAT_SIGNUP must be open, invite or closed: anything else names the setting."""

    class Settings:
        CHAT_SHARED_SECRET = "x"
        CHAT_SIGNUP = "maybe"

    with pytest.raises(ImproperlyConfigured, match="CHAT_SIGNUP"):
        conf.apply_defaults(Settings())


# --- password reset and change -----------------------------------------------------------------


def _reset_link() -> str:
    (message,) = mail.outbox
    return re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body).group(1)


def test_password_reset_end_to_end_and_the_link_works_once(
    alice, revocations, django_capture_on_commit_callbacks
):
    """Asking for a reset sends one mail (Django's locmem backend in tests); its link lets the
    user set a new password once, ends the user's chat connections, and then no longer works."""
    page = Client().get("/accounts/login/").content.decode()
    assert 'href="/accounts/password-reset/"' in page and "Forgot password?" in page
    response = Client().post("/accounts/password-reset/", {"email": "ALICE@example.org"})
    assert response.status_code == 302 and response["Location"] == "/accounts/password-reset/done/"
    assert mail.outbox[0].to == ["alice@example.org"]
    link = _reset_link()
    browser = Client()
    form = browser.get(link, follow=True)
    assert form.status_code == 200 and "Choose a new password" in form.content.decode()
    set_url = form.redirect_chain[-1][0]
    new = "an-entirely-new-pw-42"
    with django_capture_on_commit_callbacks(execute=True):
        done = browser.post(set_url, {"new_password1": new, "new_password2": new})
    assert done.status_code == 302 and done["Location"] == "/accounts/reset/done/"
    assert Client().login(username="alice", password=new)
    assert revocations == [f"u:{alice.pk}"]
    again = Client().get(link, follow=True)
    assert "This link does not work" in again.content.decode()
    assert Client().post(set_url, {"new_password1": "x-" + new, "new_password2": "x-" + new})
    assert Client().login(username="alice", password=new)


def test_a_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(alice):
    """No account has the address: the same "check your mail" redirect, and no mail."""
    response = Client().post("/accounts/password-reset/", {"email": "nobody@example.org"})
    assert response["Location"] == "/accounts/password-reset/done/"
    assert mail.outbox == []


@override_settings(RATELIMIT_RESET_EMAIL="2/h", RATELIMIT_RESET_IP="100/h")
def test_reset_requests_are_limited_per_address(alice):
    """Past the per-address limit: 429 with Retry-After and no mail, whatever the case of the
    address; another address is still served."""
    for _ in range(2):
        Client().post("/accounts/password-reset/", {"email": "alice@example.org"})
    response = Client().post("/accounts/password-reset/", {"email": "Alice@Example.org"})
    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    assert "Too many reset requests" in response.content.decode()
    assert len(mail.outbox) == 2
    other = Client().post("/accounts/password-reset/", {"email": "someone@example.org"})
    assert other.status_code == 302


@override_settings(RATELIMIT_RESET_EMAIL="100/h", RATELIMIT_RESET_IP="3/h")
def test_reset_requests_are_limited_per_client_address(alice):
    """One address walking through many e-mail addresses is stopped by the per-IP limit."""
    for n in range(3):
        Client().post("/accounts/password-reset/", {"email": f"x{n}@example.org"})
    response = Client().post("/accounts/password-reset/", {"email": "alice@example.org"})
    assert response.status_code == 429 and mail.outbox == []
    elsewhere = Client(REMOTE_ADDR="198.51.100.7")
    assert (
        elsewhere.post("/accounts/password-reset/", {"email": "alice@example.org"}).status_code
        == 302
    )


def test_password_change_needs_the_old_password_and_ends_chat_connections(
    signed_in, alice, revocations, django_capture_on_commit_callbacks
):
    """The change form (profile link) refuses a wrong old password; a right one changes it,
    keeps this session signed in and ends the user's open chat connections."""
    assert (
        'href="/accounts/password-change/"' in signed_in.get("/accounts/profile/").content.decode()
    )
    new = "changed-password-987"
    wrong = signed_in.post(
        "/accounts/password-change/",
        {"old_password": "nope", "new_password1": new, "new_password2": new},
    )
    assert wrong.status_code == 200 and revocations == []
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in.post(
            "/accounts/password-change/",
            {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
        )
    assert response["Location"] == "/accounts/password-change/done/"
    assert signed_in.get("/accounts/profile/").status_code == 200
    assert revocations == [f"u:{alice.pk}"]
    assert Client().login(username="alice", password=new)


def test_password_pages_need_a_signed_in_user(db):
    """Changing a password is for signed-in users only."""
    response = Client().get("/accounts/password-change/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_email_settings_default_to_smtp_with_the_standard_names():
    """The project's settings name Django's standard e-mail settings (read from the
    environment); the tests themselves run on the locmem backend."""
    for name in ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD"):
        assert hasattr(settings, name)
    assert settings.EMAIL_BACKEND == "django.core.mail.backends.locmem.EmailBackend"


def test_a_renamed_user_without_a_display_name_is_announced(
    alice, renames, django_capture_on_commit_callbacks
):
    """Renaming a user (admin, shell) tells the chat server the name it is now shown under;
    saving without a rename (e.g. the last-login update) does not."""
    with django_capture_on_commit_callbacks(execute=True):
        alice.save(update_fields=["last_login"])
        alice.first_name = "A"
        alice.save()
    assert renames == []
    with django_capture_on_commit_callbacks(execute=True):
        alice.username = "alice2"
        alice.save()
    assert renames == [(f"u:{alice.pk}", "alice2")]


def test_a_display_name_with_markup_is_shown_as_text(signed_in, alice):
    """Markup in a display name is text in the header and on the profile."""
    assert set_display_name(alice, "<b>bold</b>") is None
    html = signed_in.get("/accounts/profile/").content.decode()
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
