"""Attachments between the real processes (gunicorn + twistd), through what a browser uses.

- An upload over the limit is refused without its body being read whole: a raw socket sends the
  head and a few KB and reads the 413 before sending more; a body whose Content-Length passes the
  first check but whose file runs past the limit is answered once the limit is reached, with the
  rest never sent; a chunked body (no Content-Length) is answered without being read.
- An image uploaded over HTTP and named in a frame on a real WebSocket reaches a second member
  with its attachment shape; the file URL serves it to members and answers 404 to anyone else.
- Deleting the message removes the files from storage; the URLs answer 404.
"""

from __future__ import annotations

import io
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.integration.test_access_changes import sign_in
from tests.integration.test_private_rooms import join_by_link, private_room
from tests.support.live import LiveSystem, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

LIMIT = 1024 * 1024  # CHAT_MAX_FILE_BYTES of this module's system
BOUNDARY = "----attachtestboundary"


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """A system of its own: a 1 MiB file limit keeps the over-limit bodies small."""
    with LiveSystem(
        tmp_path_factory.mktemp("attachments"), {"CHAT_MAX_FILE_BYTES": str(LIMIT)}
    ) as live:
        yield live


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (400, 200), (20, 160, 90)).save(out, "PNG")
    return out.getvalue()


def upload(live: LiveSystem, session: requests.Session, slug: str, name: str, data: bytes):
    return session.post(
        f"{live.django_url}/api/rooms/{slug}/attachments/",
        files={"file": (name, data, "application/octet-stream")},
        headers={"X-CSRFToken": session.cookies["csrftoken"]},
        timeout=30,
    )


def stored_files(live: LiveSystem) -> list[Path]:
    return sorted(p for p in live.media_root.rglob("*") if p.is_file())


def raw_head(live: LiveSystem, session: requests.Session, slug: str, length_headers: str) -> bytes:
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    return (
        f"POST /api/rooms/{slug}/attachments/ HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{live.django_port}\r\n"
        f"Cookie: {cookies}\r\n"
        f"X-CSRFToken: {session.cookies['csrftoken']}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{length_headers}"
        "\r\n"
    ).encode()


def part_head(name: str = "big.bin") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


def read_answer(sock: socket.socket, timeout: float = 20.0) -> tuple[int, dict]:
    """Read one HTTP answer (head and Content-Length body) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        if b"\r\n\r\n" in data:
            head, _, body = data.partition(b"\r\n\r\n")
            fields = dict(line.split(": ", 1) for line in head.decode("latin-1").split("\r\n")[1:])
            length = int({k.lower(): v for k, v in fields.items()}.get("content-length", "0"))
            if len(body) >= length:
                return int(head.split(b" ", 2)[1]), json.loads(body[:length])
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no complete answer within {timeout}s: {data[:200]!r}")
        sock.settimeout(remaining)
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete answer: {data[:200]!r}")
        data += chunk


@pytest.fixture(scope="module")
def people(system: LiveSystem) -> dict:
    """alice owns a private room, bob is a member, carol signed in elsewhere."""
    _name, _pw, alice = sign_in(system)
    _name, _pw, bob = sign_in(system)
    _name, _pw, carol = sign_in(system)
    slug = private_room(system, alice)
    join_by_link(system, alice, bob, slug)
    return {"alice": alice, "bob": bob, "carol": carol, "slug": slug}


def test_a_declared_oversized_body_is_refused_before_it_is_sent(system, people):
    """Content-Length of 50 MiB: after a few KB the answer is already there, 413
    file_too_large; the client never sends the rest."""
    alice, slug = people["alice"], people["slug"]
    before = stored_files(system)
    with socket.create_connection(("127.0.0.1", system.django_port), timeout=10) as sock:
        sock.sendall(raw_head(system, alice, slug, f"Content-Length: {50 * 1024 * 1024}\r\n"))
        sock.sendall(part_head() + b"x" * 4096)
        status, body = read_answer(sock)
    assert status == 413 and body["error"] == "file_too_large"
    assert "1 MiB" in body["message"]
    assert stored_files(system) == before


def test_a_file_running_past_the_limit_is_stopped_at_the_limit(system, people):
    """Content-Length passes the first check (limit + 60 KB), but the file is bigger than the
    limit: the server answers 413 once it has read just past the limit, while 20 KB of the
    declared body were never sent (a server reading the whole body would wait for them)."""
    alice, slug = people["alice"], people["slug"]
    before = stored_files(system)
    head = part_head()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    file_bytes = LIMIT + 60_000 - len(head) - len(tail)
    declared = len(head) + file_bytes + len(tail)
    with socket.create_connection(("127.0.0.1", system.django_port), timeout=10) as sock:
        sock.sendall(raw_head(system, alice, slug, f"Content-Length: {declared}\r\n"))
        sock.sendall(head)
        sent = 0
        while sent < LIMIT + 40_000:  # 20 KB short of the declared body
            piece = b"y" * min(64 * 1024, LIMIT + 40_000 - sent)
            sock.sendall(piece)
            sent += len(piece)
        status, body = read_answer(sock)
    assert status == 413 and body["error"] == "file_too_large"
    assert stored_files(system) == before


def test_a_chunked_body_is_answered_without_being_read(system, people):
    """Transfer-Encoding: chunked (no Content-Length): Django reads no body it was not told the
    length of, so the answer (400 bad_upload) comes while the client still has data to send."""
    alice, slug = people["alice"], people["slug"]
    before = stored_files(system)
    with socket.create_connection(("127.0.0.1", system.django_port), timeout=10) as sock:
        sock.sendall(raw_head(system, alice, slug, "Transfer-Encoding: chunked\r\n"))
        chunk = part_head() + b"z" * 4096
        sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        status, body = read_answer(sock)
    assert status == 400 and body["error"] == "bad_upload"
    assert stored_files(system) == before


def test_an_image_travels_through_a_socket_and_only_members_fetch_it(system, people):
    """alice uploads, names the id in a message frame with an empty body; bob's socket receives
    the stored message with the attachment shape; bob fetches the image and its thumbnail,
    carol (not a member) and a visitor get 404. Deleting the message removes both files and
    the URLs answer 404."""
    alice, bob, carol, slug = people["alice"], people["bob"], people["carol"], people["slug"]
    data = png_bytes()
    before = set(stored_files(system))
    answer = upload(system, alice, slug, "garden.png", data)
    assert answer.status_code == 201, answer.text
    shape = answer.json()
    assert shape["kind"] == "image" and (shape["width"], shape["height"]) == (400, 200)
    files = set(stored_files(system)) - before
    assert len(files) == 2  # the image and its thumbnail
    # Before it is sent, the upload is alice's alone.
    assert bob.get(system.django_url + shape["url"], timeout=10).status_code == 404
    writer = ChatClient(system.ticket(alice, slug)["ws_url"], origin=system.origin)
    reader = ChatClient(system.ticket(bob, slug)["ws_url"], origin=system.origin)
    try:
        nonce = uuid.uuid4().hex
        writer.send({"type": "message", "body": "", "nonce": nonce, "attachments": [shape["id"]]})
        received = reader.wait_for(lambda f: f.get("type") == "message" and f["nonce"] == nonce)
    finally:
        writer.close()
        reader.close()
    assert received["body"] == "" and received["attachments"] == [shape]
    fetched = bob.get(system.django_url + shape["url"], timeout=10)
    assert fetched.status_code == 200 and fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["X-Content-Type-Options"] == "nosniff"
    assert fetched.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    with Image.open(io.BytesIO(fetched.content)) as served:
        assert served.size == (400, 200)
    thumb = bob.get(system.django_url + shape["thumbnail"]["url"], timeout=10)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"
    for outsider in (carol, requests.Session()):
        for url in (shape["url"], shape["thumbnail"]["url"]):
            assert outsider.get(system.django_url + url, timeout=10).status_code == 404
    history = bob.get(f"{system.django_url}/api/rooms/{slug}/messages/", timeout=10).json()
    assert history["messages"][-1]["attachments"] == [shape]

    delete_url = f"{system.django_url}/api/rooms/{slug}/messages/{received['id']}/delete/"
    deleted = alice.post(
        delete_url, headers={"X-CSRFToken": alice.cookies["csrftoken"]}, timeout=10
    )
    assert deleted.status_code == 200, deleted.text
    wait_until(lambda: not any(path.exists() for path in files), timeout=15)
    assert alice.get(system.django_url + shape["url"], timeout=10).status_code == 404


def test_a_long_poller_sends_a_file_too(system, people):
    """The long-poll transport carries `attachments` like the socket: bob uploads a PDF, posts
    the message over `POST /poll/<slug>`, and gets the stored message with its file back; the
    same id named again is refused `bad_attachments` (already sent)."""
    bob, slug = people["bob"], people["slug"]
    shape = upload(system, bob, slug, "notes.pdf", b"%PDF-1.4 notes").json()
    assert shape["kind"] == "file"
    poll_url = system.ticket(bob, slug)["poll_url"]
    headers = {"Origin": system.origin}
    nonce = uuid.uuid4().hex
    posted = requests.post(
        poll_url,
        json={"body": "the notes", "nonce": nonce, "attachments": [shape["id"]]},
        headers=headers,
        timeout=20,
    )
    assert posted.status_code == 200, posted.text
    assert posted.json()["message"]["attachments"] == [shape]
    again = requests.post(
        poll_url,
        json={"body": "", "nonce": uuid.uuid4().hex, "attachments": [shape["id"]]},
        headers=headers,
        timeout=20,
    )
    assert again.status_code == 400 and again.json()["error"] == "bad_attachments"
    served = people["alice"].get(system.django_url + shape["url"], timeout=10)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "application/octet-stream"
    assert served.headers["Content-Disposition"] == "attachment; filename*=UTF-8''notes.pdf"
