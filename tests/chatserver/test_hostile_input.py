"""Hostile input against the chat server, in process: frames, tickets and signatures.

Everything here drives the real frame validator, ticket and signature verifiers and a real
`ChatServerProtocol` over `StringTransport` (the Django collaborator is the in-memory fake of
`tests/chatserver/support.py`). The property tests state the contract of each verifier: any input
gives either a valid result or one of the documented refusals, never another exception.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import struct
from collections.abc import Iterator

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.logger import globalLogPublisher

from chatserver.frames import ClientFrame, FrameError, parse_client_frame
from chatserver.protocol import ChatServerFactory
from chatserver.signing import SignatureError, signed_headers, verify_request
from chatserver.tickets import Identity, TicketError, mint_ticket, verify_ticket
from tests.chatserver.support import (
    ORIGIN,
    SECRET,
    WsClient,
    client_frame,
    make_hub,
    ticket,
)

FRAME_ERROR_CODES = {
    "bad_json",
    "bad_frame",
    "unknown_type",
    "bad_nonce",
    "empty_body",
    "body_too_long",
    "bad_body",
}
# The refusal reasons docs/protocol.md lists ("Socket tickets"; `revoked` is the hub's). Every
# one means 403.
TICKET_REASONS = {
    "missing",
    "malformed",
    "missing_key",
    "bad_key_type",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "too_long",
    "wrong_room",
}
HS256 = {"alg": "HS256", "typ": "JWT"}
OLD_SECRET = "the-previous-secret-of-32-bytes!"
NOW = 1_795_000_000
DOCUMENTED_CLOSE_CODES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 4004, 4008}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture
def logged_failures() -> Iterator[list[dict]]:
    """Every event the server logged with a failure (an exception it did not expect)."""
    failures: list[dict] = []

    def observer(event: dict) -> None:
        if "log_failure" in event:
            failures.append(event)

    globalLogPublisher.addObserver(observer)
    try:
        yield failures
    finally:
        globalLogPublisher.removeObserver(observer)


@pytest.fixture
def env():
    """A hub with the in-memory Django, and the real WebSocket factory over it.

    Every fake client here shares one fake peer address: the address budget is lifted so the
    fuzzing meets the per-identity limits only."""
    hub, reactor, django = make_hub(
        address_rate=1e9, address_burst=10**9, max_address_connections=10**9
    )
    return hub, reactor, django, ChatServerFactory(hub, reactor, hub.config)


def open_client(env, name: str = "alice", uid: str = "u:1") -> WsClient:
    """A socket that completed the handshake; its hello is already read."""
    _, reactor, _, factory = env
    client = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor, uid=uid, name=name)}", ORIGIN)
    assert client.status == 101
    client.frames()
    return client


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0]


# -- the frame validator ----------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_frame_or_a_documented_error(raw):
    """Random bytes through the validator: a ClientFrame or a FrameError with a documented code."""
    try:
        frame = parse_client_frame(raw, 4000)
    except FrameError as exc:
        assert exc.code in FRAME_ERROR_CODES
    else:
        assert isinstance(frame, ClientFrame)


@settings(max_examples=400, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["type", "body", "nonce", "extra"]),
        json_values | st.sampled_from(["message", "typing", "ping"]),
    )
)
def test_any_json_object_gives_a_frame_or_a_documented_error(obj):
    """Structured JSON objects with any field types: valid frame or documented error code."""
    raw = json.dumps(obj).encode()
    try:
        frame = parse_client_frame(raw, 4000)
    except FrameError as exc:
        assert exc.code in FRAME_ERROR_CODES
        # A nonce is echoed only when it is well formed.
        assert exc.nonce is None or exc.nonce == obj.get("nonce")
    else:
        assert frame.type in {"message", "typing", "ping"}
        if frame.type == "message":
            assert frame.body == obj["body"].strip() and 1 <= len(frame.body) <= 4000
            assert frame.nonce == obj["nonce"]


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"\xff\xfe", "bad_json"),
        (b"null", "bad_frame"),
        (b'"message"', "bad_frame"),
        (b'{"type":["message"]}', "bad_frame"),
        (b'{"type":"message","nonce":"n1"}', "bad_frame"),
        (b'{"type":"message","body":"hi"}', "bad_frame"),
        (b'{"type":"message","body":"hi","nonce":7}', "bad_frame"),
        (b'{"type":"message","body":null,"nonce":"n1"}', "bad_frame"),
        (b'{"type":"message","body":"hi","nonce":"' + b"a" * 65 + b'"}', "bad_nonce"),
        (b'{"type":"message","body":"\\u00a0\\u2003\\n","nonce":"n1"}', "empty_body"),
        (b'{"type":"message","body":"' + b"x" * 4001 + b'","nonce":"n1"}', "body_too_long"),
        (b'{"type":"Message","body":"hi","nonce":"n1"}', "unknown_type"),
        (b'{"type":"message","body":"\\ud800","nonce":"n1"}', "bad_body"),
    ],
)
def test_hostile_frames_map_to_their_codes(raw, code):
    """Wrong types, missing fields, lone surrogates and oversize bodies get their error codes."""
    with pytest.raises(FrameError) as info:
        parse_client_frame(raw, 4000)
    assert info.value.code == code


def test_control_characters_are_accepted_as_text_and_nul_is_refused():
    """Control characters inside a body are kept as text (rendering escapes them); a NUL is
    refused with `bad_body`, since the database cannot store it."""
    body = "a\x07b\x1bc\u202ed"
    frame = parse_client_frame(orjson.dumps({"type": "message", "body": body, "nonce": "n"}), 4000)
    assert frame.body == body
    with pytest.raises(FrameError) as info:
        parse_client_frame(orjson.dumps({"type": "message", "body": "a\x00b", "nonce": "n"}), 4000)
    assert (info.value.code, info.value.nonce) == ("bad_body", "n")


# -- the ticket verifier ----------------------------------------------------------------------


def check_ticket(text: str, secrets=(SECRET,), room: str = "lobby", now: float = NOW, max_ttl=None):
    """Verify, asserting the result is an Identity or a documented refusal."""
    try:
        identity = verify_ticket(text, secrets=secrets, room=room, now=now, max_ttl=max_ttl)
    except TicketError as exc:
        assert exc.reason in TICKET_REASONS
        return exc.reason
    assert isinstance(identity, Identity)
    return identity


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed(payload: object, secret: str = SECRET, header: object = HS256) -> str:
    """A JWT with a valid HS256 signature over any JSON payload, built by hand (hmac, base64)."""
    return _signed_raw(json.dumps(payload, ensure_ascii=False).encode(), secret, header)


def _signed_raw(raw: bytes, secret: str = SECRET, header: object = HS256) -> str:
    signed = _b64(json.dumps(header).encode()) + "." + _b64(raw)
    sig = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()
    return signed + "." + _b64(sig)


def _unsigned(payload: object) -> str:
    """An `alg: none` JWT (RFC 7519 6.1): header and payload, empty signature."""
    return _b64(b'{"alg":"none"}') + "." + _b64(json.dumps(payload).encode()) + "."


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_any_string_as_ticket_is_refused_with_a_documented_reason(text):
    """Random strings (any Unicode) are refused with a documented reason, never another error."""
    assert isinstance(check_ticket(text), str)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=40), min_size=1, max_size=4))
def test_dotted_strings_as_tickets_are_refused(parts):
    """Strings shaped like `<header>.<x>.<y>` (the split and base64 paths) are refused."""
    assert isinstance(check_ticket(".".join([_b64(json.dumps(HS256).encode()), *parts])), str)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, json_values)
def test_correctly_signed_arbitrary_headers_and_payloads_never_raise_another_error(header, payload):
    """A valid HMAC over any JSON header and payload: an Identity or a documented refusal."""
    check_ticket(_signed(payload))
    result = check_ticket(_signed(good_payload(), header=header))
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        assert isinstance(result, str)


@settings(max_examples=100, deadline=None)
@given(
    aud=json_values,
    sub=json_values,
    name=json_values,
    guest=json_values,
    iat=json_values,
    exp=json_values,
    user_id=json_values,
)
def test_signed_payloads_with_any_claim_types_are_judged_safely(
    aud, sub, name, guest, iat, exp, user_id
):
    """Every ticket claim with any JSON type: an Identity only when every type is right."""
    payload = {
        "aud": aud,
        "sub": sub,
        "name": name,
        "guest": guest,
        "iat": iat,
        "exp": exp,
        "user_id": user_id,
    }
    result = check_ticket(_signed(payload))
    if isinstance(result, Identity):
        assert aud == "room:lobby" and isinstance(guest, bool)
        assert type(exp) is int and type(iat) is int
        assert user_id is None or type(user_id) is int


def good_payload(**changes) -> dict:
    payload = {
        "aud": "room:lobby",
        "sub": "g:0123456789abcdef",
        "user_id": None,
        "name": "alice",
        "guest": True,
        "iat": NOW,
        "exp": NOW + 60,
    }
    payload.update(changes)
    return payload


def _tampered_payload() -> str:
    """A valid ticket whose payload was swapped for another user's, signature kept."""
    header, _, signature = _signed(good_payload()).split(".")
    forged = _b64(json.dumps(good_payload(sub="u:1", user_id=1, guest=False)).encode())
    return f"{header}.{forged}.{signature}"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", "missing"),
        ("abc", "malformed"),
        ("abc.def", "malformed"),
        ("é.abc.def", "malformed"),
        ("abc.d.e.f", "malformed"),
        (_signed(good_payload()) + ".x", "malformed"),
        (_b64(b"{}") + ".e30.!!!", "malformed"),  # junk is not skipped
        (_signed(good_payload())[:-2] + "AA", "bad_signature"),
        (_signed(good_payload(), secret="not-the-secret-but-32-bytes-long"), "bad_signature"),
        (_tampered_payload(), "bad_signature"),
        (_unsigned(good_payload()), "bad_signature"),  # alg none
        (_signed(good_payload(), header={"alg": "RS256", "typ": "JWT"}), "bad_signature"),
        (_signed(good_payload(), header={"alg": "HS384"}), "bad_signature"),
        (_signed(good_payload(), header={}), "bad_signature"),
        (_signed(good_payload(), header={"alg": "HS256", "crit": ["exp"]}), "malformed"),
        (_signed(good_payload(exp=NOW - 1)), "expired"),
        (_signed(good_payload(exp=NOW)), "expired"),
        (_signed(good_payload(nbf=NOW + 1)), "not_yet_valid"),
        (_signed(good_payload(aud="room:other")), "wrong_room"),
        (_signed(good_payload(aud=["room:lobby", "room:other"])), "wrong_room"),
        (_signed({k: v for k, v in good_payload().items() if k != "aud"}), "missing_key"),
        (_signed({k: v for k, v in good_payload().items() if k != "exp"}), "missing_key"),
        (_signed({k: v for k, v in good_payload().items() if k != "sub"}), "missing_key"),
        (_signed(good_payload(exp=True)), "bad_key_type"),
        (_signed(good_payload(user_id=True)), "bad_key_type"),
        (_signed(good_payload(sub=["g:0123456789abcdef"])), "bad_key_type"),
        (_signed(good_payload(name="")), "bad_key_type"),
        (_signed(good_payload(name="x" * 65)), "bad_key_type"),
        (_signed([1, 2]), "malformed"),
    ],
)
def test_bad_tickets_are_refused_with_their_reason(text, reason):
    """Forged, unsigned, re-headed, truncated, expired, other-room and mistyped tickets get
    their refusal reason."""
    assert check_ticket(text) == reason


def test_too_long_tickets_are_refused_and_the_previous_secret_only_during_rotation():
    """A ticket living longer than `max_ttl` is `too_long`; one signed with the previous secret
    verifies while that secret is listed (after the current one), `bad_signature` after."""
    assert check_ticket(_signed(good_payload(exp=NOW + 3601)), max_ttl=3600) == "too_long"
    old = _signed(good_payload(), secret="the-previous-secret-of-32-bytes!")
    assert isinstance(
        check_ticket(old, secrets=(SECRET, "the-previous-secret-of-32-bytes!")), Identity
    )
    assert check_ticket(old) == "bad_signature"


def test_non_ascii_name_is_accepted():
    """The payload is UTF-8: a non-ASCII display name (unescaped) verifies."""
    identity = check_ticket(_signed(good_payload(name="Zoë ☃")))
    assert identity.name == "Zoë ☃"


def test_signed_deeply_nested_payload_is_refused_not_crashing():
    """A (validly signed) payload nested 100,000 deep is refused as malformed, not a crash."""
    assert check_ticket(_signed_raw(b"[" * 100_000 + b"]" * 100_000)) == "malformed"


def test_deeply_nested_header_is_refused_before_any_signature_check():
    """The header is parsed before the signature is checked: nesting it 100,000 deep is
    refused as malformed, not a crash."""
    header = _b64(b"[" * 100_000 + b"]" * 100_000)
    assert check_ticket(f"{header}.{_b64(b'{}')}.AAAA") == "malformed"


# -- the signature verifier -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    timestamp=st.none() | st.text(max_size=20),
    sig=st.none() | st.text(max_size=80),
    method=st.sampled_from(["GET", "POST", "get", "PUT"]),
    path=st.text(max_size=60),
    body=st.binary(max_size=100),
)
def test_any_signature_headers_are_accepted_or_refused_with_a_documented_code(
    timestamp, sig, method, path, body
):
    """Arbitrary header values: None (accepted) or SignatureError bad_signature/stale_request."""
    try:
        verify_request(
            (SECRET,),
            timestamp=timestamp,
            sig=sig,
            method=method,
            path_and_query=path,
            body=body,
            now=NOW,
        )
    except SignatureError as exc:
        assert exc.code in {"bad_signature", "stale_request"}


@settings(max_examples=200, deadline=None)
@given(path=st.text(max_size=60), body=st.binary(max_size=100), skew=st.integers(-200, 200))
def test_signatures_verify_exactly_within_the_window(path, body, skew):
    """A correct signature verifies iff its timestamp is within 60 s; a changed body never does."""
    headers = signed_headers(SECRET, "POST", path, body, NOW + skew)
    kwargs = dict(
        timestamp=headers["X-Chat-Timestamp"],
        sig=headers["X-Chat-Signature"],
        method="POST",
        path_and_query=path,
        now=NOW,
    )
    if abs(skew) <= 60:
        verify_request((SECRET,), body=body, **kwargs)
    else:
        with pytest.raises(SignatureError) as info:
            verify_request((SECRET,), body=body, **kwargs)
        assert info.value.code == "stale_request"
    with pytest.raises(SignatureError) as info:
        verify_request((SECRET,), body=body + b"x", **kwargs)
    assert info.value.code == "bad_signature"


def test_signature_with_a_removed_secret_is_refused():
    """A call signed with the previous secret verifies during rotation, not after."""
    headers = signed_headers("old", "GET", "/internal/stats", b"", NOW)
    kwargs = dict(
        timestamp=headers["X-Chat-Timestamp"],
        sig=headers["X-Chat-Signature"],
        method="GET",
        path_and_query="/internal/stats",
        body=b"",
        now=NOW,
    )
    verify_request((SECRET, "old"), **kwargs)
    with pytest.raises(SignatureError):
        verify_request((SECRET,), **kwargs)


# -- a real protocol over a fake transport ----------------------------------------------------


def test_invalid_utf8_in_a_text_frame_closes_1007(env, logged_failures):
    """A text frame that is not UTF-8 is failed by Autobahn with a real 1007 close frame."""
    client = open_client(env)
    client.protocol.dataReceived(client_frame(b'{"type":"ping","x":"\xc3\x28"}'))
    assert client.close_frame()[0] == 1007
    assert logged_failures == []


def test_binary_frame_closes_1003_and_oversize_closes_1009(env):
    """A binary frame is answered 1003; a text frame over the payload limit 1009."""
    client = open_client(env)
    client.protocol.dataReceived(client_frame(b"\x00" * 10, opcode=2))
    assert client.close_frame()[0] == 1003
    big = open_client(env, name="bob", uid="u:2")
    big.protocol.dataReceived(client_frame(b"x" * 65537))
    assert big.close_frame()[0] == 1009


def test_hostile_frames_get_error_frames_and_the_socket_stays_open(env):
    """Wrong types, missing nonce and unknown types get error frames; the socket stays up."""
    client = open_client(env)
    for obj in (
        [1, 2],
        {"type": None},
        {"type": "message", "body": "hi"},
        {"type": "message", "body": ["hi"], "nonce": "n1"},
        {"type": "message", "body": "hi", "nonce": "bad nonce!"},
        {"type": "shout"},
    ):
        client.send(obj)
    codes = [f["code"] for f in client.json_frames()]
    assert codes == [
        "bad_frame",
        "bad_frame",
        "bad_frame",
        "bad_frame",
        "bad_nonce",
        "unknown_type",
    ]
    client.send({"type": "ping"})
    assert client.json_frames() == [{"type": "pong"}]
    assert not client.transport.disconnecting


def test_repeated_nonce_delivers_nothing_new(env):
    """A second send with the same nonce is stored once and delivered to the room once."""
    _, reactor, django, _ = env
    alice = open_client(env)
    bob = open_client(env, name="bob", uid="u:2")
    alice.json_frames()
    alice.send({"type": "message", "body": "once", "nonce": "same-nonce"})
    reactor.advance(0.01)
    alice.send({"type": "message", "body": "once", "nonce": "same-nonce"})
    reactor.advance(0.01)
    assert len(django.batches) == 2  # the resend did reach Django (idempotent there)
    assert len(django.messages) == 1
    for client in (alice, bob):
        messages = [f for f in client.json_frames() if f["type"] == "message"]
        assert [m["nonce"] for m in messages] == ["same-nonce"]


def test_control_characters_are_stored_and_delivered_as_text(env, logged_failures):
    """Control characters are accepted, sent to Django as is and delivered as JSON text."""
    _, reactor, django, _ = env
    client = open_client(env)
    body = "bell\x07esc\x1b[31m rtl\u202e"
    client.send({"type": "message", "body": body, "nonce": "ctl"})
    reactor.advance(0.01)
    assert django.batches[0][0]["body"] == body
    (frame,) = [f for f in client.json_frames() if f["type"] == "message"]
    assert frame["body"] == body
    assert logged_failures == []


def test_fuzzed_text_frames_always_get_an_answer_or_a_documented_close(env, logged_failures):
    """2,000 random payloads as text frames: an error frame, a pong or a documented close each."""
    rng = random.Random(7)
    client = open_client(env)
    answered = closed = 0
    for i in range(2000):
        if client.protocol.state != client.protocol.STATE_OPEN:
            client = open_client(env, uid=f"u:{i}", name=f"n{i}")
        kind = rng.random()
        if kind < 0.4:
            payload = rng.randbytes(rng.randint(0, 64))
        elif kind < 0.8:
            payload = _mutated_frame(rng)
        else:
            payload = "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 20)))
            payload = payload.encode("utf-8", "surrogatepass")
        client.protocol.dataReceived(client_frame(payload))
        env[1].advance(0.5)  # tokens refill: the fuzz is not a flood
        frames = client.frames()
        # Only typing (relayed to the others) gets no answer; a resent nonce gets an `ack`.
        assert frames or _silent_ok(payload, env[2]), f"no answer to payload {i}: {payload!r}"
        for opcode, data in frames:
            if opcode == 8:
                assert close_code(data) in DOCUMENTED_CLOSE_CODES
                closed += 1
            else:
                assert opcode == 1
                frame = orjson.loads(data)
                assert frame["type"] in {"error", "pong", "message", "typing", "presence", "ack"}
                if frame["type"] == "error":
                    assert frame["code"] in FRAME_ERROR_CODES | {"rate_limited"}
                answered += 1
    assert answered > 500 and closed > 50
    assert logged_failures == []


def _silent_ok(payload: bytes, django) -> bool:
    try:
        frame = parse_client_frame(payload, 4000)
    except FrameError:
        return False
    return frame.type == "typing"


def _mutated_frame(rng: random.Random) -> bytes:
    """A nearly valid client frame with one field broken."""
    obj: dict = {"type": rng.choice(["message", "typing", "ping", "x", 1, None])}
    if rng.random() < 0.8:
        obj["body"] = rng.choice(["hi", "", " ", "x" * 4001, 5, None, ["a"], "\x00"])
    if rng.random() < 0.8:
        obj["nonce"] = rng.choice(["n-1", "", "a" * 65, "a b", 7, None, f"n{rng.random()}"])
    raw = json.dumps(obj).encode()
    if rng.random() < 0.3:
        cut = rng.randint(0, len(raw))
        raw = raw[:cut] + rng.randbytes(rng.randint(0, 3)) + raw[cut:]
    return raw


def test_fuzzed_raw_bytes_after_the_handshake_never_raise(env, logged_failures):
    """300 random byte streams (not frames at all) after the handshake: no exception escapes."""
    rng = random.Random(11)
    for i in range(300):
        client = open_client(env, uid=f"u:{i}", name=f"n{i}")
        client.protocol.dataReceived(rng.randbytes(rng.randint(1, 200)))
        env[1].advance(6)  # close handshake timeouts fire
        for opcode, data in client.frames():
            if opcode == 8 and len(data) >= 2:
                assert close_code(data) in DOCUMENTED_CLOSE_CODES
    assert logged_failures == []


# -- tickets at the handshake -----------------------------------------------------------------


def test_forged_expired_other_room_and_replayed_tickets_are_403(env):
    """Forged, expired, other-room and replayed-after-expiry tickets never upgrade."""
    hub, reactor, _, factory = env
    good = ticket(reactor)
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    assert WsClient(factory, f"/ws/lobby?ticket={forged}", ORIGIN).status == 403
    other = ticket(reactor, room="other")
    assert WsClient(factory, f"/ws/lobby?ticket={other}", ORIGIN).status == 403
    # A ticket may be used more than once while valid (reconnects), never after expiry.
    assert WsClient(factory, f"/ws/lobby?ticket={good}", ORIGIN).status == 101
    reactor.advance(61)
    assert WsClient(factory, f"/ws/lobby?ticket={good}", ORIGIN).status == 403


def test_old_secret_is_accepted_during_rotation_and_refused_after():
    """A ticket signed with the previous secret opens while it is configured, not after."""
    hub, reactor, _ = make_hub(previous_shared_secret=OLD_SECRET)
    old = mint_ticket(OLD_SECRET, room="lobby", uid="u:9", name="zoe", now=int(reactor.seconds()))
    rotating = ChatServerFactory(hub, reactor, hub.config)
    assert WsClient(rotating, f"/ws/lobby?ticket={old}", ORIGIN).status == 101
    hub_after, reactor_after, _ = make_hub()
    rotated = ChatServerFactory(hub_after, reactor_after, hub_after.config)
    assert WsClient(rotated, f"/ws/lobby?ticket={old}", ORIGIN).status == 403


def test_stalled_reader_is_cut_when_twisted_pauses_on_every_write():
    """Twisted's FileDescriptor calls pauseProducing on each write while full: still cut 4008."""
    hub, reactor, _ = make_hub(max_outgoing_buffer=10_000)
    factory = ChatServerFactory(hub, reactor, hub.config)
    slow = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN)
    slow.frames()
    for i in range(20):  # 20 x 1 KB after the pause: twice the bound
        slow.protocol.pauseProducing()  # what abstract.FileDescriptor.write does when full
        hub.fanout.publish(
            "lobby",
            {
                "id": i + 1,
                "room": "lobby",
                "user": {"name": "b", "guest": True},
                "body": "x" * 1000,
                "sent_at": "2026-11-22T09:14:03.512Z",
                "nonce": f"n{i}",
            },
        )
    assert slow.transport.disconnecting
