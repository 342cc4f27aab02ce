"""The chat app added to somebody else's Django project, from the project's wheel alone.

As a Django developer would, and as docs/adding-chat.md says: build the wheel, make a fresh venv
(no system site packages, nothing from this checkout), `pip install` the wheel, create a project
with `django-admin startproject` whose custom user model signs in by e-mail (no `username`
field), let it have a user *before* the chat app is added, then add `chat` to INSTALLED_APPS,
mount `include("chat.urls")` under `chats/`, set the shared secret, migrate and serve it with
gunicorn, next to the chat server the same wheel installs (`twistd -n chatserver`, the plugin).
Two clients, the signed-in e-mail user and a guest, get tickets from the host's URLs and chat
through the real chat server. Every process runs outside the checkout, so a file missing from the
wheel (a template, a static file, a migration, the plugin) fails the test.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.live import ROOT, ManagedProcess, free_port, wait_until
from tests.support.wsclient import ChatClient

log = logging.getLogger(__name__)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

EMAIL = "alice@example.org"
PASSWORD = "a-long-test-password-" + secrets.token_hex(4)

# Not copied into the build tree: the local environment, caches and generated files.
IGNORED = shutil.ignore_patterns(
    ".git",
    ".venv",
    "node_modules",
    "staticfiles",
    "media",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "test-artifacts",
    "bench",
    "db.sqlite3*",
    ".env",
    "dropin.cache",
)

ACCOUNTS_MODELS = '''
"""A custom user model that signs in by e-mail: there is no username field at all."""

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class UserManager(BaseUserManager):
    def create_user(self, email, password=None, **extra):
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email, password=None, **extra):
        return self.create_user(email, password, is_staff=True, is_superuser=True, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    email = models.EmailField(unique=True)
    favourite_colour = models.CharField(max_length=20, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    USERNAME_FIELD = "email"
    objects = UserManager()
'''

# Step 1: the host project as it was before chat (its own user model, its own sign-in page).
HOST_SETTINGS = """
import os

INSTALLED_APPS += ["accounts"]
AUTH_USER_MODEL = "accounts.User"
ALLOWED_HOSTS = ["127.0.0.1"]
DEBUG = False
TEMPLATES[0]["DIRS"] = [BASE_DIR / "templates"]
STATIC_ROOT = BASE_DIR / "collected-static"
"""

# Step 2: what docs/adding-chat.md tells the developer to add.
CHAT_SETTINGS = """
INSTALLED_APPS += ["chat"]
CHAT_SHARED_SECRET = os.environ.get("CHAT_SHARED_SECRET", "")
CHAT_PUBLIC_URL = os.environ["CHAT_PUBLIC_URL"]
"""

HOST_URLS = """
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("chats/", include("chat.urls")),
]
"""

LOGIN_TEMPLATE = """<!doctype html><title>Host sign-in</title>
<form method="post">{% csrf_token %}{{ form }}<button>Sign in</button></form>
"""

# The host overrides one of the app's templates the Django way (its own templates/chat/...).
ROOM_LIST_OVERRIDE = """{% extends "chat/base.html" %}
{% block content %}<h1>Rooms of the host project</h1>
{% for room in rooms %}<a href="{% url 'chat:room' room.slug %}">{{ room.name }}</a>{% endfor %}
{% endblock %}
"""


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell: nothing of this checkout's Django, chat server or venv."""
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "CHAT_", "PYTHON", "VIRTUAL_ENV", "LIVE_"))
    }
    return {**kept, "PYTHONUNBUFFERED": "1", **extra}


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> str:
    """Run a command to its end; its output, or a failure that shows it."""
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    return result.stdout + result.stderr


class Host:
    """The fresh project, its venv and the two servers."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.venv = workdir / "venv"
        self.bin = self.venv / "bin"
        self.project = workdir / "host"
        self.django_port, self.chat_port, self.chat_internal_port = (free_port() for _ in "123")
        self.django_url = f"http://127.0.0.1:{self.django_port}"
        self.chat_url = f"http://127.0.0.1:{self.chat_port}"
        self.env = clean_env(
            DJANGO_SETTINGS_MODULE="host.settings",
            CHAT_SHARED_SECRET=secrets.token_urlsafe(32),
            CHAT_PUBLIC_URL=self.chat_url,
        )
        self.timings: dict[str, float] = {}
        self.processes: list[ManagedProcess] = []

    def step(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)

    def manage(self, *args: str, env: dict[str, str] | None = None) -> str:
        return run([str(self.bin / "python"), "manage.py", *args], self.project, env or self.env)

    def serve(self, name: str, argv: list[str], ready_url: str) -> None:
        process = ManagedProcess(name, argv, self.env, self.workdir / f"{name}.log", self.project)
        self.processes.append(process)
        process.start()

        def answers() -> bool:
            if not process.running():
                raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
            requests.get(ready_url, timeout=2, allow_redirects=False)
            return True

        try:
            wait_until(answers, timeout=60, interval=0.1)
        except (TimeoutError, RuntimeError) as exc:
            pytest.fail(f"{name} did not come up: {exc}\n{process.log_tail()}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    """A fresh project on the installed wheel, with gunicorn and the chat server running."""
    host = Host(tmp_path)
    try:
        started = time.monotonic()
        source = tmp_path / "source"
        shutil.copytree(ROOT, source, ignore=IGNORED)
        run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", "dist", str(source)],
            tmp_path,
            clean_env(),
        )
        (wheel,) = (tmp_path / "dist").glob("django_twisted_chat-*.whl")
        host.step("build the wheel", started)

        started = time.monotonic()
        run([sys.executable, "-m", "venv", str(host.venv)], tmp_path, clean_env())
        run(
            [str(host.bin / "python"), "-m", "pip", "install", "-q", "--no-compile", str(wheel)],
            tmp_path,
            clean_env(),
        )
        host.step("venv and pip install", started)

        started = time.monotonic()
        run([str(host.bin / "django-admin"), "startproject", "host"], tmp_path, clean_env())
        host.manage("startapp", "accounts")
        (host.project / "accounts" / "models.py").write_text(ACCOUNTS_MODELS)
        settings = host.project / "host" / "settings.py"
        settings.write_text(settings.read_text() + HOST_SETTINGS)
        (host.project / "templates" / "registration").mkdir(parents=True)
        (host.project / "templates" / "registration" / "login.html").write_text(LOGIN_TEMPLATE)
        (host.project / "templates" / "chat").mkdir()
        (host.project / "templates" / "chat" / "room_list.html").write_text(ROOM_LIST_OVERRIDE)
        # The project exists, with a user, before the chat app is added.
        host.manage("makemigrations", "accounts")
        host.manage("migrate", "--noinput")
        host.manage(
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model\n"
            f"get_user_model().objects.create_user({EMAIL!r}, {PASSWORD!r})\n",
        )
        settings.write_text(settings.read_text() + CHAT_SETTINGS)
        (host.project / "host" / "urls.py").write_text(HOST_URLS)
        host.manage("migrate", "--noinput")
        host.manage("collectstatic", "--noinput", "-v", "0")
        host.step("startproject, add chat, migrate", started)

        started = time.monotonic()
        host.serve(
            "gunicorn",
            [
                str(host.bin / "gunicorn"),
                "host.wsgi:application",
                "--bind",
                f"127.0.0.1:{host.django_port}",
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--no-control-socket",
            ],
            f"{host.django_url}/chats/",
        )
        host.serve(
            "chatserver",
            [
                str(host.bin / "twistd"),
                "--pidfile=",
                "-n",
                "chatserver",
                "--port",
                f"tcp:{host.chat_port}:interface=127.0.0.1",
                "--internal-port",
                f"tcp:{host.chat_internal_port}:interface=127.0.0.1",
                # The internal API is under the app's prefix: so is the chat server's Django URL.
                "--django-url",
                f"{host.django_url}/chats",
                "--allowed-origins",
                host.django_url,
            ],
            f"{host.chat_url}/healthz",
        )
        host.step("start gunicorn and the chat server", started)
        yield host
    finally:
        host.stop()
        log.info("reusable app timings (s): %s", host.timings)


def signed_in(host: Host) -> requests.Session:
    """A session signed in through the host's own login page, by e-mail."""
    session = requests.Session()
    login = f"{host.django_url}/accounts/login/"
    session.get(login, timeout=10).raise_for_status()
    response = session.post(
        login,
        data={
            "username": EMAIL,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": login},
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text
    return session


def test_chat_inside_a_fresh_project_from_the_wheel(host: Host):
    """The wheel alone makes a working chat in another project: the app comes from the venv, its
    migrations run over a custom e-mail user model that had a user already, its templates render
    (and the host's override wins), its static files are collected, tickets come from the host's
    URLs and two clients chat through the chat server the wheel installed."""
    started = time.monotonic()
    where = run(
        [str(host.bin / "python"), "-c", "import chat, chatserver; print(chat.__file__)"],
        host.workdir,
        host.env,
    )
    assert where.strip().startswith(str(host.venv)), where
    assert "--django-url" in run(
        [str(host.bin / "twistd"), "chatserver", "--help"], host.workdir, host.env
    )

    # The user who existed before chat holds its sign-in name (migration 0003 over USERNAME_FIELD).
    claims = host.manage(
        "shell",
        "-c",
        "from chat.models import NameClaim\n"
        "print(list(NameClaim.objects.values_list('name', flat=True)))",
    )
    assert EMAIL in claims

    for path in ("chat/site.css", "chat/client/main.js", "chat/client/client.css"):
        assert (host.project / "collected-static" / path).is_file(), path
    rooms = requests.get(f"{host.django_url}/chats/", timeout=10)
    assert rooms.status_code == 200 and "Rooms of the host project" in rooms.text
    assert 'href="/chats/lobby/"' in rooms.text
    room = requests.get(f"{host.django_url}/chats/lobby/", timeout=10)
    assert room.status_code == 200
    assert "/static/chat/client/main.js" in room.text
    assert 'data-ticket-url="/chats/api/rooms/lobby/ticket/"' in room.text
    assert 'href="/accounts/login/?next=/chats/lobby/"' in room.text
    missing = requests.get(f"{host.django_url}/chats/api/rooms/nope/messages/", timeout=10)
    assert missing.status_code == 404 and missing.json()["error"] == "unknown_room"

    alice_session = signed_in(host)
    guest_session = requests.Session()
    guest_session.get(f"{host.django_url}/chats/lobby/", timeout=10).raise_for_status()
    tickets = []
    for session in (alice_session, guest_session):
        response = session.get(f"{host.django_url}/chats/api/rooms/lobby/ticket/", timeout=10)
        assert response.status_code == 200, response.text
        tickets.append(response.json())
    assert tickets[0]["user"]["name"] == EMAIL and tickets[0]["user"]["guest"] is False
    assert tickets[1]["user"]["guest"] is True

    alice, guest = (ChatClient(t["ws_url"], origin=host.django_url) for t in tickets)
    try:
        nonces = [uuid.uuid4().hex, uuid.uuid4().hex]
        alice.say("hello from the host project", nonces[0])
        guest.say("hello back", nonces[1])
        for client in (alice, guest):
            got = client.wait_for_messages(2, timeout=20)
            assert sorted(m["nonce"] for m in got) == sorted(nonces)
            by_nonce = {m["nonce"]: m for m in got}
            assert by_nonce[nonces[0]]["user"]["name"] == EMAIL
            assert by_nonce[nonces[1]]["user"]["guest"] is True
    finally:
        alice.close()
        guest.close()

    # Stored by the host's Django through the internal API under /chats/internal/.
    history = requests.get(f"{host.django_url}/chats/api/rooms/lobby/messages/", timeout=10)
    assert [m["nonce"] for m in history.json()["messages"]][-2:] == [
        m["nonce"] for m in alice.messages()
    ]

    # Without the shared secret the host refuses to start, naming the setting.
    broken = subprocess.run(
        [str(host.bin / "python"), "manage.py", "check"],
        cwd=host.project,
        env={**host.env, "CHAT_SHARED_SECRET": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode != 0
    assert "ImproperlyConfigured: CHAT_SHARED_SECRET is not set" in broken.stderr
    host.step("chat", started)
