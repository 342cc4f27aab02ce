"""Backup and restore as docs/operations.md ("Backup and restore") writes them: SQLite's online
`.backup` and PostgreSQL's `pg_dump --format=custom` / `pg_restore`, then the id sequence moved
past every id handed out before the restore, so that clients resuming with since=<last id they
saw> still get the messages stored after the restore."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.live import ROOT

ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
MARGIN = 1_000_000  # the margin docs/operations.md uses

SQLITE_BUMP = f"UPDATE sqlite_sequence SET seq = seq + {MARGIN} WHERE name = 'chat_message';"
POSTGRES_BUMP = (
    "SELECT setval(pg_get_serial_sequence('chat_message', 'id'), "
    f"(SELECT coalesce(max(id), 0) FROM chat_message) + {MARGIN});"
)


def manage(database_url: str, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_SETTINGS_MODULE": "django_twisted_chat.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
        "CHAT_SHARED_SECRET": secrets.token_urlsafe(32),
        "DATABASE_URL": database_url,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def answer(output: str, marker: str) -> str:
    """The line our code printed (the shell may print a line of its own first)."""
    [line] = [line for line in output.splitlines() if line.startswith(marker)]
    return line[len(marker) :].strip()


def store(database_url: str, count: int, tag: str) -> list[int]:
    """Store `count` messages in the room "backup" (created if missing); their ids."""
    code = (
        "from chat.models import Room, Message\n"
        "room, _ = Room.objects.get_or_create(slug='backup', defaults={'name': 'Backup'})\n"
        f"ids = [Message.objects.create(room=room, author_name='op', body='{tag} %d' % n,"
        f" nonce='{tag}-%d' % n).id for n in range({count})]\n"
        "print('ids:', *ids)\n"
    )
    return [int(i) for i in answer(manage(database_url, "shell", "-c", code), "ids:").split()]


def stored_bodies(database_url: str) -> list[str]:
    code = (
        "from chat.models import Message\n"
        "bodies = Message.objects.order_by('id').values_list('body', flat=True)\n"
        "print('bodies:', '|'.join(bodies))\n"
    )
    return answer(manage(database_url, "shell", "-c", code), "bodies:").split("|")


def check_restore(database_url: str, before: list[int], lost: list[int]) -> None:
    """The restored database holds exactly what the backup held, and the next id is above
    every id handed out before the restore (the lost ones included)."""
    assert stored_bodies(database_url) == [f"kept {n}" for n in range(len(before))]
    [after] = store(database_url, 1, "after")
    assert after > max(lost)


def test_sqlite_online_backup_and_restore(tmp_path: Path):
    """`sqlite3 db ".backup 'copy'"` while the database is in use (WAL), restore by copying the
    file back (its -wal and -shm removed), then the sequence bump."""
    sqlite3 = shutil.which("sqlite3")
    assert sqlite3, "sqlite3 is not installed (Debian package sqlite3)"
    db = tmp_path / "db.sqlite3"
    url = f"sqlite:///{db}"
    manage(url, "migrate", "--noinput")
    before = store(url, 5, "kept")
    backup = tmp_path / "backup.sqlite3"
    subprocess.run([sqlite3, str(db), f".backup '{backup}'"], check=True, timeout=60)
    lost = store(url, 3, "lost")  # after the backup: the restore loses these

    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(backup, db)
    subprocess.run([sqlite3, str(db), SQLITE_BUMP], check=True, timeout=60)
    check_restore(url, before, lost)


def test_postgresql_dump_and_restore(tmp_path: Path):
    """`pg_dump --format=custom`, then `pg_restore --no-owner` into a fresh database, then the
    sequence bump."""
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    base = ADMIN_URL.rsplit("/", 1)[0]
    names = ["chat_backup_" + secrets.token_hex(4), "chat_restored_" + secrets.token_hex(4)]
    try:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
        source, target = (f"{base}/{name}" for name in names)
        manage(source, "migrate", "--noinput")
        before = store(source, 5, "kept")
        dump = tmp_path / "chat.dump"
        subprocess.run(
            ["pg_dump", "--format=custom", f"--file={dump}", source], check=True, timeout=120
        )
        lost = store(source, 3, "lost")

        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={target}", str(dump)], check=True, timeout=120
        )
        subprocess.run(["psql", target, "-v", "ON_ERROR_STOP=1", "-c", POSTGRES_BUMP], check=True)
        check_restore(target, before, lost)
    finally:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
