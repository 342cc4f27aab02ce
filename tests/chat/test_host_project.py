"""The chat app inside another project: mounted under a prefix with ``include("chat.urls")``,
with the host's LOGIN_URL, and with only the settings the host chose (chat/conf.py).

The whole round trip (wheel, fresh project, custom user model, real chat server) is
tests/integration/test_reusable_app.py; these pin the pieces in-process.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse

from chat import conf
from tests.chat.conftest import protocol_headers

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.usefixtures("host_layout"),
]


@pytest.fixture
def host_layout():
    """The host's URL map and sign-in page for the duration of a test."""
    with override_settings(ROOT_URLCONF="tests.chat.host_urls", LOGIN_URL="login"):
        yield


def test_every_group_is_under_the_prefix(client, lobby):
    """Pages, the public API and the internal API all answer under /chats/."""
    assert reverse("chat:rooms") == "/chats/"
    assert reverse("chat:room", args=["lobby"]) == "/chats/lobby/"
    assert client.get("/chats/").status_code == 200
    assert client.get("/chats/lobby/").status_code == 200
    assert client.get("/chats/api/rooms/").json()["rooms"][0]["slug"] == "lobby"
    ticket = client.get("/chats/api/rooms/lobby/ticket/")
    assert ticket.status_code == 200, ticket.content
    target = "/chats/internal/rooms/lobby/"
    internal = client.get(target, **protocol_headers("GET", target))
    assert internal.status_code == 200, internal.content
    # A room called "api" is still a room page; the API needs its longer paths.
    assert client.get("/chats/api/").status_code == 404


def test_json_errors_follow_the_prefix(client, db):
    """The JSON error middleware answers JSON under the mounted API and leaves the host's own
    paths (and the old root prefixes, which are the host's now) alone."""
    for path in ("/chats/api/nope/", "/chats/internal/nope/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    for path in ("/api/nope/", "/nope/"):
        response = client.get(path)
        assert response.status_code == 404
        assert not response["Content-Type"].startswith("application/json")


def test_sign_in_links_use_login_url(client, members_room):
    """A members-only room sends a visitor to the host's LOGIN_URL; without the app's account
    views there is no sign-up or sign-out link to a URL that does not exist."""
    page = client.get(f"/chats/{members_room.slug}/")
    assert page.status_code == 403
    html = page.content.decode()
    assert f'href="/accounts/login/?next=/chats/{members_room.slug}/"' in html
    assert "Sign up" not in html


def test_missing_shared_secret_names_the_setting():
    """No safe default exists for the shared secret: starting without it names the setting."""
    with override_settings(CHAT_SHARED_SECRET=""):
        with pytest.raises(ImproperlyConfigured, match="CHAT_SHARED_SECRET is not set"):
            conf.apply_defaults(settings)


def test_defaults_fill_only_what_is_missing():
    """Left-out chat settings get their defaults; what the project set is kept."""

    class Host:
        CHAT_SHARED_SECRET = "s" * 40
        CHAT_PUBLIC_URL = "https://chat.example.org"
        CHAT_TICKET_TTL = 30

    conf.apply_defaults(Host)
    assert Host.CHAT_TICKET_TTL == 30
    assert Host.CHAT_MAX_BODY == 4000
    assert Host.CHAT_INTERNAL_URL == "https://chat.example.org"
    assert Host.RATELIMIT_TICKET == "30/m"


def test_every_setting_the_app_reads_has_a_default_or_is_required():
    """A host project sets only what differs: every `settings.CHAT_*` / `settings.RATELIMIT_*`
    the app's code reads is in chat/conf.py (a setting added later without a default would
    crash a host project that never heard of it)."""
    import re
    from pathlib import Path

    from chat import conf

    app = Path(conf.__file__).parent
    read = set()
    for source in app.rglob("*.py"):
        read |= set(re.findall(r"settings\.((?:CHAT|RATELIMIT)_[A-Z_]+)", source.read_text()))
    assert read and read <= set(conf.DEFAULTS) | set(conf.REQUIRED), read - set(conf.DEFAULTS)


def test_attachments_are_under_the_prefix(alice_client, lobby, settings, tmp_path):
    """An upload under /chats/api/ answers URLs under /chats/files/, which serve the file."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = str(tmp_path)
    upload = alice_client.post(
        "/chats/api/rooms/lobby/attachments/",
        {"file": SimpleUploadedFile("a.txt", b"hello", content_type="text/plain")},
    )
    assert upload.status_code == 201, upload.content
    url = upload.json()["url"]
    assert url.startswith("/chats/files/") and url.endswith("/a.txt")
    assert alice_client.get(url).status_code == 200
