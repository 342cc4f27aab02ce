"""The HTTP edge over real processes: out-of-range numbers, HEAD, Origin null, JSON errors
under /api/ (docs/protocol.md, "HTTP methods and paths", "Numbers in URLs")."""

from __future__ import annotations

import time

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.live import LiveSystem, mint_ticket

pytestmark = pytest.mark.integration

OUT_OF_RANGE = ["1000000000000000000", "9007199254740992", "%2B12", "%D9%A1%D9%A2", "1_000"]


def _refused_status(url: str, origin: str | None = None) -> int:
    with pytest.raises(InvalidStatus) as refused:
        kwargs = {"origin": origin} if origin else {}
        with connect(url, open_timeout=10, **kwargs):
            pass
    return refused.value.response.status_code


def _online(live: LiveSystem, slug: str) -> list:
    stats = live.internal_get(live.chat_url, "/internal/stats").json()
    return stats["rooms"].get(slug, {}).get("online", [])


@pytest.mark.parametrize("since", OUT_OF_RANGE)
def test_out_of_range_since_is_a_clear_400_on_both_transports(live, live_room, since):
    """`since=1000000000000000000` closed the socket with 1011 "reconnect" and answered the poll
    503 (Django refused the read), so clients retried forever; now both answer 400 at once."""
    session = live.guest_session(live_room)
    urls = live.ticket(session, live_room)
    assert _refused_status(f"{urls['ws_url']}&since={since}", origin=live.origin) == 400
    poll = requests.get(
        f"{urls['poll_url']}&since={since}", headers={"Origin": live.origin}, timeout=10
    )
    assert poll.status_code == 400 and poll.json()["error"] == "bad_since"


def test_head_on_a_poll_answers_at_once_without_joining_presence(live, live_room):
    """`HEAD /poll/<room>?ticket=…&since=…` answers 405 at once; it used to be held 25 s and
    show the user online for ~36 s."""
    ticket = mint_ticket(live.secret, live_room, name="header")
    began = time.monotonic()
    response = requests.head(
        f"{live.chat_url}/poll/{live_room}?ticket={ticket}&since=0",
        headers={"Origin": live.origin},
        timeout=10,
    )
    assert response.status_code == 405 and time.monotonic() - began < 5
    assert response.headers["Allow"] == "GET, POST, OPTIONS"
    assert "header" not in str(_online(live, live_room))


def test_origin_null_is_403_through_the_real_handshake(live, live_room):
    """`Origin: null` got 400 from Autobahn; it is refused like any foreign Origin, 403."""
    url = live.chat_url.replace("http", "ws") + f"/ws/{live_room}?ticket="
    assert _refused_status(url + mint_ticket(live.secret, live_room), origin="null") == 403


def test_api_errors_are_json_from_the_real_server(live, live_room):
    """A unicode slug, an unknown /api/ path, a wrong method and a CSRF refusal answer JSON."""
    for path in ("/api/rooms/ünïcödé/ticket/", "/api/nope/"):
        response = requests.get(live.django_url + path, timeout=10)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
    response = requests.options(f"{live.django_url}/api/rooms/", timeout=10)
    assert response.status_code == 405 and response.json()["error"] == "method_not_allowed"
    assert response.headers["Allow"] == "GET"
    response = requests.delete(f"{live.django_url}/api/rooms/", timeout=10)  # no CSRF token
    assert response.status_code == 403 and response.json()["error"] == "forbidden"
