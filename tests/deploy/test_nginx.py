"""A chat through the shipped nginx site (deploy/nginx/chat.conf), over TLS, with the production
environment of deploy/chat.env.example: one origin for pages, static files, WebSockets and long
polls; the internal APIs out of reach; other host names refused."""

from __future__ import annotations

import io
import json
import re
import socket
import ssl
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

from chatserver.config import ChatServerConfig
from tests.deploy.conftest import HOST, Site
from tests.support.live import ROOT, wait_until
from tests.support.nginx import SHIPPED_SITE

pytestmark = [pytest.mark.integration, pytest.mark.redis]


def nonce() -> str:
    return uuid.uuid4().hex


def location_block(text: str, prefix: str) -> str:
    match = re.search(r"location " + re.escape(prefix) + r" \{(.*?)\n    \}", text, re.S)
    assert match, f"no location {prefix} in {SHIPPED_SITE}"
    return match.group(1)


def seconds(block: str, directive: str) -> int:
    match = re.search(rf"^\s*{directive} (\d+)s;", block, re.M)
    assert match, f"{directive} not set"
    return int(match.group(1))


def test_proxy_timeouts_outlast_the_chat_servers_own():
    """nginx never cuts a healthy connection: the socket timeout is above the chat server's ping
    interval plus ping timeout, the poll timeout above the longest hold (CHAT_POLL_TIMEOUT plus
    the once-a-second sweep), both read from the chat server's own defaults."""
    text = SHIPPED_SITE.read_text()
    defaults = ChatServerConfig(shared_secret="x")
    ws, poll = location_block(text, "/ws/"), location_block(text, "/poll/")
    assert seconds(ws, "proxy_read_timeout") > defaults.ping_interval + defaults.ping_timeout
    assert seconds(ws, "proxy_send_timeout") > defaults.ping_interval + defaults.ping_timeout
    assert seconds(poll, "proxy_read_timeout") > defaults.poll_timeout + 1
    assert "proxy_buffering off;" in poll and "proxy_buffering off;" in ws


def test_pages_come_through_nginx_as_https(site: Site):
    """Django behind nginx sees https (X-Forwarded-Proto): no redirect loop, HSTS and secure
    cookies; plain http on port 80 is redirected to https by nginx itself."""
    page = site.get("/chats/", allow_redirects=False)
    assert page.status_code == 200
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    assert page.headers["Server"].startswith("nginx")
    room = site.get("/accounts/login/")
    assert "secure" in room.headers["Set-Cookie"].lower()
    plain = requests.get(f"{site.http_origin}/chats/?x=1", allow_redirects=False, timeout=10)
    assert plain.status_code == 301
    assert plain.headers["Location"] == f"https://{HOST}/chats/?x=1"


def test_static_files_are_served_by_nginx(site: Site):
    """/static/ is the collectstatic output, read by nginx (a file written after the processes
    started is served, which whitenoise's startup index would not do), gzip-precompressed, and
    hashed names are cached for a year."""
    site.system.create_room("static-check")
    page = site.get("/chats/static-check/").text
    script = re.search(r'src="(/static/[^"]+\.[0-9a-f]{12}\.js)"', page)
    assert script, "the room page links no hashed script"
    hashed = site.get(script.group(1), headers={"Accept-Encoding": "gzip"})
    assert hashed.status_code == 200
    assert hashed.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert hashed.headers.get("Content-Encoding") == "gzip"
    static_root = site.system.env["DJANGO_STATIC_ROOT"]
    with open(f"{static_root}/written-after-start.txt", "w") as probe:
        probe.write("served by nginx")
    late = site.get("/static/written-after-start.txt")
    assert late.status_code == 200 and late.text == "served by nginx"
    assert late.headers["Cache-Control"] == "public, max-age=3600"


def test_internal_apis_are_not_reachable_through_the_public_origin(site: Site):
    """/internal/ answers 404 from nginx whatever the method (Django's and the chat servers'
    signed APIs are for the private network); the loopback control listener reaches a chat
    server with a signed call."""
    assert site.get("/internal/health/").status_code == 404
    posted = requests.post(
        f"{site.origin}/internal/rooms/lobby/archived", verify=site.ca_file, timeout=10
    )
    assert posted.status_code == 404
    assert "nginx" in posted.text  # nginx's own page: nothing behind it was asked
    stats = site.system.internal_get(site.internal_url, "/internal/stats")
    assert stats.status_code == 200 and "connections" in stats.json()
    assert requests.get(f"{site.internal_url}/chats/", timeout=10).status_code == 404


def test_other_host_names_get_nothing(site: Site):
    """A request for another host name (say 127.0.0.1, which Django's ALLOWED_HOSTS lists for the
    chat servers' calls) is closed without an answer, and a TLS client without SNI is refused."""
    https_port = int(site.origin.rsplit(":", 1)[1])
    with pytest.raises(requests.ConnectionError):
        site.get("/chats/", headers={"Host": f"127.0.0.1:{https_port}"})
    with pytest.raises(requests.ConnectionError):
        requests.get(site.http_origin + "/chats/", headers={"Host": "evil.example"}, timeout=10)
    context = ssl.create_default_context(cafile=site.ca_file)
    context.check_hostname = False
    with socket.create_connection(("127.0.0.1", https_port), timeout=10) as raw:
        with pytest.raises(ssl.SSLError):
            context.wrap_socket(raw).close()


def test_two_websockets_and_a_long_poller_chat_through_nginx(site: Site):
    """Alice and Bob on WebSockets and Carol long-polling, all through nginx over TLS with tickets
    whose URLs name the one public origin: everyone gets every message once, in one id order, and
    Django stored each once. Carol's poll is held by a chat server until Alice speaks."""
    slug = "through-nginx"
    site.system.create_room(slug)
    alice_session, bob_session, carol_session = (site.guest(slug) for _ in range(3))
    ticket = site.ticket(alice_session, slug)
    assert ticket["ws_url"].startswith(f"wss://{HOST}:{site.origin.rsplit(':', 1)[1]}/ws/{slug}?")
    assert ticket["poll_url"].startswith(f"{site.origin}/poll/{slug}?ticket=")
    alice = site.connect(ticket["ws_url"])
    bob = site.connect(site.ticket(bob_session, slug)["ws_url"])
    poll_url = site.ticket(carol_session, slug)["poll_url"]
    first = requests.get(poll_url, verify=site.ca_file, timeout=10)
    assert first.status_code == 200 and first.json()["messages"] == []

    sent = [nonce(), nonce(), nonce()]
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(requests.get, poll_url + "&since=0", verify=site.ca_file, timeout=40)
        wait_until(lambda: site.pollers() >= 1 and not held.done(), timeout=15)
        alice.say("from alice", sent[0])
        answer = held.result(timeout=15)
    assert answer.status_code == 200
    assert [m["nonce"] for m in answer.json()["messages"]] == [sent[0]]
    posted = requests.post(
        poll_url, json={"body": "from carol", "nonce": sent[1]}, verify=site.ca_file, timeout=15
    )
    assert posted.status_code == 200 and posted.json()["message"]["nonce"] == sent[1]
    alice.wait_for_messages(2)  # Carol's message was delivered before Bob speaks
    bob.say("from bob", sent[2])

    for client in (alice, bob):
        got = client.wait_for_messages(3)
        assert [m["nonce"] for m in got] == sent
    carol_seen = answer.json()["messages"]
    while len(carol_seen) < 3:
        page = requests.get(
            f"{poll_url}&since={carol_seen[-1]['id']}", verify=site.ca_file, timeout=40
        )
        assert page.status_code == 200
        carol_seen += page.json()["messages"]
    assert [m["nonce"] for m in carol_seen] == sent
    ids = [m["id"] for m in alice.messages()]
    assert ids == sorted(ids) == [m["id"] for m in bob.messages()] == [m["id"] for m in carol_seen]
    assert [m["nonce"] for m in site.system.stored_messages(slug)] == sent
    alice.close()
    bob.close()


def test_attachments_go_through_nginx(site: Site):
    """A signed-in user uploads an image through nginx (its body limit lets 11 MiB through) and
    reads it back with the file's own headers; a body declared over that limit is refused by
    nginx from its head alone, with Django's JSON answer, while the client has sent nothing."""
    slug = "attach-nginx"
    site.system.create_room(slug)
    username, password = "u" + nonce()[:10], nonce()
    site.system.create_user(username, password)
    session = requests.Session()
    session.verify = site.ca_file
    session.trust_env = False
    login = f"{site.origin}/accounts/login/"
    session.get(login, timeout=10).raise_for_status()
    session.post(
        login,
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": login},
        timeout=10,
    ).raise_for_status()
    image = io.BytesIO()
    Image.new("RGB", (300, 100), (1, 2, 3)).save(image, "PNG")
    room_page = f"{site.origin}/chats/{slug}/"
    uploaded = session.post(
        f"{site.origin}/api/rooms/{slug}/attachments/",
        files={"file": ("through.png", image.getvalue(), "image/png")},
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": room_page},
        timeout=30,
    )
    assert uploaded.status_code == 201, uploaded.text
    shape = uploaded.json()
    big = session.post(
        f"{site.origin}/api/rooms/{slug}/attachments/",
        files={"file": ("big.bin", b"\x00" * (3 * 1024 * 1024), "application/octet-stream")},
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": room_page},
        timeout=30,
    )
    assert big.status_code == 201 and big.json()["size"] == 3 * 1024 * 1024  # over nginx's 1m
    served = session.get(site.origin + shape["url"], timeout=10)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/png"
    assert served.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"

    port = int(site.origin.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with site.ssl_context.wrap_socket(raw, server_hostname=HOST) as tls:
            tls.sendall(
                (
                    f"POST /api/rooms/{slug}/attachments/ HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                    "Content-Type: multipart/form-data; boundary=x\r\n"
                    f"Content-Length: {50 * 1024 * 1024}\r\nConnection: close\r\n\r\n"
                ).encode()
            )
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/json" in head
    assert json.loads(body)["error"] == "file_too_large"


def test_metrics_named_in_the_alerts_exist(site: Site):
    """Every metric docs/operations.md ("Metrics to alert on") tells operators to alert on is in a
    real chat server's /metrics (with Redis on), and every error kind it names is one the chat
    server counts, so an alert cannot silently watch nothing."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("### Metrics to alert on", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"\b(chat_[a-z_]+)", section))
    scrape = requests.get(f"{site.system.chat_internal_url}/metrics", timeout=10).text
    exposed = set(re.findall(r"^(chat_[a-z_]+)", scrape, re.M))
    assert names and names <= exposed, names - exposed
    kinds = set(re.findall(r'kind="(\w+)"', section))
    # Alternatives are written `a\|b` (a pipe inside a Markdown table cell is escaped).
    for alternatives in re.findall(r'kind=~"([\w|\\]+)"', section):
        kinds |= set(alternatives.replace("\\", "").split("|"))
    source = "".join(p.read_text() for p in (ROOT / "chatserver").glob("*.py"))
    # Counted directly (`errors.labels(kind="x")`) or through the hub's verb (`hub.refuse("x")`).
    counted = set(re.findall(r'labels\(kind="(\w+)"\)', source))
    counted |= set(re.findall(r'\brefuse\("(\w+)"\)', source))
    assert kinds and kinds <= counted, kinds - counted
