"""Every `/api/` (and `/internal/`) path answers JSON errors, and every number in a URL or a
signature header follows one strict rule (chat/params.py, docs/protocol.md "Numbers in URLs")."""

from __future__ import annotations

import pytest
from django.test import Client

from chat.params import MAX_ID
from tests.chat.conftest import protocol_headers

NOT_NUMBERS = [
    "1000000000000000000",
    str(MAX_ID + 1),
    "99999999999999999",
    " 12",
    "+12",
    "-1",
    "1_000",
    "١٢",
    "１２",
    "1.0",
    "0x1",
]


def _json_error(response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code and body["message"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/rooms/ünïcödé/ticket/",
        "/api/rooms/%D9%84%D8%A7/messages/",
        "/api/nope/",
        "/api/rooms/lobby/nope/",
        "/api/",
        "/internal/nope/",
    ],
)
def test_unmatched_api_urls_answer_json_404(lobby, path):
    """`GET /api/rooms/<unicode-slug>/ticket/` answered Django's HTML 404 page; every unmatched
    URL under /api/ (and /internal/) now answers a JSON 404."""
    _json_error(Client().get(path), 404, "not_found")


def test_wrong_methods_on_api_answer_json_405_with_allow(lobby):
    """A wrong method answers 405 with `Allow` and a JSON body (it was an empty body)."""
    for path in ("/api/rooms/", "/api/rooms/lobby/messages/", "/api/rooms/lobby/ticket/"):
        for method in ("post", "put", "delete"):
            response = getattr(Client(), method)(path)
            _json_error(response, 405, "method_not_allowed")
            assert "GET" in response["Allow"]


def test_server_errors_on_api_answer_json_500(lobby, monkeypatch):
    """An exception in an API view answers a JSON 500 (not the HTML error page)."""
    from chat import api

    def broken():
        raise RuntimeError("the database went away")

    monkeypatch.setattr(api, "rooms_with_activity", broken)
    response = Client(raise_request_exception=False).get("/api/rooms/")
    _json_error(response, 500, "server_error")


def test_pages_keep_html_errors(db):
    """Outside the JSON prefixes Django's pages are untouched."""
    response = Client().get("/chats/no-such-room/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("raw", NOT_NUMBERS)
@pytest.mark.parametrize("name", ["before", "after", "limit"])
def test_public_history_numbers_follow_the_strict_rule(lobby, name, raw):
    """before/after/limit: ASCII digits up to 2**53 - 1, anything else 400 `bad_parameter`
    (16 and 17 digit values used to pass and reach the database)."""
    response = Client().get("/api/rooms/lobby/messages/", {name: raw})
    _json_error(response, 400, "bad_parameter")


@pytest.mark.parametrize("raw", NOT_NUMBERS)
def test_internal_history_numbers_follow_the_strict_rule(lobby, signed, raw):
    """The internal history read (the chat server's `since`) refuses the same values."""
    from urllib.parse import quote

    response = signed.get(f"/internal/rooms/lobby/messages/?after={quote(raw)}")
    _json_error(response, 400, "bad_parameter")


def test_the_largest_id_is_accepted(lobby, signed):
    """2**53 - 1 is a valid id on both history reads (an empty page)."""
    public = Client().get("/api/rooms/lobby/messages/", {"after": str(MAX_ID)})
    assert public.status_code == 200 and public.json()["messages"] == []
    internal = signed.get(f"/internal/rooms/lobby/messages/?after={MAX_ID}")
    assert internal.status_code == 200 and internal.json()["messages"] == []


def test_signature_timestamp_follows_the_strict_rule(db):
    """A correctly signed call whose timestamp is written in non-ASCII digits is refused
    (`str.isdigit()` and `int()` took `"١٧٩٥..."` for a number)."""
    import time

    ascii_ts = str(int(time.time()))
    arabic_ts = ascii_ts.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    headers = protocol_headers("GET", "/internal/health/")
    headers["HTTP_X_CHAT_TIMESTAMP"] = arabic_ts
    from django.conf import settings

    from tests.chat.conftest import protocol_signature

    headers["HTTP_X_CHAT_SIGNATURE"] = protocol_signature(
        settings.CHAT_SHARED_SECRET, arabic_ts, "GET", "/internal/health/", b""
    )
    response = Client().get("/internal/health/", **headers)
    _json_error(response, 403, "bad_signature")
