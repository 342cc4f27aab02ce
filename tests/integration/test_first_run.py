"""The first run: Django commands read the development `.env`, production refuses without secrets.

`manage.py` and `django_twisted_chat/wsgi.py` load the `.env` next to the checkout (python-dotenv,
never over variables already set). Each test runs the real files in a subprocess from a copy in a
temporary directory, so that the developer's own `.env` (if any) plays no part, with an
environment that holds none of the project's variables.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.live import ROOT

pytestmark = pytest.mark.integration

# Nothing of the project's configuration leaks in from the test run's own environment.
CLEAN_ENV = {
    key: value
    for key, value in os.environ.items()
    if not key.startswith(("DJANGO_", "CHAT_")) and key != "DATABASE_URL"
}


def dotenv_text(database: Path) -> str:
    """A development .env like `make run` writes, with a database of the test's own."""
    return (
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(32)}\n"
        f"CHAT_SHARED_SECRET={secrets.token_urlsafe(32)}\n"
        f"DATABASE_URL=sqlite:///{database}\n"
    )


def run(argv: list[str], cwd: Path, pythonpath: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *argv],
        cwd=cwd,
        env={**CLEAN_ENV, "PYTHONPATH": pythonpath, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory holding a copy of manage.py (its .env is looked for beside it)."""
    shutil.copy(ROOT / "manage.py", tmp_path / "manage.py")
    return tmp_path


def manage(checkout: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return run(["manage.py", *args], checkout, str(ROOT), **env)


def usernames(database: Path) -> list[str]:
    with sqlite3.connect(database) as db:
        return [row[0] for row in db.execute("SELECT username FROM auth_user ORDER BY id")]


def test_createsuperuser_works_with_the_dotenv_alone(checkout: Path):
    """The acceptance step: with the secrets only in .env, migrate and
    `createsuperuser --noinput` succeed without exporting anything."""
    database = checkout / "db.sqlite3"
    (checkout / ".env").write_text(dotenv_text(database))
    migrated = manage(checkout, "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    created = manage(
        checkout,
        "createsuperuser",
        "--noinput",
        "--username",
        "x",
        "--email",
        "x@example.org",
        DJANGO_SUPERUSER_PASSWORD="a-long-enough-password-42",
    )
    assert created.returncode == 0, created.stderr
    assert "Superuser created successfully" in created.stdout
    assert usernames(database) == ["x"]


def test_environment_wins_over_the_dotenv(checkout: Path):
    """A variable set in the environment is not overridden by the .env (override=False)."""
    in_dotenv, in_environment = checkout / "dotenv.sqlite3", checkout / "environment.sqlite3"
    (checkout / ".env").write_text(dotenv_text(in_dotenv))
    result = manage(
        checkout, "migrate", "--noinput", "-v", "0", DATABASE_URL=f"sqlite:///{in_environment}"
    )
    assert result.returncode == 0, result.stderr
    assert in_environment.exists() and not in_dotenv.exists()


def test_without_dotenv_or_environment_django_refuses_clearly(checkout: Path):
    """Production: no .env and no secrets in the environment stops the command with a message
    that names the variable and the way out."""
    result = manage(checkout, "check")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "make run" in result.stderr


@pytest.fixture
def wsgi_checkout(tmp_path: Path) -> Path:
    """A directory holding a copy of the django_twisted_chat package (wsgi.py looks for .env in
    the directory above it); the chat app still comes from the project."""
    shutil.copytree(
        ROOT / "django_twisted_chat",
        tmp_path / "django_twisted_chat",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return tmp_path


WSGI_PROBE = (
    "from django_twisted_chat.wsgi import application\n"
    "from django.conf import settings\n"
    "print(settings.SECRET_KEY)\n"
)


def test_wsgi_reads_the_dotenv(wsgi_checkout: Path):
    """gunicorn's entry point finds the .env's secrets too."""
    text = dotenv_text(wsgi_checkout / "db.sqlite3")
    (wsgi_checkout / ".env").write_text(text)
    result = run(["-c", WSGI_PROBE], wsgi_checkout, f"{wsgi_checkout}{os.pathsep}{ROOT}")
    assert result.returncode == 0, result.stderr
    assert f"DJANGO_SECRET_KEY={result.stdout.strip()}\n" in text


def test_wsgi_without_secrets_refuses(wsgi_checkout: Path):
    """Without .env and secrets, the WSGI application does not load."""
    result = run(["-c", WSGI_PROBE], wsgi_checkout, f"{wsgi_checkout}{os.pathsep}{ROOT}")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


LOG_PROBE = "import logging; logging.getLogger('chat.probe').warning('probe %s', 42)"


def test_django_json_log_format(checkout: Path):
    """DJANGO_LOG_FORMAT=json: each log record is one JSON object on one line."""
    (checkout / ".env").write_text(dotenv_text(checkout / "db.sqlite3"))
    result = manage(checkout, "shell", "-c", LOG_PROBE, DJANGO_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    probe = [r for r in records if r["name"] == "chat.probe"]
    assert probe and probe[0]["message"] == "probe 42" and probe[0]["levelname"] == "WARNING"
    assert "asctime" in probe[0]

    plain = manage(checkout, "shell", "-c", LOG_PROBE)
    assert "WARNING chat.probe: probe 42" in plain.stderr

    bad = manage(checkout, "check", DJANGO_LOG_FORMAT="xml")
    assert bad.returncode != 0 and "DJANGO_LOG_FORMAT must be text or json" in bad.stderr
