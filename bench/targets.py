"""The two systems under load: the reference broadcaster and the real Django + chat server.

Both answer the same questions: where client number i of room R connects (`ws_url`), which
processes to charge CPU and memory to (`chat_pids`, `django_pids`), and how to start from a fresh
server process (`restart`). `LiveTarget.over_redis` turns the real system into a `ClusterTarget`:
chat server instances sharing a Redis, a room's clients spread over them.
"""

from __future__ import annotations

import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.procstats import descendants

ROOT = Path(__file__).resolve().parents[1]

# Benchmark senders send far faster than a person: lift the per-identity and per-address limits
# (documented in docs/operations.md: CHAT_RATE, CHAT_BURST, CHAT_FLOOD_CLOSE, CHAT_ADDRESS_*,
# CHAT_MAX_*CONNECTIONS).
BENCH_CHAT_ENV = {
    "CHAT_RATE": "100000",
    "CHAT_BURST": "100000",
    "CHAT_FLOOD_CLOSE": "100000",
    # One load generator address (and few identities) opens thousands of sockets.
    "CHAT_ADDRESS_RATE": "100000",
    "CHAT_ADDRESS_BURST": "100000",
    "CHAT_MAX_CONNECTIONS": "100000",
    "CHAT_MAX_ADDRESS_CONNECTIONS": "100000",
}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 15.0) -> None:
    """Poll until `port` accepts connections; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


class ReferenceTarget:
    """`bench/reference.py` in its own process."""

    name = "reference"

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.logfile = tempfile.TemporaryFile()

    def start(self) -> ReferenceTarget:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.reference", "--port", str(self.port)],
            cwd=ROOT,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_rooms(self, slugs: list[str]) -> None:
        """Rooms exist as soon as someone joins them."""

    def ws_url(self, slug: str, index: int = 0) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{slug}"

    @property
    def chat_pids(self) -> list[int]:
        return [self.process.pid] if self.process else []

    @property
    def django_pids(self) -> list[int]:
        return []


class LiveTarget:
    """The real system: gunicorn Django and `twistd -n -y chatserver.tac` (tests/support/live.py).

    Every client of one room shares one guest's ticket, fetched the way a browser does (room page
    for the session cookie, then `GET /api/rooms/<slug>/ticket/`): tickets are not single-use, and
    one identity per room keeps presence traffic out of the fan-out figures.
    """

    name = "chatserver"

    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        from tests.support.live import LiveSystem

        self.workdir = tempfile.TemporaryDirectory(prefix="bench-live-")
        self.live = LiveSystem(Path(self.workdir.name), {**BENCH_CHAT_ENV, **(extra_env or {})})
        self.sessions: dict[str, requests.Session] = {}
        self.tickets: dict[str, tuple[float, dict[str, Any]]] = {}

    def start(self) -> LiveTarget:
        self.live.start()
        return self

    def stop(self) -> None:
        try:
            self.live.stop()
        finally:
            self.workdir.cleanup()

    def restart(self, extra_env: dict[str, str] | None = None) -> None:
        """A fresh chat server process (Django and its database stay)."""
        self.live.chatserver.env.update(extra_env or {})
        self.live.restart_chatserver()

    def create_rooms(self, slugs: list[str]) -> None:
        """Create guest rooms in one ORM call (one `manage.py` per room would take seconds)."""
        self.live.shell(
            "from chat.models import Room\n"
            "Room.objects.bulk_create([Room(slug=s, name=s, allow_guests=True) "
            f"for s in {slugs!r}], ignore_conflicts=True)\n"
        )

    def ticket(self, slug: str) -> dict[str, Any]:
        """A guest ticket for the room, reused while it has more than 30 s left."""
        fetched, ticket = self.tickets.get(slug, (0.0, {}))
        if time.monotonic() - fetched < ticket.get("expires_in", 0) - 30:
            return ticket
        session = self.sessions.get(slug) or self.live.guest_session(slug)
        self.sessions[slug] = session
        ticket = self.live.ticket(session, slug)
        self.tickets[slug] = (time.monotonic(), ticket)
        return ticket

    def ws_url(self, slug: str, index: int = 0) -> str:
        return self.ticket(slug)["ws_url"]

    @property
    def chat_pids(self) -> list[int]:
        pid = self.live.chatserver.pid
        return [pid] if pid else []

    @property
    def django_pids(self) -> list[int]:
        pid = self.live.django.pid
        return descendants(pid) if pid else []

    @contextmanager
    def over_redis(self, redis_url: str) -> Iterator[ClusterTarget]:
        """The primary chat server restarted on Redis (a prefix unique to this call); add more
        instances with `ClusterTarget.add_instance`. On the way out the extra instances are
        stopped and the primary is restarted without Redis, also on error."""
        env = {
            "CHAT_REDIS_URL": redis_url,
            # Other runs and test suites may share this Redis: never hear their events.
            "CHAT_REDIS_PREFIX": f"bench-{secrets.token_hex(6)}:",
        }
        cluster = ClusterTarget(self, env)
        self.restart(env)
        try:
            yield cluster
        finally:
            try:
                for instance in cluster.instances:
                    instance.stop()
                    self.live.extra_chatservers.remove(instance)
            finally:
                for key in env:
                    self.live.chatserver.env.pop(key, None)
                self.live.restart_chatserver()


class ClusterTarget:
    """Chat server instances of one `LiveTarget` sharing a Redis; one Django behind them.

    Client i of a room connects to instance i % n with the room's ticket (as a load balancer
    would route it): with two instances, half of each room's sockets, and one of its two senders,
    are on each.
    """

    def __init__(self, target: LiveTarget, env: dict[str, str]) -> None:
        self.target = target
        self.env = env
        self.instances: list[Any] = []  # tests.support.live.ChatServerInstance, beyond the primary

    @property
    def name(self) -> str:
        return f"chatserver-{1 + len(self.instances)}x-redis"

    def add_instance(self) -> None:
        """Start one more chat server on its own port, same Django, same Redis and prefix."""
        self.instances.append(self.target.live.add_chatserver(self.env))

    def create_rooms(self, slugs: list[str]) -> None:
        self.target.create_rooms(slugs)

    def ws_url(self, slug: str, index: int = 0) -> str:
        url = self.target.ws_url(slug)
        choice = index % (1 + len(self.instances))
        return url if choice == 0 else self.instances[choice - 1].ws_url(url)

    def gap_fills(self) -> list[float]:
        """Each instance's `chat_redis_gap_fills_total` (reads from Django to fill an id gap)."""
        urls = [
            self.target.live.chat_internal_url,  # metrics live on the internal listener
            *(instance.internal_url for instance in self.instances),
        ]
        totals = []
        for url in urls:
            text = requests.get(url + "/metrics", timeout=10).text
            found = re.search(r"^chat_redis_gap_fills_total ([0-9.e+-]+)$", text, re.MULTILINE)
            totals.append(float(found.group(1)) if found else float("nan"))
        return totals

    @property
    def chat_pids(self) -> list[int]:
        extra = [instance.process.pid for instance in self.instances]
        return self.target.chat_pids + [pid for pid in extra if pid]

    @property
    def django_pids(self) -> list[int]:
        return self.target.django_pids
