"""Real processes for integration, browser and benchmark runs.

`LiveSystem` starts a real Django (gunicorn) and a real chat server (`twistd -n -y chatserver.tac`;
further ones also through the twistd plugin, `add_chatserver(launcher="twistd" / "twist")`) on
free ports, with generated secrets and a throw-away SQLite database (or `LIVE_DATABASE_URL`), and
always stops them. It talks to them only over HTTP and the command line, as an operator would.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy; raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
        except Exception as exc:  # the condition may fail while a process starts
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise TimeoutError(f"condition not met within {timeout}s (last error: {last_error!r})")


def rss_bytes(pid: int, peak: bool = False) -> int:
    """Resident memory of a process (VmRSS from /proc/<pid>/status), in bytes.

    With `peak`, the most it ever held (VmHWM): what a burst cost even after it was freed.
    """
    key = "VmHWM:" if peak else "VmRSS:"
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {key} for pid {pid}")


def sign_headers(secret: str, method: str, target: str, body: bytes = b"") -> dict[str, str]:
    """Service-to-service signature headers, written from docs/protocol.md on their own."""
    ts = str(int(time.time()))
    msg = b"\n".join([ts.encode(), method.upper().encode(), target.encode(), body])
    digest = hmac.new(secret.encode(), msg, hashlib.sha256).hexdigest()
    return {"X-Chat-Timestamp": ts, "X-Chat-Signature": digest}


class ManagedProcess:
    """One child process with its log file; stopping it never leaves it running."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path = ROOT,
    ):
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        # The checkout by default; elsewhere for a process that must not import from it.
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            self.argv,
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int | None:
        """Send `sig`, wait for the exit, and SIGKILL the whole group past `timeout`."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        return proc.returncode

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class LiveSystem:
    """A real Django and a real chat server on free ports, for one test session."""

    def __init__(self, workdir: Path, extra_env: Mapping[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.django_port = free_port()
        self.chat_port = free_port()
        self.chat_internal_port = free_port()
        self.secret = secrets.token_urlsafe(32)
        self.django_url = f"http://127.0.0.1:{self.django_port}"
        self.chat_url = f"http://127.0.0.1:{self.chat_port}"
        # Detailed /healthz and /metrics: the chat server's internal listener.
        self.chat_internal_url = f"http://127.0.0.1:{self.chat_internal_port}"
        database_url = os.environ.get("LIVE_DATABASE_URL") or (
            f"sqlite:///{self.workdir / 'db.sqlite3'}"
        )
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "django_twisted_chat.settings",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(32),
            "DJANGO_DEBUG": "0",
            "DJANGO_STATIC_ROOT": str(self.workdir / "static"),
            # Uploaded attachments stay in the test's directory, never in the checkout's media/.
            "DJANGO_MEDIA_ROOT": str(self.workdir / "media"),
            "DATABASE_URL": database_url,
            "CHAT_SHARED_SECRET": self.secret,
            "CHAT_PUBLIC_URL": self.chat_url,
            "CHAT_INTERNAL_URL": self.chat_url,
            "CHAT_DJANGO_URL": self.django_url,
            "CHAT_PORT": str(self.chat_port),
            "CHAT_INTERNAL_PORT": str(self.chat_internal_port),
            "CHAT_INTERFACE": "127.0.0.1",
            "CHAT_ALLOWED_ORIGINS": f"{self.django_url},http://localhost:{self.django_port}",
            "PYTHONUNBUFFERED": "1",
            # Every test client connects from 127.0.0.1: the per-address budget and connection
            # cap would count all of a session's tests as one client. Drills that test them
            # lower these again; the per-identity limits stay at their defaults.
            "CHAT_ADDRESS_RATE": "1000000",
            "CHAT_ADDRESS_BURST": "1000000",
            "CHAT_MAX_ADDRESS_CONNECTIONS": "1000000",
            # Every browser context and test client is a new guest from 127.0.0.1; the tests of
            # the guest identity limit set their own rate.
            "DJANGO_RATELIMIT_GUEST_IDENTITY": "100000/m",
            # Mail (password reset links) is printed into django.log, where tests read it.
            "DJANGO_EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend",
        }
        self.env.pop("DJANGO_ALLOWED_HOSTS", None)
        if extra_env:
            self.env.update(extra_env)
        self.media_root = Path(self.env["DJANGO_MEDIA_ROOT"])
        self.django = ManagedProcess(
            "django",
            [
                str(BIN / "gunicorn"),
                "django_twisted_chat.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.django_port}",
                "--worker-class",
                "gthread",
                "--workers",
                os.environ.get("LIVE_DJANGO_WORKERS", "2"),
                "--threads",
                "8",
                "--graceful-timeout",
                "5",
                # Several test systems run at once: none needs gunicorn's shared control socket.
                "--no-control-socket",
            ],
            self.env,
            self.workdir / "django.log",
        )
        self.chatserver = self._chatserver_process("chatserver", self.env)
        self.extra_chatservers: list[ChatServerInstance] = []

    def _chatserver_process(
        self, name: str, env: Mapping[str, str], argv: list[str] | None = None
    ) -> ManagedProcess:
        return ManagedProcess(
            name,
            argv or [str(BIN / "twistd"), "--pidfile=", "-n", "-y", str(ROOT / "chatserver.tac")],
            env,
            self.workdir / f"{name}.log",
        )

    def plugin_argv(self, launcher: str, port: int, internal_port: int) -> list[str]:
        """The twistd plugin's command line under `twistd` or `twist`: the listeners and Django's
        URL as options (they override the environment's CHAT_PORT, CHAT_DJANGO_URL...)."""
        options = [
            "chatserver",
            "--port",
            f"tcp:{port}:interface=127.0.0.1",
            "--internal-port",
            f"tcp:{internal_port}",
            "--django-url",
            self.django_url,
        ]
        if launcher == "twistd":
            return [str(BIN / "twistd"), "--pidfile=", "-n", *options]
        if launcher == "twist":
            return [str(BIN / "twist"), *options]
        raise ValueError(f"unknown launcher {launcher!r}")

    def add_chatserver(
        self, extra_env: Mapping[str, str] | None = None, launcher: str = "tac"
    ) -> ChatServerInstance:
        """Start one more chat server on its own free port (same Django, same secret).

        `launcher`: "tac" (`twistd -n -y chatserver.tac`, everything from the environment) or
        "twistd" / "twist" (the plugin, see `plugin_argv`).
        """
        port, internal_port = free_port(), free_port()
        env = {
            **self.env,
            "CHAT_PORT": str(port),
            "CHAT_INTERNAL_PORT": str(internal_port),
            **(extra_env or {}),
        }
        name = f"chatserver-{len(self.extra_chatservers) + 2}"
        argv = None if launcher == "tac" else self.plugin_argv(launcher, port, internal_port)
        process = self._chatserver_process(name, env, argv)
        instance = ChatServerInstance(self, process, port, internal_port)
        self.extra_chatservers.append(instance)
        instance.start()
        return instance

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> LiveSystem:
        """Migrate, collect static files, then start Django and the chat server."""
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput", "-v", "0")
        self.start_django()
        self.start_chatserver()
        return self

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL past the deadline)."""
        for instance in self.extra_chatservers:
            instance.process.stop()
        self.chatserver.stop()
        self.django.stop()

    def __enter__(self) -> LiveSystem:
        try:
            return self.start()
        except BaseException:
            self.stop()  # a half-started system must not leave processes behind
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start_django(self) -> None:
        self.django.start()
        self.wait_http(self.django, f"{self.django_url}/chats/")

    def stop_django(self) -> None:
        self.django.stop()

    def start_chatserver(self) -> None:
        self.chatserver.start()
        self.wait_http(self.chatserver, f"{self.chat_url}/healthz")
        self.wait_http(self.chatserver, f"{self.chat_internal_url}/healthz")

    def stop_chatserver(self) -> int | None:
        """Graceful stop (SIGTERM); returns the exit status."""
        return self.chatserver.stop(signal.SIGTERM)

    def kill_chatserver(self) -> None:
        self.chatserver.stop(signal.SIGKILL)

    def restart_chatserver(self) -> None:
        self.stop_chatserver()
        self.start_chatserver()

    def wait_http(self, process: ManagedProcess, url: str, timeout: float = 30.0) -> None:
        """Wait until `url` answers at all; fail early with the log when the process exits."""

        def answers() -> bool:
            if not process.running():
                raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
            # Any answer will do, a redirect too (DJANGO_SECURE sends plain http to https).
            requests.get(url, timeout=2, allow_redirects=False)
            return True

        try:
            wait_until(answers, timeout=timeout, interval=0.1)
        except (TimeoutError, RuntimeError) as exc:
            process.stop(signal.SIGKILL)
            raise RuntimeError(
                f"{process.name} did not come up: {exc}\n{process.log_tail()}"
            ) from exc

    # -- operator's tools ---------------------------------------------------------------------

    def manage(self, *args: str, input: str | None = None) -> str:
        """Run `manage.py` with this system's environment; returns its standard output."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
            )
        return result.stdout

    def shell(self, code: str) -> str:
        """Run Python code in `manage.py shell` (the ORM, as an operator would)."""
        return self.manage("shell", "-c", code)

    def create_room(self, slug: str, name: str | None = None, guests: bool = True) -> None:
        args = ["createroom", slug, "--name", name or slug.replace("-", " ").title()]
        if guests:
            args.append("--guests")
        self.manage(*args)

    def create_user(self, username: str, password: str, staff: bool = False) -> None:
        self.shell(
            "from django.contrib.auth import get_user_model\n"
            f"u = get_user_model().objects.create_user({username!r}, password={password!r})\n"
            f"u.is_staff = u.is_superuser = {staff!r}\n"
            "u.save()\n"
        )

    def archive_room(self, slug: str) -> None:
        """Archive a room the way an operator would in the shell: save it (the model signal
        tells the chat server after commit)."""
        self.shell(
            "from chat.models import Room\n"
            f"room = Room.objects.get(slug={slug!r})\n"
            "room.is_archived = True\n"
            "room.save()\n"
        )

    # -- contract-level clients ---------------------------------------------------------------

    def internal_get(self, base_url: str, target: str) -> requests.Response:
        """A signed GET on an internal API (Django's or the chat server's)."""
        return requests.get(
            base_url + target, headers=sign_headers(self.secret, "GET", target), timeout=10
        )

    def internal_post(self, base_url: str, target: str, payload: Any) -> requests.Response:
        body = json.dumps(payload).encode()
        headers = sign_headers(self.secret, "POST", target, body)
        headers["Content-Type"] = "application/json"
        return requests.post(base_url + target, data=body, headers=headers, timeout=10)

    def store_messages(
        self, slug: str, count: int, body: str = "missed", chunk: int = 500
    ) -> list[dict[str, Any]]:
        """Store `count` messages ("<body> <n>") straight through Django's internal batch.

        The chat server does not see them: use a room nobody is in, or stop the chat server
        first (its recent buffer believes every message passes through it). Returns the stored
        messages in id order.
        """
        stored: list[dict[str, Any]] = []
        run = secrets.token_hex(4)
        for start in range(0, count, chunk):
            items = [
                {
                    "room": slug,
                    "nonce": f"bulk-{run}-{n}",
                    "body": f"{body} {n}",
                    "name": "bulk",
                    "uid": "g:" + "0" * 16,
                    "user_id": None,
                    "guest": True,
                }
                for n in range(start, min(count, start + chunk))
            ]
            response = self.internal_post(
                self.django_url, "/internal/messages/batch/", {"messages": items}
            )
            response.raise_for_status()
            results = response.json()["results"]
            if not all(r.get("ok") for r in results):
                raise RuntimeError(f"bulk store refused: {results[:3]}")
            stored += [r["message"] for r in results]
        return stored

    def stored_messages(self, slug: str) -> list[dict[str, Any]]:
        """Every visible message Django stored for the room, in id order."""
        messages: list[dict[str, Any]] = []
        after = 0
        while True:
            target = f"/internal/rooms/{slug}/messages/?after={after}&limit=1000"
            response = self.internal_get(self.django_url, target)
            response.raise_for_status()
            page = response.json()
            messages.extend(page["messages"])
            if not page["has_more"] or not page["messages"]:
                return messages
            after = page["messages"][-1]["id"]

    def guest_session(self, slug: str) -> requests.Session:
        """A browser-like session that has visited a guest room (so it holds a guest name)."""
        session = requests.Session()
        session.get(f"{self.django_url}/chats/{slug}/", timeout=10).raise_for_status()
        return session

    def user_session(self, username: str, password: str) -> requests.Session:
        """A session signed in through the real login form (CSRF included)."""
        session = requests.Session()
        login = f"{self.django_url}/accounts/login/"
        session.get(login, timeout=10).raise_for_status()
        response = session.post(
            login,
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": login},
            timeout=10,
        )
        response.raise_for_status()
        if "sessionid" not in session.cookies:
            raise RuntimeError(f"sign-in as {username} failed")
        return session

    def ticket(self, session: requests.Session, slug: str) -> dict[str, Any]:
        response = session.get(f"{self.django_url}/api/rooms/{slug}/ticket/", timeout=10)
        response.raise_for_status()
        return response.json()

    @property
    def origin(self) -> str:
        """The Origin a browser on the Django pages sends."""
        parts = urlsplit(self.django_url)
        return f"{parts.scheme}://{parts.netloc}"


class ChatServerInstance:
    """A further chat server process of a `LiveSystem` (for multi-instance tests)."""

    def __init__(self, system: LiveSystem, process: ManagedProcess, port: int, internal_port: int):
        self.system = system
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.internal_url = f"http://127.0.0.1:{internal_port}"
        self.ws_base = f"ws://127.0.0.1:{port}"

    def start(self) -> None:
        self.process.start()
        self.system.wait_http(self.process, f"{self.url}/healthz")
        self.system.wait_http(self.process, f"{self.internal_url}/healthz")

    def stop(self) -> int | None:
        return self.process.stop(signal.SIGTERM)

    def kill(self) -> None:
        self.process.stop(signal.SIGKILL)

    def ws_url(self, ticket_url: str) -> str:
        """The same ticket, pointed at this instance instead of the primary one."""
        return self.ws_base + ticket_url[ticket_url.index("/ws/") :]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_ticket(
    secret: str, room: str, *, name: str = "tester", ttl: int = 60, **extra: Any
) -> str:
    """A ticket in the docs/protocol.md format (an HS256 JSON Web Token), written here by hand
    with hmac and base64, independently of both servers and of PyJWT."""
    now = int(time.time())
    claims = {
        "aud": f"room:{room}",
        "sub": "g:" + secrets.token_hex(8),
        "user_id": None,
        "name": name,
        "guest": True,
        "iat": now,
        "exp": now + ttl,
        **extra,
    }
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    signed = header + "." + b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return signed + "." + b64url(signature)


class RedisServer:
    """A private `redis-server` on a free port (no persistence) that a test may kill and restart.

    The machine's shared Redis must never be stopped by a test; this one belongs to the test.
    """

    BINARY = "/usr/bin/redis-server"

    def __init__(self, workdir: Path, port: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.process = ManagedProcess(
            "redis",
            [
                self.BINARY,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            os.environ,
            self.workdir / "redis.log",
        )

    def start(self) -> RedisServer:
        """Start and wait until it answers PING."""
        self.process.start()

        def answers() -> bool:
            if not self.process.running():
                raise RuntimeError(f"redis-server exited:\n{self.process.log_tail()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_until(answers, timeout=15)
        return self

    def kill(self) -> None:
        """SIGKILL: connections drop at once, nothing is saved."""
        self.process.stop(signal.SIGKILL)

    def stop(self) -> None:
        self.process.stop(signal.SIGTERM)
