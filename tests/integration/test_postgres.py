"""The whole system on PostgreSQL: `DATABASE_URL=postgres://...` for Django, real processes."""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.live import LiveSystem
from tests.support.wsclient import ChatClient

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="module")
def postgres_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """A live system whose Django stores into a fresh PostgreSQL database, dropped afterwards."""
    name = "chat_live_" + secrets.token_hex(4)
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    system = LiveSystem(tmp_path_factory.mktemp("pg-live"), extra_env={"DATABASE_URL": url})
    try:
        system.start()
        yield system
    finally:
        system.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_chat_round_trip_is_stored_in_postgresql(postgres_live):
    """Two clients chat through the real servers and the messages land in PostgreSQL once."""
    live = postgres_live
    live.create_room("pg-room")
    clients = []
    for _ in range(2):
        session = live.guest_session("pg-room")
        clients.append(ChatClient(live.ticket(session, "pg-room")["ws_url"], origin=live.origin))
    nonces = [uuid.uuid4().hex for _ in range(4)]
    for i, n in enumerate(nonces):
        clients[i % 2].say(f"pg {i}", n)
    for client in clients:
        assert sorted(m["nonce"] for m in client.wait_for_messages(4)) == sorted(nonces)
        client.close()
    stored = live.stored_messages("pg-room")
    assert sorted(m["nonce"] for m in stored) == sorted(nonces)
    shell_output = live.shell("from django.db import connection; print(connection.vendor)")
    vendor = shell_output.strip().splitlines()[-1]
    assert vendor == "postgresql"
