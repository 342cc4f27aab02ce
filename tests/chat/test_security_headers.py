"""Security headers and production settings: CSP without inline code, clickjacking, check --deploy.

The HTML is audited with :class:`html.parser.HTMLParser`, so escaped text that merely looks like
markup (``&lt;script&gt;``) is never mistaken for a tag, and a real tag is never missed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chat.models import Message

ROOT = Path(__file__).resolve().parents[2]
EXPECTED_POLICY = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'", "http://127.0.0.1:9000", "ws://127.0.0.1:9000"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
}


# The room page (the one page that runs the client) also requires Trusted Types (chat/views.py).
ROOM_PAGE_POLICY = {
    **EXPECTED_POLICY,
    "require-trusted-types-for": ["'script'"],
    "trusted-types": ["chat-html"],
}


def parse_policy(header: str) -> dict[str, list[str]]:
    """``Content-Security-Policy`` text -> {directive: [sources]}."""
    policy = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            policy[words[0]] = words[1:]
    return policy


class InlineCodeFinder(HTMLParser):
    """Collects everything a ``script-src 'self'; style-src 'self'`` policy would block."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self._in_script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Flag inline scripts, style blocks, style attributes, handlers and javascript: URLs."""
        names = dict(attrs)
        if tag == "script":
            self.scripts.append(names)
            self._in_script_without_src = not names.get("src")
        if tag == "style":
            self.problems.append("<style> block")
        for name, value in attrs:
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...> handler")
            if name == "style":
                self.problems.append(f"<{tag} style=...> attribute")
            if name in {"href", "src", "action"} and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.problems.append(f"<{tag} {name}=javascript:...>")

    def handle_endtag(self, tag: str) -> None:
        """Leave a script element."""
        if tag == "script":
            self._in_script_without_src = False

    def handle_data(self, data: str) -> None:
        """Text inside a script without src is inline code."""
        if self._in_script_without_src and data.strip():
            self.problems.append("inline <script> code")


def inline_code(html: str) -> list[str]:
    """What in ``html`` the Content-Security-Policy would block."""
    finder = InlineCodeFinder()
    finder.feed(html)
    finder.close()
    for attrs in finder.scripts:
        if not attrs.get("src"):
            finder.problems.append("<script> without src")
    return finder.problems


def test_room_page_has_csp_and_no_inline_script(client, lobby):
    """The room page sends the exact policy and its HTML has nothing the policy would block."""
    Message.objects.create(room=lobby, author_name="bob", body="hi", nonce="n1")
    response = client.get("/chats/lobby/")
    assert response.status_code == 200
    assert parse_policy(response["Content-Security-Policy"]) == ROOM_PAGE_POLICY
    html = response.content.decode()
    assert inline_code(html) == []
    finder = InlineCodeFinder()
    finder.feed(html)
    assert [s.get("src") for s in finder.scripts] == ["/static/chat/client/main.js"]


def test_inline_code_finder_catches_violations():
    """The audit itself flags each kind of inline code (so a clean result means something)."""
    assert inline_code("<script>alert(1)</script>") != []
    assert inline_code('<p style="color:red">x</p>') != []
    assert inline_code("<style>p{}</style>") != []
    assert inline_code('<img src="x" onerror="alert(1)">') != []
    assert inline_code('<a href="javascript:alert(1)">x</a>') != []
    assert inline_code("<p>&lt;script&gt;alert(1)&lt;/script&gt; onerror=x</p>") == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/chats/", 200),
        ("/chats/lobby/", 200),
        ("/chats/members/", 403),
        ("/chats/old/", 404),
        ("/chats/nope/", 404),
        ("/accounts/login/", 200),
        ("/accounts/signup/", 200),
        ("/admin/login/", 200),
    ],
)
def test_every_page_has_csp_and_no_inline_code(
    client, lobby, members_room, archived_room, path, status
):
    """Every HTML page (errors included) carries the policy, DENY framing and no inline code."""
    response = client.get(path)
    assert response.status_code == status
    # The room view's own answers (a room, its 403 and archived pages); an unknown room is
    # Django's 404 page, with the site-wide policy.
    room_page = path in ("/chats/lobby/", "/chats/members/", "/chats/old/")
    expected = ROOM_PAGE_POLICY if room_page else EXPECTED_POLICY
    assert parse_policy(response["Content-Security-Policy"]) == expected
    assert response["X-Frame-Options"] == "DENY"
    assert inline_code(response.content.decode()) == []


def test_admin_pages_have_no_inline_code(admin_client, lobby):
    """The admin screens we use (index, lists, change form) also work under the policy."""
    message = Message.objects.create(room=lobby, author_name="bob", body="hi", nonce="n1")
    for path in (
        "/admin/",
        "/admin/chat/message/",
        f"/admin/chat/message/{message.id}/change/",
        f"/admin/chat/room/{lobby.id}/change/",
    ):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert parse_policy(response["Content-Security-Policy"]) == EXPECTED_POLICY
        assert inline_code(response.content.decode()) == [], path


def test_clickjacking_protection(client, lobby):
    """Framing is refused twice over: X-Frame-Options DENY and frame-ancestors 'none'."""
    response = client.get("/chats/lobby/")
    assert response["X-Frame-Options"] == "DENY"
    assert parse_policy(response["Content-Security-Policy"])["frame-ancestors"] == ["'none'"]


def test_templates_have_no_inline_code():
    """No template file (rendered or not by the tests above) contains code the policy blocks."""
    # The project's error pages and the chat app's own templates.
    templates = sorted((ROOT / "templates").rglob("*.html")) + sorted(
        (ROOT / "chat" / "templates").rglob("*.html")
    )
    assert any(t.name == "room.html" for t in templates)
    for template in templates:
        assert inline_code(template.read_text()) == [], template.name


def run_settings(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` in a fresh process with only ``env`` (plus PATH) as its environment."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def production_env(**extra: str) -> dict[str, str]:
    """A production-like environment: DEBUG off, long random secrets, HTTPS on, real hosts."""
    return {
        "DJANGO_SETTINGS_MODULE": "django_twisted_chat.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
        "CHAT_SHARED_SECRET": secrets.token_urlsafe(48),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECURE": "1",
        "DJANGO_ALLOWED_HOSTS": "chat.example.org",
        "CHAT_PUBLIC_URL": "https://chat.example.org",
        **extra,
    }


@pytest.mark.parametrize(
    "extra",
    [{}, {"DJANGO_BEHIND_PROXY": "1", "DJANGO_REDIS_URL": "redis://127.0.0.1:6379/1"}],
    ids=["plain", "proxy-and-redis"],
)
def test_check_deploy_is_clean_in_production(extra):
    """`manage.py check --deploy --fail-level WARNING` passes with no issue in production env."""
    result = run_settings(production_env(**extra), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr and "WARNINGS" not in result.stdout


def test_check_deploy_warns_without_production_switches():
    """The same check fails on development defaults, so the clean result above is earned."""
    env = production_env()
    del env["DJANGO_SECURE"]
    result = run_settings(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "security.W004" in result.stderr and "security.W008" in result.stderr


def dump_settings(env: dict[str, str], *names: str) -> dict[str, object]:
    """The named settings as a fresh process configured by ``env`` sees them."""
    code = (
        "import json, django; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_production_switches_and_https_chat_origin():
    """DJANGO_SECURE turns on redirect, HSTS and secure cookies; https chat URL -> wss origin."""
    values = dump_settings(
        production_env(DJANGO_BEHIND_PROXY="1", DJANGO_HSTS_PRELOAD="0"),
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS",
        "SECURE_HSTS_PRELOAD",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SECURE_PROXY_SSL_HEADER",
        "CONTENT_SECURITY_POLICY",
        "CACHES",
    )
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["SECURE_HSTS_SECONDS"] >= 31536000
    assert values["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is True
    assert values["SECURE_HSTS_PRELOAD"] is False
    assert values["SESSION_COOKIE_SECURE"] is True and values["CSRF_COOKIE_SECURE"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    connect = values["CONTENT_SECURITY_POLICY"]["DIRECTIVES"]["connect-src"]
    assert connect == ["'self'", "https://chat.example.org", "wss://chat.example.org"]
    assert values["CACHES"]["default"]["BACKEND"].endswith("LocMemCache")


def test_development_defaults_stay_on_plain_http():
    """Without DJANGO_SECURE nothing redirects to https and no proxy header is trusted."""
    env = production_env(DJANGO_REDIS_URL="redis://127.0.0.1:6379/2")
    del env["DJANGO_SECURE"]
    values = dump_settings(
        env, "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_PROXY_SSL_HEADER", "CACHES"
    )
    assert values["SECURE_SSL_REDIRECT"] is False
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SECURE_PROXY_SSL_HEADER"] is None
    assert values["CACHES"]["default"] == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/2",
    }


def test_internal_api_is_exempt_from_the_https_redirect():
    """With DJANGO_SECURE the pages redirect plain http to https, but not `/internal/`: the chat
    servers call it over plain http on the private network (CHAT_DJANGO_URL), and a redirect
    would stop every history read and stored message (found by tests/deploy/test_nginx.py)."""
    code = (
        "import django; django.setup()\n"
        "from django.test import Client\n"
        "c = Client()\n"
        "print(c.get('/chats/').status_code, c.get('/internal/health/').status_code)\n"
    )
    env = production_env(DJANGO_ALLOWED_HOSTS="testserver")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    pages, internal = result.stdout.split()
    assert pages == "301"
    assert internal == "403"  # reached the view: refused for want of a signature, not redirected
