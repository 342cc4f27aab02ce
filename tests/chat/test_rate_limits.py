"""Rate limits: tickets per session-or-address; sign-in failures per address and per (username,
address), on the site's and the admin's sign-in forms -> 429.

The counters are real (django-ratelimit over the configured cache); the limits are lowered with
``override_settings`` so a test needs only a handful of requests. They are per hour, not per
minute: the counters use fixed windows, and a one-hour window makes a test straddling a window
edge (which would reset the count mid-test) vanishingly unlikely.
"""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

TICKET = "/api/rooms/lobby/ticket/"
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def sign_in(client: Client, username: str, password: str = "wrong password", ip: str = "10.0.0.1"):
    """POST the sign-in form from ``ip`` (CSRF checks are off in the test client)."""
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


@override_settings(RATELIMIT_TICKET="3/h")
def test_ticket_limit_per_session(lobby):
    """The fourth ticket in a window for one session is 429 rate_limited with Retry-After."""
    browser = Client()
    assert browser.get("/chats/lobby/").status_code == 200  # the page starts the session
    for _ in range(3):
        assert browser.get(TICKET).status_code == 200
    response = browser.get(TICKET)
    assert response.status_code == 429
    body = response.json()
    assert body["error"] == "rate_limited" and body["message"]
    assert set(body) == {"error", "message"}
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert "no-store" in response["Cache-Control"]


@override_settings(RATELIMIT_TICKET="3/h")
def test_ticket_limit_leaves_other_clients_alone(lobby, alice):
    """Another session on the same address, and a signed-in user, still get tickets."""
    noisy = Client(REMOTE_ADDR="10.0.0.7")
    noisy.get("/chats/lobby/")
    for _ in range(4):
        noisy.get(TICKET)
    assert noisy.get(TICKET).status_code == 429

    neighbour = Client(REMOTE_ADDR="10.0.0.7")
    neighbour.get("/chats/lobby/")
    assert neighbour.get(TICKET).status_code == 200

    member = Client(REMOTE_ADDR="10.0.0.7")
    member.force_login(alice)
    assert member.get(TICKET).status_code == 200


@override_settings(RATELIMIT_TICKET="3/h")
def test_cookieless_clients_count_per_address(lobby):
    """Without a session cookie every request counts against the address, not a new session."""
    for _ in range(3):
        assert Client(REMOTE_ADDR="10.0.0.9").get(TICKET).status_code == 200
    assert Client(REMOTE_ADDR="10.0.0.9").get(TICKET).status_code == 429
    assert Client(REMOTE_ADDR="10.0.0.10").get(TICKET).status_code == 200


@override_settings(RATELIMIT_TICKET="3/h", RATELIMIT_ENABLE=False)
def test_limits_can_be_switched_off(lobby):
    """RATELIMIT_ENABLE=False (DJANGO_RATELIMIT_ENABLE=0) turns every limit off."""
    for _ in range(5):
        assert Client(REMOTE_ADDR="10.0.0.9").get(TICKET).status_code == 200


@override_settings(RATELIMIT_LOGIN_IP="3/h", RATELIMIT_LOGIN_USER="100/h")
def test_sign_in_limit_per_address(client, alice):
    """The fourth sign-in POST from one address is a 429 page; another address may still try."""
    for name in ("a", "b", "c"):
        assert sign_in(client, name).status_code == 200  # the form again, with an error
    response = sign_in(client, "alice", "correct horse battery")
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    assert "Too many sign-in attempts" in response.content.decode()
    assert int(response["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session  # refused before the password was checked

    other = Client()
    response = sign_in(other, "alice", "correct horse battery", ip="10.0.0.2")
    assert response.status_code == 302
    assert other.session["_auth_user_id"] == str(alice.pk)


@override_settings(RATELIMIT_LOGIN_IP="100/h", RATELIMIT_LOGIN_USER="3/h")
def test_sign_in_limit_per_username_and_address(alice, django_user_model):
    """Guessing one account's password from one address hits the (username, address) limit,
    whatever the case of the username; other accounts from that address are unaffected."""
    django_user_model.objects.create_user("bob", password="bob password 123")
    for name in ("alice", "ALICE", "Alice "):
        assert sign_in(Client(), name, ip="10.0.1.1").status_code == 200
    response = sign_in(Client(), "alice", "correct horse battery", ip="10.0.1.1")
    assert response.status_code == 429
    assert sign_in(Client(), "bob", "bob password 123", ip="10.0.1.1").status_code == 302


@override_settings(RATELIMIT_LOGIN_IP="100/h", RATELIMIT_LOGIN_USER="3/h")
def test_failures_from_another_address_never_lock_the_owner_out(alice):
    """An attacker failing for `alice` from its own address is refused, while alice signs in from
    hers: nothing is counted per username alone (it used to lock alice out everywhere)."""
    for _ in range(5):
        sign_in(Client(), "alice", ip="10.6.6.6")
    assert sign_in(Client(), "alice", "correct horse battery", ip="10.6.6.6").status_code == 429
    owner = Client()
    assert sign_in(owner, "alice", "correct horse battery", ip="10.0.0.1").status_code == 302
    assert owner.session["_auth_user_id"] == str(alice.pk)


@override_settings(RATELIMIT_LOGIN_IP="3/h", RATELIMIT_LOGIN_USER="100/h")
def test_one_address_trying_many_usernames_hits_the_address_ceiling(alice):
    """The per-address ceiling counts failures over every username from that address."""
    for i in range(3):
        assert sign_in(Client(), f"user{i}", ip="10.0.2.1").status_code == 200
    assert sign_in(Client(), "alice", "correct horse battery", ip="10.0.2.1").status_code == 429


@override_settings(RATELIMIT_LOGIN_IP="2/h", RATELIMIT_LOGIN_USER="2/h")
def test_successful_sign_ins_are_not_counted(alice):
    """Only failures count: a user who signs in often from one address is never refused."""
    for _ in range(5):
        assert sign_in(Client(), "alice", "correct horse battery").status_code == 302


@override_settings(RATELIMIT_LOGIN_IP="100/h", RATELIMIT_LOGIN_USER="3/h")
def test_admin_sign_in_has_the_same_limit(django_user_model):
    """`/admin/login/` had no limit (25 wrong passwords, then the right one signed in): now the
    fourth attempt after three failures is the 429 page, before the password is checked, and
    the admin's owner may still sign in from another address."""
    admin_user = django_user_model.objects.create_superuser("root", password="root password 1")
    for _ in range(3):
        response = Client().post(
            ADMIN_LOGIN, {"username": "root", "password": "nope"}, REMOTE_ADDR="10.0.3.1"
        )
        assert response.status_code == 200
    attacker = Client()
    response = attacker.post(
        ADMIN_LOGIN, {"username": "root", "password": "root password 1"}, REMOTE_ADDR="10.0.3.1"
    )
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert "_auth_user_id" not in attacker.session
    owner = Client()
    response = owner.post(
        ADMIN_LOGIN, {"username": "root", "password": "root password 1"}, REMOTE_ADDR="10.0.3.2"
    )
    assert response.status_code == 302 and owner.session["_auth_user_id"] == str(admin_user.pk)


@override_settings(RATELIMIT_LOGIN_IP="100/h", RATELIMIT_LOGIN_USER="2/h")
def test_admin_and_site_sign_in_share_one_count(alice):
    """Failures on either form count against the same (username, address) allowance."""
    sign_in(Client(), "alice", ip="10.0.4.1")
    Client().post(ADMIN_LOGIN, {"username": "alice", "password": "x"}, REMOTE_ADDR="10.0.4.1")
    assert sign_in(Client(), "alice", "correct horse battery", ip="10.0.4.1").status_code == 429


@override_settings(RATELIMIT_LOGIN_IP="2/h")
def test_sign_in_page_itself_is_not_limited(client, db):
    """Only POSTs count: showing the form never runs into the limit."""
    for _ in range(5):
        assert client.get(LOGIN).status_code == 200


@pytest.mark.parametrize(
    ("behind_proxy", "forwarded", "expected_limited"),
    [(True, "1.2.3.4, 10.9.9.9", True), (False, "1.2.3.4, 10.9.9.9", False)],
)
def test_proxy_address_comes_from_last_forwarded_entry(
    db, behind_proxy, forwarded, expected_limited
):
    """Behind the proxy the last X-Forwarded-For entry is the client; a forged first one is not.

    Without DJANGO_BEHIND_PROXY the header is ignored and REMOTE_ADDR counts.
    """
    with override_settings(
        RATELIMIT_LOGIN_IP="2/h",
        RATELIMIT_LOGIN_USER="100/h",
        RATELIMIT_TRUST_X_FORWARDED_FOR=behind_proxy,
    ):
        for i in range(2):
            # Same proxy-seen client (last entry), a different forged first entry each time.
            Client().post(
                LOGIN,
                {"username": f"u{i}", "password": "x"},
                REMOTE_ADDR=f"127.0.0.{i + 1}",
                HTTP_X_FORWARDED_FOR=f"6.6.6.{i}, 10.9.9.9",
            )
        response = Client().post(
            LOGIN,
            {"username": "u9", "password": "x"},
            REMOTE_ADDR="127.0.0.9",
            HTTP_X_FORWARDED_FOR=forwarded,
        )
        assert (response.status_code == 429) is expected_limited
