"""No log record on the Django side carries a ticket, a secret, a password or a message body.

Every logger is turned up to DEBUG and every record (its message, arguments and attributes) is
searched, while real requests go through the ticket endpoint, the internal batch, sign-in and the
admin, including the refusals (bad signature, stale, rate-limited, wrong password) that log.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.test import Client, override_settings

from chat.models import Message

from .conftest import protocol_headers

BATCH = "/internal/messages/batch/"
BODY_MARKER = "body-marker-7f3a9c"
PASSWORD = "pw-marker-51e0b2-correct"
WRONG_PASSWORD = "pw-marker-0d44c1-wrong"


@pytest.fixture
def all_loggers_at_debug(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """Capture at DEBUG from every logger, including ones configured quieter by LOGGING."""
    caplog.set_level(logging.DEBUG)
    names = list(logging.root.manager.loggerDict) + ["django.request", "urllib3", "chat"]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = logger.level
        logger.setLevel(logging.DEBUG)
    try:
        yield caplog
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def record_text(record: logging.LogRecord) -> str:
    """Everything a handler or formatter could print from ``record``."""
    return record.getMessage() + "\n" + repr(vars(record)) + "\n" + (record.exc_text or "")


def forbidden_fragments(tickets: list[str]) -> list[str]:
    """Secrets and private data, and each part of each ticket (a log might print just one)."""
    fragments = [
        settings.CHAT_SHARED_SECRET,
        settings.SECRET_KEY,
        BODY_MARKER,
        PASSWORD,
        WRONG_PASSWORD,
    ]
    for ticket in tickets:
        fragments.append(ticket)
        fragments.extend(part for part in ticket.split(".")[1:] if len(part) > 8)
    return fragments


@pytest.fixture
def unreachable_chat_server() -> Iterator[None]:
    """Control calls go to a port where nothing listens (they fail and log a warning)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with override_settings(CHAT_INTERNAL_URL=f"http://127.0.0.1:{port}", CHAT_CONTROL_TIMEOUT=0.2):
        yield


def exercise_everything(django_user_model, lobby, on_commit) -> tuple[list[str], list[str]]:
    """Drive every Django path that handles tickets, secrets or bodies; return tickets and sigs."""
    tickets: list[str] = []
    signatures: list[str] = []

    # Tickets: a guest, a signed-in user, then a rate-limited guest.
    guest = Client()
    guest.get("/chats/lobby/")
    tickets.append(guest.get("/api/rooms/lobby/ticket/").json()["ticket"])
    user = django_user_model.objects.create_user("alice", password=PASSWORD)
    member = Client()
    member.force_login(user)
    tickets.append(member.get("/api/rooms/lobby/ticket/").json()["ticket"])
    with override_settings(RATELIMIT_TICKET="1/h"):
        answers = [guest.get("/api/rooms/lobby/ticket/") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 429]
    tickets.append(answers[0].json()["ticket"])

    # The internal batch: stored, replayed, forged, stale and oversized.
    body = json.dumps(
        {
            "messages": [
                {
                    "room": "lobby",
                    "nonce": "log-1",
                    "body": BODY_MARKER,
                    "name": "alice",
                    "uid": f"u:{user.pk}",
                    "user_id": user.pk,
                    "guest": False,
                },
                {"room": "nowhere", "nonce": "log-2", "body": BODY_MARKER, "name": "x"},
            ]
        }
    ).encode()
    chat_server = Client()
    for headers in (
        protocol_headers("POST", BATCH, body),
        protocol_headers("POST", BATCH, body, secret="forged-secret"),
        protocol_headers("POST", BATCH, body, ts=1),
    ):
        signatures.append(headers["HTTP_X_CHAT_SIGNATURE"])
        chat_server.post(BATCH, body, content_type="application/json", **headers)
        chat_server.post(BATCH, body, content_type="application/json", **headers)
    chat_server.post(BATCH, b"{nope" + BODY_MARKER.encode(), content_type="application/json")
    assert Message.objects.filter(body=BODY_MARKER).count() == 1

    # Sign-in: a wrong password, a right one, then over the limit (only failures count).
    Client().post("/accounts/login/", {"username": "alice", "password": WRONG_PASSWORD})
    Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    with override_settings(RATELIMIT_LOGIN_USER="1/h"):
        Client().post("/accounts/login/", {"username": "alice", "password": WRONG_PASSWORD})
        last = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert last.status_code == 429

    # The admin: lists, search by body, a change form, and moderation (a failing control call).
    staff = Client()
    staff.force_login(django_user_model.objects.create_superuser("boss", password=PASSWORD))
    message = Message.objects.get(body=BODY_MARKER)
    for path in (
        "/admin/chat/room/",
        f"/admin/chat/message/?q={BODY_MARKER}",
        f"/admin/chat/message/{message.id}/change/",
    ):
        assert staff.get(path).status_code == 200
    with on_commit(execute=True):
        staff.post(
            "/admin/chat/message/",
            {"action": "moderate_messages", "_selected_action": [message.id]},
        )
    assert Message.objects.get(id=message.id).is_deleted
    return tickets, signatures


def test_no_secret_ticket_or_body_in_any_log_record(
    all_loggers_at_debug,
    lobby,
    django_user_model,
    unreachable_chat_server,
    django_capture_on_commit_callbacks,
):
    """Hostile and ordinary traffic through every sensitive path logs none of its secrets."""
    tickets, signatures = exercise_everything(
        django_user_model, lobby, django_capture_on_commit_callbacks
    )
    records = all_loggers_at_debug.records
    # The refusals did log (so the search below searched something real).
    assert any("refused internal call" in r.getMessage() for r in records)
    assert any("rate limit" in r.getMessage() for r in records)
    assert any("control call" in r.getMessage() for r in records)
    for fragment in forbidden_fragments(tickets) + signatures:
        for record in records:
            assert fragment not in record_text(record), (record.name, record.getMessage())


def test_sql_parameters_not_logged_even_with_debug(
    caplog, lobby, django_user_model, unreachable_chat_server, django_capture_on_commit_callbacks
):
    """With DEBUG on and Django's loggers turned up to DEBUG, SQL (which holds message bodies and
    session data in its parameters) still stays out of the logs: LOGGING pins the SQL logger."""
    caplog.set_level(logging.DEBUG)
    django_logger = logging.getLogger("django")
    saved = django_logger.level
    django_logger.setLevel(logging.DEBUG)  # what an operator chasing a bug would do
    try:
        with override_settings(DEBUG=True):
            exercise_everything(django_user_model, lobby, django_capture_on_commit_callbacks)
    finally:
        django_logger.setLevel(saved)
    assert any(r.name.startswith("django") for r in caplog.records)
    assert not [r for r in caplog.records if r.name == "django.db.backends"]
    for record in caplog.records:
        assert BODY_MARKER not in record_text(record), (record.name, record.getMessage())
