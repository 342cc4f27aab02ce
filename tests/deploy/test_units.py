"""The shipped systemd units (deploy/systemd/) and environment file (deploy/chat.env.example).

`systemd-analyze verify` and `systemd-analyze security --offline` read copies of the units whose
/srv/chat paths point at this checkout (verify insists that every ExecStart binary exists); the
units' own command lines are then run as systemd would run them (minus the sandbox, which needs
systemd as PID 1): they must start, answer, and stop on KillSignal within TimeoutStopSec.
`manage.py check --deploy` must be clean with the example environment.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from chatserver.config import ChatServerConfig
from tests.deploy.conftest import ENV_EXAMPLE, PLACEHOLDER, read_env_file
from tests.support.live import BIN, ROOT, free_port, wait_until

UNITS = ROOT / "deploy" / "systemd"
UNIT_NAMES = ["chat-django.service", "chat-migrate.service", "chat-server@.service"]
# Where the units expect the project; the copies point at this checkout and its venv instead.
INSTALL_DIR = "/srv/chat"


def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sections of a unit file as (key, value) lists, continuation lines joined, in order."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
            continue
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def values(unit: dict[str, list[tuple[str, str]]], key: str, section: str = "Service") -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def one(unit: dict[str, list[tuple[str, str]]], key: str, section: str = "Service") -> str:
    found = values(unit, key, section)
    assert len(found) == 1, f"{key}: {found}"
    return found[0]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


def localised(text: str) -> str:
    """A unit's text with the install paths pointing at this checkout and its venv."""
    return text.replace(f"{INSTALL_DIR}/.venv/bin/", f"{BIN}/").replace(INSTALL_DIR, str(ROOT))


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        raise RuntimeError("systemd-analyze is not installed: run `make deploy-deps`")
    return found


@pytest.fixture(scope="module")
def local_units(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("units")
    for name in UNIT_NAMES:
        (directory / name).write_text(localised((UNITS / name).read_text()))
    return directory


def example_env(**overrides: str) -> dict[str, str]:
    """The example environment with real random secrets in place of the placeholders."""
    env = read_env_file(ENV_EXAMPLE)
    for key, value in env.items():
        if PLACEHOLDER in value:
            env[key] = value.replace(PLACEHOLDER, secrets.token_urlsafe(50))
    env.update(overrides)
    return env


def test_units_pass_systemd_analyze_verify(local_units: Path):
    """`systemd-analyze verify` accepts every unit (the template as an instance): no unknown
    key, no bad value, every command executable. Its warnings count as failures."""
    targets = [
        local_units / ("chat-server@9000.service" if name.endswith("@.service") else name)
        for name in UNIT_NAMES
    ]
    result = subprocess.run(
        [systemd_analyze(), "verify", *map(str, targets)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=local_units,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    ours = [line for line in result.stderr.splitlines() if "chat-" in line]
    assert ours == [], "\n".join(ours)


def test_verify_catches_a_broken_unit(local_units: Path, tmp_path: Path):
    """The check above can fail: a misspelt key and a missing binary are reported."""
    broken = local_units.joinpath("chat-django.service").read_text()
    broken = broken.replace("NoNewPrivileges=", "NoNewPrivilege=").replace(
        f"{BIN}/gunicorn", f"{BIN}/no-such-gunicorn"
    )
    (tmp_path / "chat-django.service").write_text(broken)
    result = subprocess.run(
        [systemd_analyze(), "verify", str(tmp_path / "chat-django.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "NoNewPrivilege" in result.stderr and "no-such-gunicorn" in result.stderr


@pytest.mark.parametrize(
    "name", ["chat-django.service", "chat-migrate.service", "chat-server@9000.service"]
)
def test_units_are_sandboxed(local_units: Path, name: str):
    """`systemd-analyze security --offline` rates every unit's exposure at most 2.0 ("OK" or
    better: read-only system, no new privileges, no capabilities, private /tmp, syscall filter)."""
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--threshold=20", name],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=local_units,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    exposure = re.search(r"Overall exposure level for \S+: (\d+\.\d)", result.stdout)
    assert exposure and float(exposure.group(1)) <= 2.0


def test_units_restart_on_failure_and_stop_with_sigterm_after_the_drain():
    """Long-running units restart on failure, stop with SIGTERM, and systemd waits longer than
    the process's own drain (CHAT_SHUTDOWN_TIMEOUT for the chat server, gunicorn's graceful
    timeout) before it kills; all read /etc/chat/env, run as the chat user, and write only where
    they must."""
    env = read_env_file(ENV_EXAMPLE)
    drain = float(env.get("CHAT_SHUTDOWN_TIMEOUT", ChatServerConfig.shutdown_timeout))
    chat = parse_unit(UNITS / "chat-server@.service")
    django = parse_unit(UNITS / "chat-django.service")
    migrate = parse_unit(UNITS / "chat-migrate.service")
    for unit in (chat, django):
        assert one(unit, "Restart") == "on-failure"
        assert one(unit, "KillSignal") == "SIGTERM"
    assert seconds(one(chat, "TimeoutStopSec")) > drain + 5
    graceful = re.search(r"--graceful-timeout (\d+)", one(django, "ExecStart"))
    assert graceful and seconds(one(django, "TimeoutStopSec")) > int(graceful.group(1))
    for unit in (chat, django, migrate):
        assert one(unit, "EnvironmentFile") == "/etc/chat/env"
        assert one(unit, "User") == "chat"
        assert one(unit, "NoNewPrivileges") == "yes"
        assert one(unit, "ProtectSystem") == "strict"
        assert one(unit, "PrivateTmp") == "yes"
    assert values(chat, "ReadWritePaths") == [] and values(chat, "StateDirectory") == []
    assert values(migrate, "ReadWritePaths") == [f"{INSTALL_DIR}/staticfiles"]
    assert read_env_file(ENV_EXAMPLE)["DJANGO_STATIC_ROOT"] == f"{INSTALL_DIR}/staticfiles"


def command(unit_name: str, instance: str = "") -> list[str]:
    """A unit's ExecStart lines as argv lists, localised, with %i expanded."""
    unit = parse_unit(UNITS / unit_name)
    return [
        shlex.split(localised(line).replace("%i", instance)) for line in values(unit, "ExecStart")
    ]


def run_as_unit(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        argv,
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_like_systemd(proc: subprocess.Popen[bytes], unit_name: str) -> float:
    """KillSignal to the main process; the seconds it took to exit (fails past TimeoutStopSec)."""
    unit = parse_unit(UNITS / unit_name)
    sig = getattr(signal, one(unit, "KillSignal"))
    timeout = seconds(one(unit, "TimeoutStopSec"))
    started = time.monotonic()
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        pytest.fail(f"{unit_name} ignored {sig.name} for {timeout}s")
    return time.monotonic() - started


def test_the_units_commands_run_with_the_example_environment(tmp_path: Path):
    """chat-migrate's commands prepare a database and the static files; chat-django's gunicorn and
    a chat-server@<port> instance start from their ExecStart lines with the example environment,
    answer, and exit cleanly on their KillSignal within TimeoutStopSec."""
    django_port, chat_port = free_port(), free_port()
    env = example_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        DJANGO_STATIC_ROOT=str(tmp_path / "staticfiles"),
        CHAT_DJANGO_URL=f"http://127.0.0.1:{django_port}",
        # One instance without Redis here: the pair over Redis runs in test_nginx.py.
        CHAT_REDIS_URL="",
        DJANGO_REDIS_URL="",
        CHAT_INTERNAL_PORT=str(free_port()),
    )
    for argv in command("chat-migrate.service"):
        result = subprocess.run(
            argv,
            cwd=ROOT,
            env={"PATH": os.environ.get("PATH", ""), **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{argv}:\n{result.stdout}{result.stderr}"
    assert (tmp_path / "staticfiles" / "staticfiles.json").exists()

    [gunicorn] = command("chat-django.service")
    gunicorn[gunicorn.index("127.0.0.1:8000")] = f"127.0.0.1:{django_port}"
    [twistd] = command("chat-server@.service", str(chat_port))
    # %i is the port: the unit sets CHAT_PORT from it.
    chat_env = {**env, "CHAT_PORT": str(chat_port)}
    processes = []
    try:
        processes.append(("chat-django.service", run_as_unit(gunicorn, env)))
        processes.append(("chat-server@.service", run_as_unit(twistd, chat_env)))
        health = f"http://127.0.0.1:{chat_port}/healthz"
        wait_until(lambda: requests.get(health, timeout=2).ok, timeout=60)
        # Django answers the chat server's signed health call through its /internal/ API,
        # over plain http despite DJANGO_SECURE (the redirect exemption).
        internal = f"http://127.0.0.1:{env['CHAT_INTERNAL_PORT']}/healthz"
        wait_until(lambda: requests.get(internal, timeout=5).json()["django"] == "ok", timeout=60)
        page = requests.get(
            f"http://127.0.0.1:{django_port}/chats/",
            headers={"Host": "chat.example.org", "X-Forwarded-Proto": "https"},
            timeout=10,
        )
        assert page.status_code == 200
    finally:
        for name, proc in reversed(processes):
            if proc.poll() is None:
                stop_like_systemd(proc, name)
    # twistd re-raises SIGTERM once it has shut down cleanly; systemd counts an exit by SIGTERM
    # (like SIGHUP, SIGINT, SIGPIPE) as clean, so Restart=on-failure does not restart it.
    for name, proc in processes:
        assert proc.returncode in (0, -signal.SIGTERM), f"{name} exited with {proc.returncode}"


def test_check_deploy_is_clean_with_the_example_environment():
    """`manage.py check --deploy --fail-level WARNING` reports nothing with deploy/chat.env.example
    (secrets filled in), the environment docs/operations.md tells operators to install."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), **example_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # (django_ratelimit.W001 is silenced on purpose: settings.py says why.)
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stderr
