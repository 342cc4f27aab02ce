"""The admin: staff only, annotated room list, and archive/moderate actions that call the chat
server (a real HTTP server on a free port records and checks the signed calls)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings
from django.test import override_settings

from chat import chatserver_client
from chat.models import Message, Room

from .conftest import protocol_signature


class FakeChatServer(ThreadingHTTPServer):
    """A tiny stand-in for the chat server's control API that records every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.stats = {
            "connections": 3,
            "rooms": {"lobby": {"online": ["a", "b"], "connections": 2}},
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ts = self.headers.get("X-Chat-Timestamp", "")
        expected = protocol_signature(
            settings.CHAT_SHARED_SECRET, ts, self.command, self.path, body
        )
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "body": json.loads(body) if body else None,
                "signature_ok": self.headers.get("X-Chat-Signature") == expected,
                "fresh": abs(time.time() - int(ts or 0)) < 60,
            }
        )
        if self.path == "/internal/stats":
            answer = self.server.stats
        elif self.path == "/internal/users/events":
            items = json.loads(body)
            answer = {"results": [{"delivered": len(i["users"])} for i in items]}
        elif self.path.endswith("/events") and json.loads(body)["type"] == "archived":
            answer = {"closed": 1}
        else:
            answer = {"notified": 1}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = _answer
    do_POST = _answer

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture
def chat_server() -> Iterator[FakeChatServer]:
    """A running fake chat server, pointed at by CHAT_INTERNAL_URL, stopped afterwards."""
    server = FakeChatServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with override_settings(CHAT_INTERNAL_URL=server.url):
            yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def no_chat_server() -> Iterator[None]:
    """CHAT_INTERNAL_URL points at a free port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with override_settings(CHAT_INTERNAL_URL=f"http://127.0.0.1:{port}", CHAT_CONTROL_TIMEOUT=0.5):
        yield


@pytest.fixture
def staff_client(client, django_user_model):
    """A client signed in as a superuser."""
    user = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    client.force_login(user)
    return client


def test_admin_requires_staff(client, alice):
    """Anonymous visitors are sent to the admin login; signed-in non-staff cannot enter."""
    response = client.get("/admin/chat/room/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(alice)
    response = client.get("/admin/chat/room/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client.get("/admin/chat/message/").status_code == 302


def test_room_changelist_counts_and_online(staff_client, lobby, chat_server):
    """Staff see rooms with message counts (deleted excluded) and online numbers from stats."""
    for i in range(3):
        Message.objects.create(room=lobby, author_name="a", body="x", nonce=f"c{i}")
    Message.objects.filter(nonce="c0").update(is_deleted=True)
    response = staff_client.get("/admin/chat/room/")
    assert response.status_code == 200
    html = response.content.decode()
    row = html[html.index('class="field-name"') :].split("</tr>")[0]
    assert '<td class="field-message_count">2</td>' in row
    assert '<td class="field-online_now">2</td>' in row
    assert [r["path"] for r in chat_server.requests] == ["/internal/stats"]
    assert chat_server.requests[0]["signature_ok"]


def test_room_changelist_without_chat_server(staff_client, lobby, no_chat_server):
    """With the chat server down, the list still renders and shows "—" for online."""
    response = staff_client.get("/admin/chat/room/")
    assert response.status_code == 200
    assert '<td class="field-online_now">—</td>' in response.content.decode()


def test_message_changelist_and_search(staff_client, lobby):
    """Staff can list and search messages."""
    Message.objects.create(room=lobby, author_name="zoe", body="findme please", nonce="s1")
    Message.objects.create(room=lobby, author_name="yan", body="other", nonce="s2")
    html = staff_client.get("/admin/chat/message/?q=findme").content.decode()
    assert "findme please" in html and "yan" not in html


def test_archive_action_notifies_chat_server(
    staff_client, lobby, chat_server, django_capture_on_commit_callbacks
):
    """The archive action archives the room and sends a signed `archived` room event."""
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/chat/room/",
            {"action": "archive_rooms", "_selected_action": [lobby.pk]},
        )
    assert response.status_code == 302
    assert Room.objects.get(pk=lobby.pk).is_archived
    calls = [r for r in chat_server.requests if r["method"] == "POST"]
    assert [c["path"] for c in calls] == ["/internal/rooms/lobby/events"]
    assert calls[0]["body"] == {"type": "archived"}
    assert calls[0]["signature_ok"] and calls[0]["fresh"]


def test_archive_action_succeeds_with_chat_server_down(
    staff_client, lobby, no_chat_server, django_capture_on_commit_callbacks
):
    """Nothing listening: the action still archives and the admin answers normally."""
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/chat/room/", {"action": "archive_rooms", "_selected_action": [lobby.pk]}
        )
    assert response.status_code == 302
    assert Room.objects.get(pk=lobby.pk).is_archived


def test_saving_room_as_archived_notifies(
    staff_client, lobby, chat_server, django_capture_on_commit_callbacks
):
    """Ticking is_archived on the change form notifies once; saving again does not."""
    form = {
        "name": "Lobby",
        "slug": "lobby",
        "description": "",
        "visibility": "public",
        # The members inline's management form (no member rows).
        "memberships-TOTAL_FORMS": "0",
        "memberships-INITIAL_FORMS": "0",
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            f"/admin/chat/room/{lobby.pk}/change/", form | {"is_archived": "on"}
        )
        assert response.status_code == 302
        staff_client.post(f"/admin/chat/room/{lobby.pk}/change/", form | {"is_archived": "on"})
    posts = [(r["path"], r["body"]) for r in chat_server.requests if r["method"] == "POST"]
    assert posts == [("/internal/rooms/lobby/events", {"type": "archived"})]


def test_moderate_action_soft_deletes_and_notifies(
    staff_client, lobby, chat_server, django_capture_on_commit_callbacks
):
    """The moderation action soft-deletes, records who did it, and signals each deletion."""
    msg = Message.objects.create(room=lobby, author_name="a", body="rude", nonce="d1")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/chat/message/",
            {"action": "moderate_messages", "_selected_action": [msg.pk]},
        )
    assert response.status_code == 302
    msg.refresh_from_db()
    assert msg.is_deleted and msg.deleted_at is not None and msg.deleted_by.username == "boss"
    calls = [r for r in chat_server.requests if r["method"] == "POST"]
    assert [c["path"] for c in calls] == ["/internal/rooms/lobby/events"]
    assert calls[0]["body"] == {"type": "deleted", "id": msg.pk}
    assert calls[0]["signature_ok"]


def test_moderate_action_succeeds_with_chat_server_down(
    staff_client, lobby, no_chat_server, django_capture_on_commit_callbacks
):
    """Nothing listening: messages are still deleted and the admin answers normally."""
    msg = Message.objects.create(room=lobby, author_name="a", body="rude", nonce="d2")
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(
            "/admin/chat/message/",
            {"action": "moderate_messages", "_selected_action": [msg.pk]},
        )
    assert response.status_code == 302
    assert Message.objects.get(pk=msg.pk).is_deleted


def test_client_returns_none_when_down(no_chat_server):
    """The control client never raises; it answers None when nothing listens."""
    assert chatserver_client.stats() is None
    assert chatserver_client.room_event("lobby", {"type": "archived"}) is None
    assert chatserver_client.room_event("lobby", {"type": "deleted", "id": 1}) is None


def test_client_signs_under_a_path_prefix(chat_server):
    """With a prefix in CHAT_INTERNAL_URL, the signed target includes it."""
    with override_settings(CHAT_INTERNAL_URL=chat_server.url + "/chat"):
        chatserver_client.stats()
    assert chat_server.requests[-1]["path"] == "/chat/internal/stats"
    assert chat_server.requests[-1]["signature_ok"]
