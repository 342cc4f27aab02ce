"""Every method and path variant on the chat server's port gets a defined, side-effect-free
answer (docs/protocol.md, "HTTP methods and paths" and "Numbers in URLs").

Requests go through the whole stack as bytes: the front door, the Site or Autobahn, the resource.
"""

from __future__ import annotations

import base64
import os

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.testing import StringTransport

from chatserver.admission import MAX_ID, parse_decimal, parse_since
from chatserver.control import ControlResource
from chatserver.frontdoor import FrontDoorFactory
from chatserver.health import LivenessResource
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory, ChatServerProtocol
from chatserver.signing import signed_headers
from chatserver.web import build_site
from tests.chatserver.support import ORIGIN, SECRET, handshake, make_hub, parse_frames, ticket


class Stack:
    """The chat server's public port over a real hub: front door, WebSocket factory, Site."""

    def __init__(self) -> None:
        self.hub, self.reactor, self.django = make_hub()
        self.ws = ChatServerFactory(self.hub, self.reactor, self.hub.config)
        self.poll = LongPollResource(self.hub, self.hub.config, self.hub.clock)
        site = build_site(
            self.ws,
            poll=self.poll,
            control=ControlResource(self.hub, stats=self.hub.stats),
            health=LivenessResource(),
            reactor=self.reactor,
        )
        self.door = FrontDoorFactory(self.ws, site)

    def send(self, raw: bytes) -> StringTransport:
        """One connection that sends `raw`; returns its transport."""
        transport = StringTransport()
        protocol = self.door.buildProtocol(None)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        transport.protocol.dataReceived(raw)
        return transport

    def request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers with lower-case names, body) of one HTTP request."""
        lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1:9000"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        return parse_response(self.send(raw).value())

    def signed(self, method: str, target: str) -> tuple[int, dict[str, str], bytes]:
        headers = signed_headers(SECRET, method, target, b"", self.hub.clock.seconds())
        return self.request(method, target, headers)


def parse_response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    if not raw:
        return 0, {}, b""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        decoded = b""
        while body:
            size, _, rest = body.partition(b"\r\n")
            length = int(size, 16)
            decoded, body = decoded + rest[:length], rest[length + 2 :]
            if length == 0:
                break
        body = decoded
    return int(lines[0].split(" ", 2)[1]), headers, body


@pytest.fixture
def stack() -> Stack:
    return Stack()


# HEAD and OPTIONS ---------------------------------------------------------------------------


def test_head_on_a_poll_is_405_and_neither_joins_presence_nor_is_held(stack):
    """`HEAD /poll/<room>?ticket=…` (with or without `since`) answers 405 with `Allow` at once:
    it used to run the GET, so the user showed as online for ~36 s and the HEAD was held 25 s."""
    for query in ("", "&since=0"):
        status, headers, body = stack.request(
            "HEAD", f"/poll/lobby?ticket={ticket(stack.reactor)}{query}", {"Origin": ORIGIN}
        )
        assert status == 405 and body == b""
        assert headers["allow"] == "GET, POST, OPTIONS"
    assert stack.hub.registry.online("lobby") == []
    assert stack.poll.active() == 0


def test_head_on_a_socket_path_is_405_through_the_front_door(stack):
    """`HEAD /ws/<room>?ticket=…` is answered 405 `Allow: GET, OPTIONS`; no socket opens."""
    status, headers, _ = stack.request("HEAD", f"/ws/lobby?ticket={ticket(stack.reactor)}")
    assert status == 405 and headers["allow"] == "GET, OPTIONS"
    assert stack.ws.connections == set() and stack.hub.registry.online("lobby") == []


@pytest.mark.parametrize(
    ("target", "allow"),
    [
        ("/ws/lobby", "GET, OPTIONS"),
        ("/poll/lobby", "GET, POST, OPTIONS"),
        ("/healthz", "GET, HEAD, OPTIONS"),
        ("/internal/stats", "GET, POST, OPTIONS"),
    ],
)
def test_every_path_answers_options_204_and_other_methods_405_with_allow(stack, target, allow):
    """OPTIONS gets 204 with `Allow`; PUT, DELETE, PATCH and made-up methods get a JSON 405
    with the same `Allow`, before any of the resource's own code runs (no ticket needed)."""
    status, headers, body = stack.request("OPTIONS", target)
    assert (status, headers["allow"], body) == (204, allow, b"")
    for method in ("PUT", "DELETE", "PATCH", "BREW"):
        status, headers, body = stack.request(method, target)
        assert status == 405 and headers["allow"] == allow
        assert orjson.loads(body)["error"] == "method_not_allowed"


def test_unknown_paths_answer_404_json_to_every_method(stack):
    """An unknown path (and `/ws` without a room) is 404 for GET, HEAD, OPTIONS and POST."""
    for target in ("/nope", "/", "/ws", "/metrics", "/healthzz"):
        for method in ("GET", "HEAD", "OPTIONS", "POST"):
            status, headers, body = stack.request(method, target)
            assert status == 404, (method, target)
            if method != "HEAD":
                assert orjson.loads(body)["error"] == "not_found"


def test_head_on_health_is_cheap_and_bodyless(stack):
    """HEAD /healthz answers like GET without a body (liveness has no side effect)."""
    assert stack.request("HEAD", "/healthz")[::2] == (200, b"")
    status, _, body = stack.request("GET", "/healthz")
    assert status == 200 and orjson.loads(body) == {"status": "ok"}


def test_poll_preflight_keeps_cors_and_lists_allow(stack):
    """The CORS preflight of /poll/ still answers for an allowed origin, with `Allow`."""
    status, headers, _ = stack.request(
        "OPTIONS", "/poll/lobby", {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert status == 204 and headers["access-control-allow-origin"] == ORIGIN
    assert headers["allow"] == "GET, POST, OPTIONS"


# trailing slashes ---------------------------------------------------------------------------


def test_one_trailing_slash_is_ignored_on_every_path(stack):
    """`/poll/<room>/` works like `/poll/<room>` (it answered 404 "No such room" while
    `/ws/<room>/` worked), as do `/healthz/` and `/internal/stats/`; two slashes are 404."""
    t = ticket(stack.reactor)
    stack.django.add("lobby", "old")
    status, _, body = stack.request("GET", f"/poll/lobby/?ticket={t}", {"Origin": ORIGIN})
    assert status == 200 and [m["body"] for m in orjson.loads(body)["messages"]] == ["old"]
    assert stack.request("GET", f"/poll/lobby//?ticket={t}")[0] == 404
    assert stack.request("GET", f"/poll//lobby?ticket={t}")[0] == 404
    assert stack.request("GET", "/healthz/")[0] == 200
    assert stack.request("GET", "/healthz//")[0] == 404
    assert stack.signed("GET", "/internal/stats/")[0] == 200
    assert stack.signed("GET", "/internal//stats")[0] == 404
    raw = stack.send(handshake(f"/ws/lobby/?ticket={t}", ORIGIN)).value()
    assert parse_response(raw)[0] == 101
    raw = stack.send(handshake(f"/ws/lobby//?ticket={ticket(stack.reactor)}", ORIGIN)).value()
    assert parse_response(raw)[0] == 404


# numbers in URLs ----------------------------------------------------------------------------

NOT_NUMBERS = [
    "1000000000000000000",  # 19 digits: over the bound
    str(MAX_ID + 1),
    "99999999999999999",  # 17 digits
    " 12",
    "12 ",
    "+12",
    "-1",
    "1_000",
    "١٢",  # Arabic-Indic digits: int() takes them
    "１２",  # full-width digits
    "0x10",
    "1e3",
    "1.0",
]


@given(st.text(max_size=24))
@settings(max_examples=500, deadline=None)
def test_parse_decimal_accepts_exactly_ascii_digits_up_to_the_bound(raw):
    """Accepted iff 1-16 ASCII digits with a value ≤ 2**53 - 1; int()'s extras are refused."""
    expected = (
        raw != "" and len(raw) <= 16 and all(c in "0123456789" for c in raw) and int(raw) <= MAX_ID
    )
    try:
        value = parse_decimal(raw)
    except ValueError:
        assert not expected
    else:
        assert expected and value == int(raw)


@given(st.integers(min_value=0, max_value=MAX_ID))
def test_parse_since_round_trips_every_id_in_range(value):
    """Every id up to the bound is accepted as written in ASCII."""
    assert parse_since(str(value)) == value == parse_since(str(value).encode())


@pytest.mark.parametrize("raw", NOT_NUMBERS)
def test_out_of_range_or_malformed_since_is_400_on_both_transports(stack, raw):
    """`since=1000000000000000000` used to close the socket with 1011 "reconnect" and answer the
    poll 503 (Django refused the read), telling clients to retry forever; every such value is now
    refused with 400 on the socket and 400 `bad_since` on the poll, before Django is asked."""
    from urllib.parse import quote

    since = quote(raw, safe="")
    raw_response = stack.send(
        handshake(f"/ws/lobby?ticket={ticket(stack.reactor)}&since={since}", ORIGIN)
    ).value()
    assert parse_response(raw_response)[0] == 400
    status, _, body = stack.request(
        "GET", f"/poll/lobby?ticket={ticket(stack.reactor)}&since={since}", {"Origin": ORIGIN}
    )
    assert status == 400 and orjson.loads(body)["error"] == "bad_since"
    assert stack.django.history_calls == 0


def test_the_largest_id_is_accepted_on_both_transports(stack):
    """`since=2**53-1` is a valid id: the socket opens, the poll is held."""
    raw = stack.send(
        handshake(f"/ws/lobby?ticket={ticket(stack.reactor)}&since={MAX_ID}", ORIGIN)
    ).value()
    assert parse_response(raw)[0] == 101
    transport = stack.send(
        f"GET /poll/lobby?ticket={ticket(stack.reactor, uid='u:2')}&since={MAX_ID} HTTP/1.1\r\n"
        "Host: x\r\n\r\n".encode()
    )
    assert transport.value() == b"" and stack.poll.active() == 1


@pytest.mark.parametrize("raw", ["+12", "١٢", "1_2", "99999999999999999"])
def test_control_message_id_follows_the_same_rule(stack, raw):
    """A deletion's message id is parsed by the same rule: 400 `bad_id`, nothing announced."""
    from urllib.parse import quote

    target = f"/internal/rooms/lobby/messages/{quote(raw, safe='')}/deleted"
    headers = signed_headers(SECRET, "POST", target, b"", stack.hub.clock.seconds())
    status, _, body = stack.request("POST", target, headers)
    assert status == 400 and orjson.loads(body)["error"] == "bad_id"


# Origin -------------------------------------------------------------------------------------


def _handshake_with_origins(path: str, origins: list[str]) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1:9000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"Origin: {origin}" for origin in origins),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    "origins",
    [["null"], ["file://"], ["http://"], ["not a url"], [ORIGIN, ORIGIN], ["http://evil.example"]],
)
def test_opaque_malformed_or_repeated_origin_is_403_through_the_real_handshake(stack, origins):
    """`Origin: null` got 400 from Autobahn before onConnect; every Origin the allowlist does
    not hold (opaque, malformed, repeated, foreign) gets the documented 403, like the poll."""
    raw = stack.send(_handshake_with_origins(f"/ws/lobby?ticket={ticket(stack.reactor)}", origins))
    assert parse_response(raw.value())[0] == 403
    assert stack.ws.connections == set()
    if len(origins) == 1:
        status, _, body = stack.request(
            "GET", f"/poll/lobby?ticket={ticket(stack.reactor)}", {"Origin": origins[0]}
        )
        assert status == 403 and orjson.loads(body)["error"] == "bad_origin"


def test_allowed_origin_still_opens(stack):
    """The allowlisted Origin opens a socket that gets hello."""
    transport = stack.send(handshake(f"/ws/lobby?ticket={ticket(stack.reactor)}", ORIGIN))
    status, _, body = parse_response(transport.value())
    assert status == 101 and isinstance(transport.protocol, ChatServerProtocol)
    assert orjson.loads(parse_frames(body)[0][1])["type"] == "hello"
