"""Hostile calls on the internal API: huge bodies refused unread, replays inside and outside the
signature window, lying or malformed Content-Length."""

from __future__ import annotations

import json
import types

from django.test import Client, RequestFactory

from chat import internal_api, signing
from chat.models import Message

from .conftest import protocol_headers

BATCH = "/internal/messages/batch/"


class UnreadableStream:
    """A request body that fails the test if anything tries to read it."""

    def read(self, *args: object) -> bytes:
        """Reading means the body was buffered before the size check."""
        raise AssertionError("the body was read")

    readline = read


def batch_request(content_length: str):
    """A signed-looking POST to the batch view whose body cannot be read."""
    request = RequestFactory().post(BATCH, data=b"", content_type="application/json")
    request.META["CONTENT_LENGTH"] = content_length
    request.META.update(protocol_headers("POST", BATCH, b""))
    request._stream = UnreadableStream()
    return request


def test_oversized_body_refused_before_reading(db):
    """A declared body over 1 MiB gets 413 payload_too_large without a byte being read."""
    response = internal_api.message_batch(batch_request(str(1024 * 1024 + 1)))
    assert response.status_code == 413
    assert json.loads(response.content)["error"] == "payload_too_large"


def test_gigantic_content_length_refused_before_reading(db):
    """Even an absurd Content-Length is refused at once, not allocated or read."""
    response = internal_api.message_batch(batch_request(str(10**15)))
    assert response.status_code == 413


def test_malformed_content_length_is_400(db):
    """A Content-Length that is not a number is a 400, never a crash."""
    response = internal_api.message_batch(batch_request("12abc"))
    assert response.status_code == 400
    assert json.loads(response.content)["error"] == "bad_request"


def captured_batch() -> tuple[bytes, dict[str, str]]:
    """A signed batch as an eavesdropper on the private network would capture it."""
    item = {"room": "lobby", "nonce": "r-1", "body": "hi", "name": "eve", "user_id": None}
    item["uid"] = "g:0123456789abcdef"
    body = json.dumps({"messages": [{**item, "guest": True}]}).encode()
    return body, protocol_headers("POST", BATCH, body)


def test_replay_inside_window_stores_nothing_new(lobby):
    """A replayed batch inside the 60 s window is answered idempotently: no second row."""
    body, headers = captured_batch()
    client = Client()
    first = client.post(BATCH, body, content_type="application/json", **headers)
    again = client.post(BATCH, body, content_type="application/json", **headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["results"][0]["created"] is False
    assert Message.objects.count() == 1


def test_replay_outside_window_is_stale(lobby, monkeypatch):
    """The same captured call replayed 61 s later is refused 403 stale_request and not stored."""
    body, headers = captured_batch()
    later = int(headers["HTTP_X_CHAT_TIMESTAMP"]) + 61
    monkeypatch.setattr(signing, "time", types.SimpleNamespace(time=lambda: later))
    response = Client().post(BATCH, body, content_type="application/json", **headers)
    assert response.status_code == 403
    assert response.json()["error"] == "stale_request"
    assert not Message.objects.exists()
