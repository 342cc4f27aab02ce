"""`make run`'s script: banner once both servers answer, mail printed on the console, a crashed
process restarted, Ctrl-C.

Starts the real scripts/run.sh (migrate, collectstatic, ensuredemo, then scripts/supervise.py)
on free ports with a throw-away database, in a session of its own so that a SIGINT to its
process group is what a Ctrl-C in the terminal sends.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.live import ROOT, free_port, wait_until

pytestmark = pytest.mark.integration

BANNER_END = "Press Ctrl-C to stop both servers."
STARTED = re.compile(r"\[run\] (django|chat server) started \(pid (\d+)\)")


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


class RunScript:
    """scripts/run.sh as a child process, its output in a file."""

    def __init__(self, workdir: Path):
        self.django_port, self.chat_port, internal = free_port(), free_port(), free_port()
        self.password = secrets.token_urlsafe(12)
        self.log_path = workdir / "run.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CHAT_"))},
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "CHAT_SHARED_SECRET": secrets.token_urlsafe(32),
            "CHAT_DEMO_ADMIN_PASSWORD": self.password,
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "DJANGO_STATIC_ROOT": str(workdir / "static"),
            "DJANGO_PORT": str(self.django_port),
            "CHAT_PORT": str(self.chat_port),
            "CHAT_INTERNAL_PORT": str(internal),
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [str(ROOT / "scripts" / "run.sh")],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self, name: str) -> list[int]:
        """Every pid the supervisor said it started `name` with, oldest first."""
        return [int(pid) for who, pid in STARTED.findall(self.output()) if who == name]

    def stop(self) -> None:
        """Whatever the test did: nothing it started is left running."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in self.pids("django") + self.pids("chat server"):
            if alive(pid):
                os.killpg(pid, signal.SIGKILL)  # each child leads a process group of its own


@pytest.fixture
def run_script(tmp_path: Path) -> Iterator[RunScript]:
    script = RunScript(tmp_path)
    try:
        yield script
    finally:
        script.stop()


@pytest.mark.timeout(600)  # each wait has its own deadline; together they outlast the default
def test_banner_restart_after_crash_and_ctrl_c(run_script: RunScript):
    """The banner comes once both answer; a password reset mail (console e-mail backend) shows
    its link in the output; a killed chat server is restarted with a line saying so; Ctrl-C
    (SIGINT to the group) stops both servers and the script."""
    run = run_script
    site = f"http://127.0.0.1:{run.django_port}"
    chat = f"http://127.0.0.1:{run.chat_port}"
    run.start()

    # Generous deadlines: migrate and collectstatic on a loaded machine take a while.
    wait_until(lambda: BANNER_END in run.output() or run.proc.poll() is not None, timeout=300)
    output = run.output()
    assert BANNER_END in output, output
    assert f"Chat:  {site}/chats/" in output and f"Admin: {site}/admin/" in output
    assert f"password {run.password}" in output
    # Printed only once both answered, so both answer now.
    assert requests.get(f"{site}/chats/", timeout=10).status_code == 200
    assert requests.get(f"{chat}/healthz", timeout=10).json() == {"status": "ok"}

    # Development mail goes to the console: a password reset link shows in make run's output.
    email = "reset-me@example.org"
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c",
         "from django.contrib.auth import get_user_model\n"
         f"get_user_model().objects.create_user('resetme', {email!r}, 'pw-reset-123456789')"],
        cwd=ROOT, env=run.env, check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    session, form = requests.Session(), f"{site}/accounts/password-reset/"
    session.get(form, timeout=10).raise_for_status()
    session.post(
        form,
        data={"email": email, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": form},
        timeout=10,
    ).raise_for_status()
    reset_link = re.compile(rf"{re.escape(site)}/accounts/reset/[^\s/]+/[^\s/]+/")
    wait_until(lambda: reset_link.search(run.output()), timeout=30)

    (crashed,) = run.pids("chat server")
    os.kill(crashed, signal.SIGKILL)
    wait_until(lambda: len(run.pids("chat server")) == 2, timeout=60)
    output = run.output()
    assert f"chat server (pid {crashed}) exited (killed by SIGKILL)" in output
    assert "chat server: restarting in 1 s" in output
    wait_until(lambda: "chat server answers again" in run.output(), timeout=120)
    assert requests.get(f"{chat}/healthz", timeout=10).json() == {"status": "ok"}
    assert run.proc.poll() is None  # Django was left alone
    assert len(run.pids("django")) == 1

    (django,) = run.pids("django")
    restarted = run.pids("chat server")[-1]
    os.killpg(run.proc.pid, signal.SIGINT)
    assert run.proc.wait(60) == 0, run.output()
    assert not alive(django) and not alive(restarted)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{site}/chats/", timeout=5)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{chat}/healthz", timeout=5)
    output = run.output()
    assert output.rstrip().endswith("[run] stopped")
    # Logs readable: no per-request access line for the pages the probes and this test fetched.
    assert '"GET /chats/ HTTP/1.1" 200' not in output
