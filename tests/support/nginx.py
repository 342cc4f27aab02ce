"""Debian's nginx running the shipped site (deploy/nginx/chat.conf) for a test, as the current user.

`render_site` turns the shipped file into one that listens on free loopback ports, points its
upstreams at a `LiveSystem`'s processes and its certificate and static paths at a temporary
directory. It changes nothing else: every replacement must find its text, so a shipped file that
no longer has the layout the test expects fails loudly instead of being half rendered.
`NginxServer` runs `nginx -p <tmp> -c <tmp>/nginx.conf` in the foreground (`daemon off`), with its
pid file, logs and temporary directories under the prefix, and stops it at the end.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tests.support.live import ROOT, ManagedProcess

SHIPPED_SITE = ROOT / "deploy" / "nginx" / "chat.conf"
SHIPPED_HOST = "chat.example.org"


def nginx_binary() -> str:
    """Debian installs nginx in /usr/sbin, which is not on a normal user's PATH."""
    found = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if found is None:
        raise RuntimeError("nginx is not installed: run `make deploy-deps`")
    return found


def render_site(
    *,
    host: str,
    https_port: int,
    http_port: int,
    internal_port: int,
    django: str,
    chat_servers: Sequence[str],
    certificate: Path,
    certificate_key: Path,
    static_root: Path,
    shipped: Path = SHIPPED_SITE,
) -> str:
    """The shipped site with the deployment-specific values swapped for the test's."""
    text = shipped.read_text()
    certs = f"/etc/letsencrypt/live/{SHIPPED_HOST}/"
    replacements = [
        (certs + "fullchain.pem", str(certificate)),
        (certs + "privkey.pem", str(certificate_key)),
        (SHIPPED_HOST, host),
        ("server 127.0.0.1:8000;", f"server {django};"),
        ("server 127.0.0.1:9000 ", f"server {chat_servers[0]} "),
        ("server 127.0.0.1:9001 ", f"server {chat_servers[1]} "),
        ("listen 127.0.0.1:8090;", f"listen 127.0.0.1:{internal_port};"),
        ("listen 443 ", f"listen 127.0.0.1:{https_port} "),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 80 ", f"listen 127.0.0.1:{http_port} "),
        ("alias /srv/chat/staticfiles/;", f"alias {static_root}/;"),
    ]
    for old, new in replacements:
        if old not in text:
            raise AssertionError(f"{shipped} no longer contains {old!r}: update the test's render")
        text = text.replace(old, new)
    return text


class NginxServer:
    """One nginx master (and worker) with a private prefix, running a rendered site."""

    def __init__(self, workdir: Path, site: str):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / name).mkdir(exist_ok=True)
        (self.workdir / "chat.conf").write_text(site)
        self.conf = self.workdir / "nginx.conf"
        self.conf.write_text(self._main_conf())
        self.argv = [nginx_binary(), "-p", str(self.workdir), "-c", str(self.conf)]
        self.process = ManagedProcess("nginx", self.argv, os.environ, self.workdir / "nginx.log")

    def _main_conf(self) -> str:
        tmp = self.workdir
        # As root, nginx would switch its workers to "nobody", who cannot read the prefix; as
        # anyone else the directive is ignored (with a warning), so only root gets it.
        user = ""
        if os.geteuid() == 0:
            user = (
                f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};"
            )
        return f"""
{user}
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 1024; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/chat.conf;
}}
"""

    def check(self) -> None:
        """`nginx -t`: the rendered configuration parses (a clear error if not)."""
        result = subprocess.run(
            [*self.argv, "-t"], capture_output=True, text=True, timeout=30, cwd=self.workdir
        )
        if result.returncode != 0:
            raise RuntimeError(f"nginx -t failed:\n{result.stderr}")

    def start(self) -> NginxServer:
        self.check()
        self.process.start()
        return self

    def error_log(self) -> str:
        try:
            return (self.workdir / "error.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        # SIGTERM: nginx's fast shutdown (a graceful SIGQUIT would wait for open WebSockets).
        self.process.stop(signal.SIGTERM, timeout=10)
