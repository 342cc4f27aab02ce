"""chat/fastpath.py answers ``POST /internal/messages/batch/`` exactly as the view does.

Each case goes once through the lean WSGI path and once through Django's handler (the test
client: middleware, URL resolving, ``internal_endpoint`` and ``message_batch``), each on the same
database state (the first is rolled back), and the two answers must have the same status and the
same JSON, ids included. Requests for anything else pass through to Django untouched.
"""

from __future__ import annotations

import io
import json
import time
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections, transaction

from chat import fastpath
from chat.fastpath import InternalFastPath
from chat.models import Room

from .conftest import protocol_headers

BATCH = "/internal/messages/batch/"


def item(nonce: Any = "n-1", room: Any = "lobby", body: Any = "hi", **extra: Any) -> dict:
    return {
        "room": room,
        "nonce": nonce,
        "body": body,
        "name": "alice",
        "uid": "g:0123456789abcdef",
        "user_id": None,
        "guest": True,
        **extra,
    }


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


def call_fast(
    app: InternalFastPath,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    stream: Any = None,
) -> tuple[int, bytes, dict[str, str]]:
    """One request through the WSGI app; (status, body, headers)."""
    environ = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "HTTP_HOST": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body) if stream is None else stream,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        **headers,
    }
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        started["status"] = int(status.split()[0])
        started["headers"] = dict(response_headers)

    # As Django's test client does: the test's transaction holds the connection, so the
    # request signals must not close it (gunicorn requests never run inside a transaction).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        chunks = app(environ, start_response)
        try:
            payload = b"".join(chunks)
        finally:
            getattr(chunks, "close", lambda: None)()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
    return started["status"], payload, started["headers"]


def both(client, body: bytes, headers: dict[str, str]) -> tuple[tuple, tuple]:
    """(status, JSON) from the fast path, then from the view, on the same database state."""
    app = InternalFastPath(WSGIHandler())
    with transaction.atomic():
        status, payload, _ = call_fast(app, "POST", BATCH, body, headers)
        transaction.set_rollback(True)
    with transaction.atomic():
        response = client.post(BATCH, data=body, content_type="application/json", **headers)
        transaction.set_rollback(True)
    return (status, json.loads(payload)), (response.status_code, json.loads(response.content))


def signed(payload: Any, raw: bytes | None = None, **kwargs: Any) -> tuple[bytes, dict]:
    body = raw if raw is not None else json.dumps(payload).encode()
    return body, protocol_headers("POST", BATCH, body, **kwargs)


def without_times(answer: tuple) -> tuple:
    """The answer with every message's ``sent_at`` dropped (the two calls run a moment apart)
    and new ids counted from the batch's first (PostgreSQL's sequences are not rolled back)."""
    status, data = answer
    results = data.get("results", []) if isinstance(data, dict) else []
    new_ids = [r["message"]["id"] for r in results if r.get("created") and "message" in r]
    base = min(new_ids, default=0)
    for result in results:
        message = result.get("message")
        if isinstance(message, dict):
            message.pop("sent_at", None)
            if message["id"] >= base > 0:
                message["id"] -= base
        for key in ("id", "prev_id"):  # a repeat inside the batch names a new row's id
            if isinstance(result.get(key), int) and result[key] >= base > 0:
                result[key] -= base
    return status, data


CASES = {
    "one message": lambda: signed({"messages": [item()]}),
    "several rooms, a repeat inside the batch": lambda: signed(
        {"messages": [item("a"), item("b", room="other"), item("a"), item("c")]}
    ),
    "unknown and archived rooms": lambda: signed(
        {"messages": [item("a", room="nowhere"), item("b", room="old"), item("c")]}
    ),
    "bad items": lambda: signed(
        {
            "messages": [
                item("a", body=""),
                item("b", body="x\x00y"),
                item("bad nonce!"),
                {"room": "lobby"},
                "not an object",
                item("c", body="x" * 5000),
            ]
        }
    ),
    # Only the standard library reads these (orjson refuses them): answered like the view.
    "unpaired surrogate": lambda: signed(
        None, raw=b'{"messages": [' + _raw_item(r"\ud800") + b"]}"
    ),
    "NaN nonce": lambda: signed(None, raw=b'{"messages": [{"room": "lobby", "nonce": NaN}]}'),
    "huge integer user id": lambda: signed({"messages": [item(user_id=10**30, guest=False)]}),
    "not JSON": lambda: signed(None, raw=b"{nope"),
    "not UTF-8": lambda: signed(None, raw=b'{"messages": ["\xff"]}'),
    "no messages list": lambda: signed({"items": []}),
    "a list, not an object": lambda: signed([item()]),
    "too many items": lambda: signed({"messages": [item(f"n{i}") for i in range(1001)]}),
    "unsigned": lambda: (json.dumps({"messages": [item()]}).encode(), {}),
    "wrong secret": lambda: signed({"messages": [item()]}, secret="not the secret"),
    "stale timestamp": lambda: signed({"messages": [item()]}, ts=int(time.time()) - 3600),
    "signature of another body": lambda: (
        json.dumps({"messages": [item("other")]}).encode(),
        signed({"messages": [item()]})[1],
    ),
}


def _raw_item(body_escape: str) -> bytes:
    text = json.dumps(item()).replace('"hi"', f'"{body_escape}"')
    return text.encode()


@pytest.fixture
def rooms(lobby):
    Room.objects.create(slug="other", name="Other", allow_guests=True)
    Room.objects.create(slug="old", name="Old", allow_guests=True, is_archived=True)


@pytest.mark.parametrize("case", list(CASES))
def test_same_answer_as_the_view(client, rooms, case):
    """Status and JSON body equal to the view's (``sent_at`` aside), on the same state."""
    body, headers = CASES[case]()
    fast, view = both(client, body, headers)
    assert without_times(fast) == without_times(view)


def test_repeat_of_a_stored_nonce(client, rooms):
    """A resent nonce is answered with the original (``created: false``), as by the view."""
    body, headers = signed({"messages": [item("kept")]})
    first = client.post(BATCH, data=body, content_type="application/json", **headers).json()
    fast, view = both(client, body, headers)
    assert fast == view
    (result,) = fast[1]["results"]
    assert result["created"] is False
    assert result["id"] == first["results"][0]["message"]["id"]


def test_body_over_the_cap_refused_before_reading(client, rooms):
    """Content-Length over 1 MiB: 413 without reading the body, as the view does."""
    app = InternalFastPath(WSGIHandler())
    big = b"x" * (1024 * 1024 + 1)
    big_headers = protocol_headers("POST", BATCH, big)
    status, payload, _ = call_fast(app, "POST", BATCH, big, big_headers, Unreadable())
    view = client.post(BATCH, data=big, content_type="application/json", **big_headers)
    assert (status, json.loads(payload)) == (view.status_code, view.json())
    assert status == 413


def test_other_requests_pass_through(client, rooms):
    """GET on the batch URL (Django's 405) and other internal URLs reach Django's handler."""
    app = InternalFastPath(WSGIHandler())
    status, payload, headers = call_fast(app, "GET", BATCH, b"", protocol_headers("GET", BATCH))
    assert status == 405
    assert json.loads(payload)["error"] == "method_not_allowed"
    health = "/internal/health/"
    status, payload, _ = call_fast(app, "GET", health, b"", protocol_headers("GET", health))
    assert (status, json.loads(payload)) == (200, {"status": "ok"})


def test_database_failure_is_a_500_with_the_error_body(rooms, monkeypatch, caplog):
    """An exception while storing: 500 and the protocol's body, so the chat server bisects."""

    def broken(items: list) -> list:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fastpath, "store_batch", broken)
    body, headers = signed({"messages": [item()]})
    status, payload, response_headers = call_fast(
        InternalFastPath(WSGIHandler()), "POST", BATCH, body, headers
    )
    assert status == 500
    assert json.loads(payload) == {
        "error": "server_error",
        "message": "The server failed; try again later.",
    }
    assert response_headers["Content-Type"] == "application/json"
    assert "disk on fire" in caplog.text
