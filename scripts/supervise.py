"""`make run`'s supervisor: Django (gunicorn) and the chat server (twistd) side by side.

- Both start at once; the banner (chat URL, admin URL, how to sign in) is printed once both
  answer over HTTP, so it is the last thing on the screen rather than lost above the start-up
  lines. Past a deadline, a line says which one does not answer yet (and waiting goes on).
- A process that exits on its own is started again after a back-off (1 s, doubling up to 30 s,
  back to 1 s once it has stayed up 30 s), each time with a line saying how it exited.
  A process that exits five times in a row without ever answering (a bad setting, a port in
  use) stops the run instead, with a line saying so: restarting it would only repeat the error.
- Ctrl-C (SIGINT) or SIGTERM stops both: SIGTERM to each (the chat server drains its queue),
  SIGKILL past a deadline. A second Ctrl-C kills at once. On Linux the children also get SIGTERM
  if the supervisor itself dies (PR_SET_PDEATHSIG), so none is left holding its port.

The children run in process groups of their own, so a Ctrl-C in the terminal reaches this
supervisor only and it stops them in its own time; a child killed by a terminal signal would
otherwise look like a crash to restart. The development `.env` is read (python-dotenv, never over
variables already set) because twistd does not read it itself; run by scripts/run.sh, which sets
the ports and URLs first.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from dotenv import load_dotenv

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

READY_DEADLINE = 60.0  # seconds before a line says which process does not answer yet
FIRST_BACKOFF = 1.0
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # a process up this long gets the first back-off again at its next exit
STOP_DEADLINE = 20.0  # the chat server drains for up to CHAT_SHUTDOWN_TIMEOUT (10 s) first
GIVE_UP_AFTER = 5  # exits in a row without answering in between
TICK = 0.2
PR_SET_PDEATHSIG = 1

log = logging.getLogger("run")


@dataclass
class Child:
    """One supervised process: how to start it, where it answers, and its restart state."""

    name: str
    argv: list[str]
    ready_url: str
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    backoff: float = FIRST_BACKOFF
    answered: bool = False
    starts: int = 0
    failures: int = 0  # exits since it last answered
    next_probe: float = 0.0


def exit_reason(returncode: int) -> str:
    """`status 1` or `killed by SIGKILL`, from a Popen return code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"status {returncode}"


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (Linux; elsewhere nothing)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def answers(url: str) -> bool:
    """Whether anything answers HTTP at `url` (any status counts: the process serves)."""
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own http:// URL
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


class Supervisor:
    """Starts the children, restarts the ones that exit, stops them all on a signal."""

    def __init__(
        self,
        children: list[Child],
        env: dict[str, str],
        banner: str,
        first_backoff: float = FIRST_BACKOFF,
    ):
        self.children = children
        self.env = env
        self.banner = banner
        self.first_backoff = first_backoff
        for child in children:
            child.backoff = first_backoff
        self.failed = False
        self.stopping = False
        self.kill_now = False
        self.wake = threading.Event()

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            self.kill_now = True
        self.stopping = True
        self.wake.set()

    def start(self, child: Child) -> None:
        child.starts += 1
        child.answered = False
        child.started_at = time.monotonic()
        try:
            # No threads here, so preexec_fn is safe.
            child.proc = subprocess.Popen(
                child.argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                process_group=0,
                preexec_fn=die_with_parent,
            )
        except OSError as exc:
            log.error("%s could not start: %s", child.name, exc)
            self.schedule_restart(child)
            return
        log.info("%s started (pid %d)", child.name, child.proc.pid)

    def schedule_restart(self, child: Child) -> None:
        now = time.monotonic()
        child.failures += 1
        if child.failures >= GIVE_UP_AFTER:
            log.error(
                "%s exited %d times in a row without answering: giving up (see its lines above)",
                child.name,
                child.failures,
            )
            self.failed = self.stopping = True
            return
        if now - child.started_at >= STABLE_AFTER:
            child.backoff = self.first_backoff
        child.restart_at = now + child.backoff
        log.warning("%s: restarting in %g s", child.name, child.backoff)
        child.backoff = min(child.backoff * 2, MAX_BACKOFF)

    def check(self, child: Child) -> None:
        """Notice an exit (schedule a restart), start when due, probe until it answers."""
        now = time.monotonic()
        if child.proc is not None and child.proc.poll() is not None:
            reason = exit_reason(child.proc.returncode)
            log.warning(
                "%s (pid %d) exited (%s) after %.1f s",
                child.name,
                child.proc.pid,
                reason,
                now - child.started_at,
            )
            child.proc = None
            self.schedule_restart(child)
        if child.proc is None:
            if now >= child.restart_at and not self.stopping:
                self.start(child)
            return
        if not child.answered and now >= child.next_probe:
            child.next_probe = now + 0.5
            if answers(child.ready_url):
                child.answered = True
                child.failures = 0
                if child.starts > 1:
                    log.info("%s answers again at %s", child.name, child.ready_url)

    def run(self) -> int:
        """Supervise until a signal; returns the exit status for the shell."""
        for child in self.children:
            self.start(child)
        deadline = time.monotonic() + READY_DEADLINE
        banner_shown = warned = False
        while not self.stopping:
            for child in self.children:
                self.check(child)
            if not banner_shown and all(child.answered for child in self.children):
                sys.stdout.write(self.banner)
                sys.stdout.flush()
                banner_shown = True
            elif not banner_shown and not warned and time.monotonic() > deadline:
                waiting = ", ".join(c.name for c in self.children if not c.answered)
                log.warning("still waiting for %s to answer after %.0f s", waiting, READY_DEADLINE)
                warned = True
            self.wake.wait(TICK)
            self.wake.clear()
        self.stop_all()
        return 1 if self.failed else 0

    def stop_all(self) -> None:
        log.info("stopping both servers...")
        running = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for child in running:
            child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_DEADLINE
        for child in running:
            while child.proc.poll() is None:
                if self.kill_now or time.monotonic() > deadline:
                    log.warning("%s did not stop in time: killing it", child.name)
                    child.proc.kill()
                    child.proc.wait()
                    break
                self.wake.wait(TICK)
                self.wake.clear()
        log.info("stopped")


def main() -> int:
    """Read the ports from the environment (set by scripts/run.sh) and supervise."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s [run] %(message)s")
    load_dotenv(ROOT / ".env", override=False)
    env = dict(os.environ)
    django_host = env.get("DJANGO_HOST", "127.0.0.1")
    django_port = env.get("DJANGO_PORT", "8000")
    chat_port = env.get("CHAT_PORT", "9000")
    site = f"http://127.0.0.1:{django_port}"
    children = [
        Child(
            "django",
            [
                str(BIN / "gunicorn"),
                "django_twisted_chat.wsgi:application",
                "--bind",
                f"{django_host}:{django_port}",
                "--worker-class",
                "gthread",
                "--workers",
                "2",
                "--threads",
                "8",
                # No access log: a page load would print a line per static file. GUNICORN_CMD_ARGS
                # ="--access-logfile -" turns it on (gunicorn reads that variable itself).
                "--no-control-socket",
            ],
            f"{site}/chats/",
        ),
        Child(
            "chat server",
            [str(BIN / "twistd"), "--pidfile=", "-n", "-y", "chatserver.tac"],
            f"http://127.0.0.1:{chat_port}/healthz",
        ),
    ]
    password = env.get("CHAT_DEMO_ADMIN_PASSWORD", "")
    sign_in = (
        f"user admin, password {password}: CHAT_DEMO_ADMIN_PASSWORD in .env"
        if password
        else "user admin, with the password printed by ensuredemo above"
    )
    banner = (
        "\n"
        f"  Chat:  {site}/chats/   (the demo room lobby is open to guests)\n"
        f"  Admin: {site}/admin/   ({sign_in})\n"
        "  Press Ctrl-C to stop both servers.\n\n"
    )
    supervisor = Supervisor(children, env, banner)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
