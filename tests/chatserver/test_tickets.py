"""Ticket verification against the format of docs/protocol.md: HS256 JSON Web Tokens.

The tokens here are built by hand with hmac and base64 (not with PyJWT, which the verifier uses),
so these tests prove that any correct JWT implementation interoperates with the chat server.
"""

import base64
import hashlib
import hmac
import json

import pytest

from chatserver.tickets import Identity, TicketError, mint_ticket, verify_ticket

NOW = 1_795_000_000
KEY = "a-shared-secret-of-32-bytes-0123"
OLD_KEY = "the-previous-secret-of-32-bytes!"
HS256 = {"alg": "HS256", "typ": "JWT"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _part(value: dict | bytes) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value, separators=(",", ":")).encode()
    return _b64(raw)


def hand_jwt(claims: dict | bytes, key: str = KEY, header: dict | bytes = HS256) -> str:
    """An HS256 JWS compact serialization (RFC 7515 3.1) computed with hmac and base64 only."""
    signed = _part(header) + "." + _part(claims)
    return signed + "." + _b64(hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest())


def claims(**changes) -> dict:
    """Valid claims for a signed-in user in room `lobby`, minted at NOW for 60 s."""
    base = {
        "aud": "room:lobby",
        "sub": "u:7",
        "user_id": 7,
        "name": "alice",
        "guest": False,
        "iat": NOW,
        "exp": NOW + 60,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def refusal(ticket: str, room: str = "lobby", now: float = NOW, **kw) -> str:
    with pytest.raises(TicketError) as info:
        verify_ticket(ticket, secrets=kw.pop("secrets", [KEY]), room=room, now=now, **kw)
    return info.value.reason


def test_known_answer_vector_computed_by_hand():
    """A JWT built by hand with hmac/base64 (any backend's side of the contract) verifies, equals
    the pinned vector, and mint_ticket (PyJWT) produces the very same bytes."""
    header = b'{"alg":"HS256","typ":"JWT"}'
    payload = (
        b'{"aud":"room:lobby","sub":"u:7","user_id":7,"name":"alice","guest":false,'
        b'"iat":1795000000,"exp":1795000060}'
    )
    ticket = hand_jwt(payload, header=header)
    assert ticket == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJhdWQiOiJyb29tOmxvYmJ5Iiwic3ViIjoidTo3IiwidXNlcl9pZCI6NywibmFtZSI6ImFsaWNlIiwiZ3Vlc3Q"
        "iOmZhbHNlLCJpYXQiOjE3OTUwMDAwMDAsImV4cCI6MTc5NTAwMDA2MH0."
        "gFK33QyYwk1EpdPk50eKsqS4xhIeqJrZGg6Joc_3Fi8"
    )
    assert verify_ticket(ticket, secrets=[KEY], room="lobby", now=NOW) == Identity(
        uid="u:7", user_id=7, name="alice", guest=False, issued_ms=1795000000000
    )
    assert mint_ticket(KEY, room="lobby", uid="u:7", name="alice", user_id=7, now=NOW) == ticket


def test_guest_ticket_iat_ms_and_key_order_do_not_matter():
    """A guest ticket (null user_id) with claims in any order and `iat_ms` verifies."""
    c = claims(sub="g:0123456789abcdef", user_id=None, guest=True, iat_ms=NOW * 1000 + 250)
    ticket = hand_jwt(dict(reversed(c.items())))
    identity = verify_ticket(ticket, secrets=[KEY], room="lobby", now=NOW)
    assert identity.guest and identity.user_id is None and identity.uid == "g:0123456789abcdef"
    assert identity.issued_ms == NOW * 1000 + 250


def test_previous_secret_is_accepted_while_configured_only():
    """Rotation: a ticket signed with the previous secret verifies when it is listed after the
    current one, not once it is gone; a ticket signed with any other key never verifies."""
    old = hand_jwt(claims(), key=OLD_KEY)
    assert verify_ticket(old, secrets=[KEY, OLD_KEY], room="lobby", now=NOW).uid == "u:7"
    assert refusal(old, secrets=[KEY]) == "bad_signature"
    assert refusal(hand_jwt(claims(), key="someone-else-s-secret-of-32-bytes")) == "bad_signature"
    # Empty entries (no previous secret configured) are skipped, not used as a key.
    assert refusal(hand_jwt(claims(), key=""), secrets=[KEY, ""]) == "bad_signature"


def test_algorithm_is_pinned_to_hs256():
    """`alg: none` (no signature), an RS256 header over an HMAC made with the shared secret
    (key confusion), HS512 and a missing `alg` are all refused: the header never picks the
    algorithm."""
    unsigned = _part({"alg": "none", "typ": "JWT"}) + "." + _part(claims()) + "."
    assert refusal(unsigned) == "bad_signature"
    assert refusal(hand_jwt(claims(), header={"alg": "RS256", "typ": "JWT"})) == "bad_signature"
    assert refusal(hand_jwt(claims(), header={"alg": "HS512"})) == "bad_signature"
    assert refusal(hand_jwt(claims(), header={"typ": "JWT"})) == "bad_signature"


def test_tampered_tickets_are_refused():
    """Changing the payload (another user, another room) or one signature character breaks it."""
    header, _, signature = hand_jwt(claims()).split(".")
    for forged_claims in (claims(sub="u:1", user_id=1), claims(aud="room:other")):
        assert refusal(f"{header}.{_part(forged_claims)}.{signature}") == "bad_signature"
    good = hand_jwt(claims())
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    assert refusal(flipped) == "bad_signature"


@pytest.mark.parametrize(
    "ticket, reason",
    [
        ("", "missing"),
        ("not a jwt", "malformed"),
        ("a.b", "malformed"),
        (hand_jwt(claims()) + ".x", "malformed"),
        (hand_jwt(b'["not an object"]'), "malformed"),
        (hand_jwt(b"not json"), "malformed"),
        (hand_jwt(claims(), header=b'"HS256"'), "malformed"),
        ("é" + hand_jwt(claims()), "malformed"),
    ],
)
def test_malformed_tickets_are_refused(ticket, reason):
    """Anything not shaped like a JWS compact serialization of a JSON object is refused."""
    assert refusal(ticket) == reason


def test_expiry_follows_rfc_7519_without_leeway():
    """`exp` is the first second the ticket is refused (RFC 7519 4.1.4, leeway 0); the clock is
    the caller's `now` (the reactor's), not the wall clock."""
    ticket = hand_jwt(claims())
    assert verify_ticket(ticket, secrets=[KEY], room="lobby", now=NOW + 59.999)
    assert refusal(ticket, now=NOW + 60) == "expired"
    # A ticket for the year 2026 is valid whenever the reactor says it is 2026.
    assert verify_ticket(ticket, secrets=[KEY], room="lobby", now=NOW - 3600)


def test_audience_names_exactly_one_room():
    """`aud` must be the one string `room:<slug>` of the URL: another room, a list (even one
    holding this room), a bare slug and a missing or empty `aud` are refused."""
    assert refusal(hand_jwt(claims()), room="other") == "wrong_room"
    assert refusal(hand_jwt(claims(aud=["room:lobby"]))) == "wrong_room"
    assert refusal(hand_jwt(claims(aud=["room:lobby", "room:other"]))) == "wrong_room"
    assert refusal(hand_jwt(claims(aud="lobby"))) == "wrong_room"
    assert refusal(hand_jwt(claims(aud=...))) == "missing_key"
    assert refusal(hand_jwt(claims(aud=""))) == "missing_key"


def test_lifetime_is_bounded_by_the_max_ttl():
    """`exp - iat` over `max_ttl` is refused (`too_long`), and so is a ticket minted "in the
    future" whose `exp` is more than `max_ttl` away from now (it could outlive revocations)."""
    ok = hand_jwt(claims(exp=NOW + 3600))
    assert verify_ticket(ok, secrets=[KEY], room="lobby", now=NOW, max_ttl=3600)
    assert refusal(hand_jwt(claims(exp=NOW + 3601)), max_ttl=3600) == "too_long"
    future = hand_jwt(claims(iat=NOW + 7200, exp=NOW + 7260))
    assert refusal(future, max_ttl=3600) == "too_long"


def test_not_before_is_honoured():
    """A ticket carrying `nbf` is refused before that second (`not_yet_valid`), accepted from
    it; an `nbf` that is not an integer is refused."""
    ticket = hand_jwt(claims(nbf=NOW + 5))
    assert refusal(ticket) == "not_yet_valid"
    assert verify_ticket(ticket, secrets=[KEY], room="lobby", now=NOW + 5)
    assert refusal(hand_jwt(claims(nbf="soon"))) == "bad_key_type"


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"exp": ...}, "missing_key"),
        ({"iat": ...}, "missing_key"),
        ({"sub": ...}, "missing_key"),
        ({"name": ...}, "missing_key"),
        ({"guest": ...}, "missing_key"),
        ({"user_id": ...}, "missing_key"),
        ({"exp": None}, "missing_key"),
        ({"sub": 7}, "bad_key_type"),
        ({"sub": ""}, "bad_key_type"),
        ({"user_id": "7"}, "bad_key_type"),
        ({"user_id": True}, "bad_key_type"),
        ({"guest": 0}, "bad_key_type"),
        ({"exp": True}, "bad_key_type"),
        ({"exp": float(NOW + 60)}, "bad_key_type"),
        ({"iat": "1795000000"}, "bad_key_type"),
        ({"name": ""}, "bad_key_type"),
        ({"name": "x" * 65}, "bad_key_type"),
        ({"iat_ms": NOW * 1000 + 1000}, "bad_key_type"),
        ({"jti": 5}, "bad_key_type"),
    ],
)
def test_missing_claims_and_wrong_types_are_refused(changes, reason):
    """A correctly signed ticket with a missing claim or a claim of the wrong type is refused."""
    assert refusal(hand_jwt(claims(**changes))) == reason
