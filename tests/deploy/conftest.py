"""The shipped layout, running: Debian's nginx with deploy/nginx/chat.conf in front of a real
gunicorn and two real chat servers over Redis, configured from deploy/chat.env.example.

Only what must differ on a test machine is changed: free loopback ports, a certificate from a
test CA for `localhost` (instead of chat.example.org), temporary paths, the test's own secrets,
database and Redis channel prefix. Everything else (the production switches, proxy trust, the
host list, where Django reaches the chat servers) is the example file's.
"""

from __future__ import annotations

import os
import secrets
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from tests.support.live import ChatServerInstance, LiveSystem, free_port, wait_until
from tests.support.nginx import SHIPPED_HOST, NginxServer, render_site
from tests.support.wsclient import ChatClient

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "chat.env.example"
PLACEHOLDER = "change-me"
HOST = "localhost"
SHARED_REDIS = ("127.0.0.1", 6379)


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines as systemd's EnvironmentFile= reads them (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier() or key.upper() != key:
            raise AssertionError(f"{path}:{number}: not KEY=value: {line!r}")
        values[key] = value
    return values


def redis_problem() -> str | None:
    """Why the machine's Redis cannot be used, or None."""
    try:
        with socket.create_connection(SHARED_REDIS, timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                return "the local Redis did not answer PING"
    except OSError as exc:
        return f"the local Redis at 127.0.0.1:6379 is not reachable: {exc}"
    return None


@dataclass
class Site:
    """The running layout, and clients that reach it the way browsers do: through nginx only."""

    system: LiveSystem
    second: ChatServerInstance
    nginx: NginxServer
    origin: str
    http_origin: str
    internal_url: str
    ca_file: str
    ssl_context: ssl.SSLContext

    @property
    def instances(self) -> list[str]:
        """The chat servers' own URLs (for signed stats calls that bypass nginx)."""
        return [self.system.chat_url, self.second.url]

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.origin + path, verify=self.ca_file, timeout=10, **kwargs)

    def guest(self, slug: str) -> requests.Session:
        """A browser-like session that opened the room page through nginx (a guest name)."""
        session = requests.Session()
        session.verify = self.ca_file
        # Otherwise REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override `verify`.
        session.trust_env = False
        session.get(f"{self.origin}/chats/{slug}/", timeout=10).raise_for_status()
        return session

    def ticket(self, session: requests.Session, slug: str) -> dict[str, Any]:
        response = session.get(f"{self.origin}/api/rooms/{slug}/ticket/", timeout=10)
        response.raise_for_status()
        return response.json()

    def connect(self, url: str) -> ChatClient:
        return ChatClient(url, origin=self.origin, ssl=self.ssl_context)

    def stats(self, instance_url: str) -> dict[str, Any]:
        response = self.system.internal_get(instance_url, "/internal/stats")
        response.raise_for_status()
        return response.json()

    def pollers(self) -> int:
        return sum(self.stats(url)["pollers"] for url in self.instances)


def production_env(origin: str, internal_url: str) -> dict[str, str]:
    """deploy/chat.env.example with the test's origin; secrets and machine paths left to
    LiveSystem (its own secrets, database, static root, Django address)."""
    example = read_env_file(ENV_EXAMPLE)
    env = {}
    for key, value in example.items():
        machine_paths = ("DJANGO_STATIC_ROOT", "DJANGO_MEDIA_ROOT", "CHAT_DJANGO_URL")
        if PLACEHOLDER in value or key in machine_paths:
            continue
        env[key] = value.replace(f"https://{SHIPPED_HOST}", origin).replace(SHIPPED_HOST, HOST)
    # The rate-limit cache would be shared with every other run on this machine's Redis: keep
    # it per process here (the shared cache is pinned by tests/chat/test_rate_limits.py).
    env.pop("DJANGO_REDIS_URL", None)
    # Production's default (hashed names), which the test settings turn off for this process.
    env["DJANGO_MANIFEST_STATIC"] = "1"
    env["CHAT_INTERNAL_URL"] = internal_url
    env["CHAT_REDIS_PREFIX"] = f"deploy-test-{secrets.token_hex(6)}:"
    return env


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A test CA and a certificate it issued for localhost (trustme)."""
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert(HOST)
    paths = {
        "ca": directory / "ca.pem",
        "cert": directory / "fullchain.pem",
        "key": directory / "privkey.pem",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    issued.private_key_pem.write_to_path(str(paths["key"]))
    for blob in issued.cert_chain_pems:
        blob.write_to_path(str(paths["cert"]), append=True)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return {**paths, "context": context}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, tls: dict[str, Any]) -> Iterator[Site]:
    """nginx (shipped site) -> gunicorn + two chat servers over the machine's Redis."""
    problem = redis_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required in CI: {problem}")
        pytest.skip(problem)
    workdir = tmp_path_factory.mktemp("deploy")
    https_port, http_port, internal_port = free_port(), free_port(), free_port()
    origin = f"https://{HOST}:{https_port}"
    internal_url = f"http://127.0.0.1:{internal_port}"
    system = LiveSystem(workdir / "live", extra_env=production_env(origin, internal_url))
    nginx: NginxServer | None = None
    try:
        system.start()
        second = system.add_chatserver()
        rendered = render_site(
            host=HOST,
            https_port=https_port,
            http_port=http_port,
            internal_port=internal_port,
            django=f"127.0.0.1:{system.django_port}",
            chat_servers=[f"127.0.0.1:{system.chat_port}", f"127.0.0.1:{second.port}"],
            certificate=tls["cert"],
            certificate_key=tls["key"],
            static_root=Path(system.env["DJANGO_STATIC_ROOT"]),
        )
        nginx = NginxServer(workdir / "nginx", rendered).start()
        wait_until(
            lambda: requests.get(f"{origin}/chats/", verify=str(tls["ca"]), timeout=2).ok,
            timeout=30,
        )
        yield Site(
            system=system,
            second=second,
            nginx=nginx,
            origin=origin,
            http_origin=f"http://{HOST}:{http_port}",
            internal_url=internal_url,
            ca_file=str(tls["ca"]),
            ssl_context=tls["context"],
        )
    finally:
        if nginx is not None:
            nginx.stop()
        system.stop()
