"""The systems under load: the reference broadcaster, the real Django + chat server, and the
Django Channels chat tutorial on Daphne (`bench/channels_peer`) as a peer.

All answer the same questions: where client number i of room R connects (`ws_url`), which
processes to charge CPU and memory to (`chat_pids`, `django_pids`), and how to start from a fresh
server process (`restart`). `LiveTarget.over_redis` turns the real system into a `ClusterTarget`:
chat server instances sharing a Redis, a room's clients spread over them.
"""

from __future__ import annotations

import os
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
from urllib.parse import urlsplit, urlunsplit

import requests

from bench.loadgen import TUTORIAL
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
        # Per other checkout run by `restart_django`: its database and static files.
        self.checkout_env: dict[Path, dict[str, str]] = {}
        self.created_databases: list[str] = []  # PostgreSQL databases to drop on `stop`

    def start(self) -> LiveTarget:
        self.live.start()
        return self

    def stop(self) -> None:
        try:
            self.live.stop()
            for name in self.created_databases:
                drop_database(self.live.env["DATABASE_URL"], name)
        finally:
            self.workdir.cleanup()

    def restart(self, extra_env: dict[str, str] | None = None) -> None:
        """A fresh chat server process (Django and its database stay)."""
        self.live.chatserver.env.update(extra_env or {})
        self.live.restart_chatserver()

    def restart_django(self, checkout: Path | None = None) -> None:
        """A fresh Django (gunicorn) from `checkout` (another version of this project, e.g.
        `baseline_checkout`), or from this one with None. The secrets stay.

        Another checkout's code only runs on its own schema, so it gets a database of its own,
        migrated by its own `manage.py` (and its own static files), made on its first start
        (`prepare_checkout`); None switches back to this checkout's database. The chat server
        does not care which database Django uses: it knows rooms by slug.
        """
        django = self.live.django
        if checkout is None:
            django.cwd = ROOT
            django.env.pop("PYTHONPATH", None)
            for key in ("DATABASE_URL", "DJANGO_STATIC_ROOT"):
                django.env[key] = self.live.env[key]
        else:
            django.env.update(self.prepare_checkout(checkout))
            # gunicorn imports the project from its working directory; PYTHONPATH comes before
            # the editable install's path, so that checkout's `chat` is the one imported.
            django.cwd = checkout
        self.live.stop_django()
        self.live.start_django()

    def prepare_checkout(self, checkout: Path) -> dict[str, str]:
        """The environment that runs `checkout` on a database of its own, made once per
        checkout: a fresh SQLite file in this target's workdir, or beside a PostgreSQL
        `LIVE_DATABASE_URL` a fresh database on the same server (dropped by `stop`); then that
        checkout's `manage.py migrate` and `collectstatic`. Raises RuntimeError with the output
        when either fails."""
        if checkout in self.checkout_env:
            return self.checkout_env[checkout]
        index = len(self.checkout_env) + 1
        workdir = Path(self.workdir.name)
        url = self.live.env["DATABASE_URL"]
        if url.startswith("sqlite:"):
            url = f"sqlite:///{workdir / f'checkout-{index}.sqlite3'}"
        else:
            name = create_database(url, f"checkout{index}")
            self.created_databases.append(name)
            url = urlunsplit(urlsplit(url)._replace(path="/" + name))
        env = {
            "DATABASE_URL": url,
            "DJANGO_STATIC_ROOT": str(workdir / f"static-checkout-{index}"),
            "PYTHONPATH": str(checkout),
        }
        django_env = {**self.live.django.env, **env}
        manage(checkout, django_env, "migrate", "--noinput", "-v", "0")
        manage(checkout, django_env, "collectstatic", "--noinput", "-v", "0")
        self.checkout_env[checkout] = env
        return env

    def persist_batches(self) -> tuple[float, float]:
        """The chat server's batches sent to Django so far and the items in them
        (`chat_persist_batch_size` count and sum, from its internal listener's /metrics)."""
        text = requests.get(self.live.chat_internal_url + "/metrics", timeout=10).text
        figures = []
        for name in ("chat_persist_batch_size_count", "chat_persist_batch_size_sum"):
            found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
            figures.append(float(found.group(1)) if found else float("nan"))
        return figures[0], figures[1]

    def create_rooms(self, slugs: list[str]) -> None:
        """Create guest rooms in one ORM call (one `manage.py` per room would take seconds),
        through the checkout and database the running Django uses (`restart_django`).

        `allow_guests=True` makes a guest room in every revision (since `visibility` came, the
        model derives it from `allow_guests`)."""
        django = self.live.django
        code = (
            "from chat.models import Room\n"
            "Room.objects.bulk_create([Room(slug=s, name=s, allow_guests=True) "
            f"for s in {slugs!r}], ignore_conflicts=True)\n"
        )
        manage(Path(django.cwd), django.env, "shell", "-c", code)

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


def manage(checkout: Path, env: dict[str, str], *args: str) -> str:
    """Run `checkout`'s `manage.py` (from `checkout`, so that its project is the one imported;
    `env` must carry its DATABASE_URL) and return its standard output. Raises RuntimeError with
    the output when it fails."""
    done = subprocess.run(
        [sys.executable, str(checkout / "manage.py"), *args],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} in {checkout} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def create_database(url: str, label: str) -> str:
    """A new empty PostgreSQL database on the server of `url`, connected as `url` says; returns
    its name (`url`'s database, `label` and a random suffix, within PostgreSQL's 63 bytes)."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/')[:40]}_{label}_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(url: str, name: str) -> None:
    """Drop database `name` (made by `create_database`) on the server of `url`, connected as
    `url` says, even with sessions left (`WITH (FORCE)`, PostgreSQL 13+)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextmanager
def baseline_checkout(revision: str) -> Iterator[Path]:
    """This repository's files at `revision` (`git archive`) in a temporary directory, removed
    afterwards: an older Django to run beside the current one (`LiveTarget.restart_django`
    gives it a database of its own schema)."""
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as directory:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
            check=True,
            capture_output=True,
            timeout=120,
        ).stdout
        subprocess.run(["tar", "-x", "-C", directory], input=archive, check=True, timeout=120)
        yield Path(directory)


class ClusterTarget:
    """Chat server instances of one `LiveTarget` sharing a Redis; one Django behind them.

    Client i of a room connects to instance i % n with the room's ticket (as a load balancer
    would route it): with two instances, half of each room's sockets, and one of its two senders,
    are on each. With `by_room`, a room's clients all go to one instance instead, rooms dealt
    round-robin in the order they are first asked for (a balancer routing on the room path).
    """

    def __init__(self, target: LiveTarget, env: dict[str, str]) -> None:
        self.target = target
        self.env = env
        self.instances: list[Any] = []  # tests.support.live.ChatServerInstance, beyond the primary
        self.by_room = False
        self._room_order: dict[str, int] = {}

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
        if self.by_room:
            index = self._room_order.setdefault(slug, len(self._room_order))
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


class ChannelsTarget:
    """The Channels tutorial chat (`bench/channels_peer`) served by one Daphne process.

    `layer` is `memory` (the tutorial's in-memory channel layer) or `redis` (channels-redis on
    `redis_url`, under a key prefix unique to this target, deleted on `close`), and with `save`
    every message is stored as a row in the peer's own SQLite database before the broadcast.
    The database lives in a temporary directory, migrated once by `start`. Clients speak the
    tutorial's frames (`{"message": ...}`, no hello, no ticket) on `/ws/chat/<room>/`.

    Django runs inside Daphne, so all the peer's CPU is `chat_pids`; Redis's CPU (`redis_pids`,
    the local server's whole process, shared with anything else using it) is reported apart.
    """

    def __init__(self, layer: str = "memory", redis_url: str = "", save: bool = False) -> None:
        from tests.support.live import ManagedProcess

        if layer not in ("memory", "redis"):
            raise ValueError(f"unknown channel layer {layer!r}")
        self.name = f"channels_{layer}"
        self.layer = layer
        self.redis_url = redis_url
        self.prefix = f"bench-channels-{secrets.token_hex(6)}"
        self.workdir = tempfile.TemporaryDirectory(prefix=f"bench-{self.name}-")
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("BENCH_CHANNELS_")},
            "DJANGO_SETTINGS_MODULE": "bench.channels_peer.settings",
            "BENCH_CHANNELS_DB": str(Path(self.workdir.name) / "db.sqlite3"),
            "BENCH_CHANNELS_SECRET_KEY": secrets.token_urlsafe(32),
            "BENCH_CHANNELS_LAYER": layer,
            "BENCH_CHANNELS_REDIS_URL": redis_url,
            "BENCH_CHANNELS_PREFIX": self.prefix,
            "BENCH_CHANNELS_SAVE": "1" if save else "0",
            "PYTHONUNBUFFERED": "1",
        }
        self.daphne = ManagedProcess(
            self.name,
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "bench.channels_peer.asgi:application",
            ],
            self.env,
            Path(self.workdir.name) / "daphne.log",
        )
        self.migrated = False
        self._redis_pids: list[int] | None = None

    def start(self) -> ChannelsTarget:
        """Migrate the database (first start only) and start Daphne on its port."""
        if not self.migrated:
            subprocess.run(
                [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=self.env,
                check=True,
                stdin=subprocess.DEVNULL,
                timeout=120,
            )
            self.migrated = True
        self.daphne.start()
        try:
            wait_for_port(self.port, self.daphne.proc, timeout=30)
        except Exception as exc:
            self.daphne.stop()
            raise RuntimeError(f"{self.name} did not start: {self.daphne.log_tail(15)}") from exc
        return self

    def stop(self) -> None:
        """Stop Daphne (the database and Redis keys stay until `close`)."""
        self.daphne.stop(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextmanager
    def running(self) -> Iterator[ChannelsTarget]:
        """A fresh Daphne for the block, stopped after it, also on error: a peer that fell
        behind never spends CPU during another system's measurement."""
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def close(self) -> None:
        """Stop Daphne, delete this target's Redis keys and its temporary directory."""
        try:
            self.stop()
            if self.layer == "redis":
                import redis

                client = redis.Redis.from_url(self.redis_url)
                try:
                    keys = list(client.scan_iter(match=f"{self.prefix}*", count=1000))
                    if keys:
                        client.delete(*keys)
                finally:
                    client.close()
        finally:
            self.workdir.cleanup()

    def create_rooms(self, slugs: list[str]) -> None:
        """Rooms (groups) exist as soon as someone joins them."""

    def ws_url(self, slug: str, index: int = 0) -> str:
        # The tutorial's route takes \w+ room names: the slug's hyphens become underscores.
        return f"ws://127.0.0.1:{self.port}/ws/chat/{slug.replace('-', '_')}/"

    origin = "http://127.0.0.1"  # the tutorial's AllowedHostsOriginValidator wants one
    dialect = TUTORIAL

    def saved_messages(self) -> int:
        """Rows in the peer's message table (read with sqlite3, not through Django)."""
        import sqlite3

        with sqlite3.connect(self.env["BENCH_CHANNELS_DB"]) as db:
            return db.execute("SELECT COUNT(*) FROM channels_peer_message").fetchone()[0]

    @property
    def chat_pids(self) -> list[int]:
        pid = self.daphne.pid if self.daphne.running() else None
        return [pid] if pid else []

    @property
    def django_pids(self) -> list[int]:
        return []  # Django runs inside Daphne: its CPU is in chat_pids

    @property
    def redis_pids(self) -> list[int]:
        """The local Redis server's pid when the layer is Redis and it runs on this machine."""
        if self.layer != "redis":
            return []
        if self._redis_pids is None:
            import redis

            self._redis_pids = []
            client = redis.Redis.from_url(self.redis_url)
            try:
                pid = int(client.info("server")["process_id"])
            finally:
                client.close()
            try:
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().startswith("redis-server"):
                        self._redis_pids = [pid]
            except OSError:
                pass  # not on this machine (or not visible): not counted
        return self._redis_pids
