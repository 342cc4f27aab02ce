"""The twistd plugin as an operator runs it: `twistd chatserver --help`, `twistd -n chatserver
--port tcp:PORT --django-url URL` and `twist chatserver ...` as real processes next to a real
Django, and the usage errors they print for bad command lines."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.live import BIN, ChatServerInstance, LiveSystem, free_port
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

OPTIONS = (
    "--port",
    "--internal-port",
    "--django-url",
    "--allowed-origins",
    "--redis-url",
    "--redis-prefix",
    "--behind-proxy",
)


def run(argv: list[str], cwd: Path, **env: str) -> tuple[int, str]:
    """Run a command to its end (it must not start serving); its status and all its output.

    The environment holds no CHAT_* variable but those given, as on a fresh machine.
    """
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    result = subprocess.run(
        argv,
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    return result.returncode, result.stdout + result.stderr


def words(text: str) -> str:
    """The text with its line wrapping undone."""
    return " ".join(text.split())


def test_help_lists_every_option_and_says_secrets_stay_in_the_environment(tmp_path):
    """`twistd chatserver --help`, run outside the project directory (the installed plugin is
    found through the venv, not the working directory), lists each option with the variable it
    overrides and offers no option for a secret."""
    status, output = run([str(BIN / "twistd"), "chatserver", "--help"], tmp_path)
    assert status == 0, output
    names = set(re.findall(r"^\s+(--[\w-]+)", output, re.MULTILINE))
    assert names == {*OPTIONS, "--help", "--version"}
    for variable in ("CHAT_PORT", "CHAT_INTERFACE", "CHAT_DJANGO_URL", "CHAT_REDIS_URL"):
        assert variable in output
    assert (
        "CHAT_SHARED_SECRET (and CHAT_PREVIOUS_SHARED_SECRET while a secret is rotated) are read "
        "from the environment only, never from the command line" in words(output)
    )
    status, output = run([str(BIN / "twistd"), "--help"], tmp_path)
    assert status == 0 and "chatserver" in output
    status, output = run([str(BIN / "twist"), "--help"], tmp_path)
    assert status == 0 and "chatserver" in output


@pytest.mark.parametrize("launcher", ["twistd", "twist"])
@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--bogus"], {"CHAT_SHARED_SECRET": "s"}, "option --bogus not recognized"),
        (["--shared-secret", "s"], {}, "option --shared-secret not recognized"),
        ([], {}, "CHAT_SHARED_SECRET is not set"),
        (["--port", "unix:/tmp/chat.sock"], {"CHAT_SHARED_SECRET": "s"}, "only PORT or tcp:PORT"),
        (["--port", "tcp:70000"], {"CHAT_SHARED_SECRET": "s"}, "the port must be 0 to 65535"),
        (
            ["--redis-url", "redis://:hunter2@127.0.0.1:6379"],
            {"CHAT_SHARED_SECRET": "s"},
            "--redis-url must not carry a password",
        ),
        (
            ["--redis-url", "127.0.0.1:6379"],
            {"CHAT_SHARED_SECRET": "s"},
            "CHAT_REDIS_URL must look like redis://host:6379, got '127.0.0.1:6379' "
            "(set by --redis-url)",
        ),
    ],
)
def test_a_bad_command_line_fails_with_a_usage_error(tmp_path, launcher, args, env, message):
    """Unknown options (a secret among them: there is no option for it), a missing secret and
    bad values end the process at once with a non-zero status, the usage text and one line
    naming the problem (the option, when an option set the bad value)."""
    port = free_port()
    argv = [str(BIN / launcher), *(["--pidfile="] if launcher == "twistd" else [])]
    argv += ["chatserver", "--internal-port", str(free_port()), *args]
    status, output = run(argv, tmp_path, CHAT_PORT=str(port), **env)
    assert status != 0, output
    assert message in output
    assert "--django-url" in output  # the usage text
    assert "Traceback" not in output
    assert "hunter2" not in output  # a refused password is not echoed either


@pytest.fixture
def plugin_server(live: LiveSystem) -> Iterator:
    """Start chat servers through the plugin next to the session's Django; stop them after."""
    started: list[ChatServerInstance] = []

    def start(launcher: str, extra_env: dict[str, str]) -> ChatServerInstance:
        instance = live.add_chatserver(extra_env, launcher=launcher)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()
        live.extra_chatservers.remove(instance)


@pytest.mark.parametrize("launcher", ["twistd", "twist"])
def test_the_plugin_serves_a_room_through_django_and_options_beat_the_environment(
    live, live_room, plugin_server, launcher
):
    """`twistd -n chatserver` / `twist chatserver` with --port, --internal-port and --django-url
    while the environment names other ports and a Django that is not there: the server listens
    where the options say, answers both /healthz, and a WebSocket client of the room gets its
    message back after Django stored it (so the Django URL came from the option too)."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    server = plugin_server(
        launcher,
        {
            "CHAT_PORT": str(free_port()),
            "CHAT_INTERNAL_PORT": str(free_port()),
            "CHAT_DJANGO_URL": nowhere,
        },
    )
    assert requests.get(server.url + "/healthz", timeout=5).json() == {"status": "ok"}
    health = requests.get(server.internal_url + "/healthz", timeout=10)
    assert (health.status_code, health.json()["django"]) == (200, "ok")

    ticket = live.ticket(live.guest_session(live_room), live_room)
    client = ChatClient(server.ws_url(ticket["ws_url"]), origin=live.origin)
    nonce = uuid.uuid4().hex
    client.say(f"through {launcher}", nonce)
    [message] = client.wait_for_messages(1)
    assert (message["nonce"], message["body"]) == (nonce, f"through {launcher}")
    client.close()
    assert nonce in [m["nonce"] for m in live.stored_messages(live_room)]
