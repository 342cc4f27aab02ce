"""Tickets any backend can mint: docs/examples/mint_ticket.py, run on its own as a non-Django
backend would, opens real sockets on a real chat server; a rotation's previous secret works too.

Its own `LiveSystem`, whose chat server and Django also accept `CHAT_PREVIOUS_SHARED_SECRET`
(a rotation under way).
"""

from __future__ import annotations

import ast
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.live import ROOT, LiveSystem, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "docs" / "examples" / "mint_ticket.py"
PREVIOUS_SECRET = secrets.token_urlsafe(32)
ROOM = "from-another-backend"


@pytest.fixture(scope="module")
def rotating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """A live system in the middle of a secret rotation, with one guest room."""
    workdir = tmp_path_factory.mktemp("external-tickets")
    extra = {"CHAT_PREVIOUS_SHARED_SECRET": PREVIOUS_SECRET}
    with LiveSystem(workdir, extra_env=extra) as system:
        system.create_room(ROOM, guests=True)
        yield system


def run_example(secret: str, *args: str) -> str:
    """Run the example script in a bare environment (the secret and PATH only), as another
    backend's process would; return what it printed."""
    env = {"CHAT_SHARED_SECRET": secret, "PATH": os.environ.get("PATH", "")}
    done = subprocess.run(
        [sys.executable, "-I", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def test_the_example_imports_nothing_from_this_project():
    """The example stands alone: the standard library and PyJWT, nothing of Django or the chat
    server (so a backend in any framework can copy it)."""
    tree = ast.parse(Path(SCRIPT).read_text())
    imported = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert imported - set(sys.stdlib_module_names) == {"jwt"}


def test_a_ticket_from_the_example_script_opens_a_socket_and_its_messages_are_stored(
    rotating: LiveSystem,
):
    """The script's guest ticket opens a real socket; the chat server greets it under the
    script's identity, a Django-ticket reader in the room sees its message, Django stores it."""
    guest_id = secrets.token_hex(8)
    url = run_example(
        rotating.secret,
        ROOM,
        "Ada from Flask",
        "--guest-id",
        guest_id,
        "--chat-url",
        rotating.chat_url,
    )
    assert url.startswith(f"ws://127.0.0.1:{rotating.chat_port}/ws/{ROOM}?ticket=eyJ")
    author = {"id": f"g:{guest_id}", "name": "Ada from Flask", "guest": True}
    reader = ChatClient(
        rotating.ticket(rotating.guest_session(ROOM), ROOM)["ws_url"], origin=rotating.origin
    )
    external = ChatClient(url, origin=rotating.origin)
    try:
        assert external.hello["user"] == author
        nonce = uuid.uuid4().hex
        external.say("hello from another backend", nonce)
        seen = reader.wait_for(lambda f: f.get("type") == "message" and f.get("nonce") == nonce)
        assert seen["user"] == author and seen["body"] == "hello from another backend"
        stored = wait_until(
            lambda: [m for m in rotating.stored_messages(ROOM) if m["nonce"] == nonce]
        )
        assert stored[0]["id"] == seen["id"]
    finally:
        external.close()
        reader.close()


def test_the_previous_secret_works_during_a_rotation_and_a_foreign_secret_never(
    rotating: LiveSystem,
):
    """A ticket the script signs with `CHAT_PREVIOUS_SHARED_SECRET` opens a socket while the
    rotation is under way; one signed with any other secret is refused before the upgrade."""
    old = run_example(PREVIOUS_SECRET, ROOM, "Old Key", "--chat-url", rotating.chat_url)
    client = ChatClient(old, origin=rotating.origin)
    try:
        assert client.hello["user"]["name"] == "Old Key"
    finally:
        client.close()
    foreign = run_example(
        secrets.token_urlsafe(32), ROOM, "Nobody", "--chat-url", rotating.chat_url
    )
    with pytest.raises(InvalidStatus) as refused:
        with connect(foreign, origin=rotating.origin, open_timeout=10):
            pass
    assert refused.value.response.status_code == 403


def test_a_signed_in_users_ticket_from_the_script_speaks_for_that_user(rotating: LiveSystem):
    """`--user-id` mints `sub: u:<id>`: the socket speaks for that user (not a guest), and the
    plain ticket output (no `--chat-url`) is a three-part JWT."""
    ticket = run_example(rotating.secret, ROOM, "ada", "--user-id", "42")
    assert ticket.count(".") == 2 and ticket.startswith("eyJ")
    ws = rotating.chat_url.replace("http://", "ws://")
    client = ChatClient(f"{ws}/ws/{ROOM}?ticket={ticket}", origin=rotating.origin)
    try:
        assert client.hello["user"] == {"id": "u:42", "name": "ada", "guest": False}
    finally:
        client.close()
