"""Socket tickets as Django mints them: HS256 JSON Web Tokens, byte for byte as docs/protocol.md
describes them (checked by hand with hmac and base64, not with PyJWT), and Django's verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from chat.tickets import TicketError, mint_ticket, verify_ticket

SECRET = "s3cret-current-of-32-bytes-or-more"
OLD = "s3cret-previous-of-32-bytes-or-more"
NOW = 1_795_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hand_jwt(header: bytes, payload: bytes, secret: str = SECRET) -> str:
    signed = b64(header) + "." + b64(payload)
    return signed + "." + b64(hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest())


def ticket_for(room="lobby", secret=SECRET, now=NOW, ttl=60, **over) -> str:
    args = {"uid": "u:7", "user_id": 7, "name": "alice", "guest": False}
    args.update(over)
    return mint_ticket(room, ttl=ttl, secret=secret, now=now, **args)


def test_wire_format_matches_protocol():
    """The ticket is the JWS compact serialization of an HS256 JWT: the header
    {"alg":"HS256","typ":"JWT"}, compact JSON claims, HMAC-SHA256 with the shared secret over
    `header.payload`, base64url without padding; the same bytes as a token built by hand."""
    ticket = ticket_for(now=NOW + 0.25)
    header, payload, _ = ticket.split(".")
    assert "=" not in ticket
    assert json.loads(unb64(header)) == {"alg": "HS256", "typ": "JWT"}
    assert json.loads(unb64(payload)) == {
        "aud": "room:lobby",
        "sub": "u:7",
        "user_id": 7,
        "name": "alice",
        "guest": False,
        "iat": NOW,
        "exp": NOW + 60,
        "iat_ms": NOW * 1000 + 250,
    }
    expected = hand_jwt(
        b'{"alg":"HS256","typ":"JWT"}',
        b'{"aud":"room:lobby","sub":"u:7","user_id":7,"name":"alice","guest":false,'
        b'"iat":1795000000,"exp":1795000060,"iat_ms":1795000000250}',
    )
    assert ticket == expected


def test_independently_built_ticket_verifies():
    """A ticket built from the protocol text alone (not by mint_ticket or PyJWT) is accepted."""
    claims = {"aud": "room:lobby", "sub": "g:0123456789abcdef", "user_id": None, "name": "g-1"}
    claims.update({"guest": True, "iat": NOW, "exp": NOW + 5})
    ticket = hand_jwt(b'{"typ":"JWT","alg":"HS256"}', json.dumps(claims).encode())
    assert verify_ticket(ticket, "lobby", [SECRET], now=NOW) == claims


def test_round_trip():
    """A fresh ticket verifies and gives back its claims."""
    claims = verify_ticket(ticket_for(), "lobby", [SECRET], now=NOW + 1)
    assert claims["sub"] == "u:7" and claims["name"] == "alice"


def test_payload_tampering_refused():
    """Changing the payload (e.g. to another user) breaks the signature."""
    header, payload, signature = ticket_for().split(".")
    claims = json.loads(unb64(payload)) | {"sub": "u:1", "user_id": 1}
    forged = f"{header}.{b64(json.dumps(claims).encode())}.{signature}"
    with pytest.raises(TicketError) as info:
        verify_ticket(forged, "lobby", [SECRET], now=NOW)
    assert info.value.reason == "bad_signature"


def test_signature_tampering_and_other_algorithms_refused():
    """One changed signature character, `alg: none` and an HS512 header are refused."""
    ticket = ticket_for()
    header, payload, _ = ticket.split(".")
    forged = ticket[:-2] + ("A" if ticket[-2] != "A" else "B") + ticket[-1]
    unsigned = b64(b'{"alg":"none"}') + "." + payload + "."
    hs512 = hand_jwt(b'{"alg":"HS512"}', unb64(payload))
    for bad in (forged, unsigned, hs512):
        with pytest.raises(TicketError) as info:
            verify_ticket(bad, "lobby", [SECRET], now=NOW)
        assert info.value.reason == "bad_signature"


def test_expired_refused():
    """A ticket is refused from its `exp` on (RFC 7519, no leeway)."""
    ticket = ticket_for(ttl=60)
    verify_ticket(ticket, "lobby", [SECRET], now=NOW + 59.9)
    with pytest.raises(TicketError) as info:
        verify_ticket(ticket, "lobby", [SECRET], now=NOW + 60)
    assert info.value.reason == "expired"


def test_wrong_room_refused():
    """A ticket for one room does not open another."""
    with pytest.raises(TicketError) as info:
        verify_ticket(ticket_for(room="lobby"), "members", [SECRET], now=NOW)
    assert info.value.reason == "wrong_room"


def test_previous_secret_accepted_unknown_refused():
    """During rotation the previous secret is accepted; any other secret is refused."""
    old_ticket = ticket_for(secret=OLD)
    assert verify_ticket(old_ticket, "lobby", [SECRET, OLD], now=NOW)["aud"] == "room:lobby"
    with pytest.raises(TicketError):
        verify_ticket(old_ticket, "lobby", [SECRET], now=NOW)
    with pytest.raises(TicketError):
        verify_ticket(ticket_for(secret="someone-else-of-32-bytes-or-more"), "lobby", [SECRET, OLD])


@pytest.mark.parametrize("ticket", ["", "a", "a.b", "a.b.c", "a.b.c.d", "!!.??.**", "é.a.b"])
def test_malformed_refused(ticket):
    """Anything not shaped like a ticket is refused with a TicketError, never another error."""
    with pytest.raises(TicketError):
        verify_ticket(ticket, "lobby", [SECRET], now=NOW)


def test_missing_or_mistyped_claim_refused():
    """A correctly signed ticket lacking `exp`, or with `exp` or `iat_ms` of the wrong kind, is
    refused."""
    base = {"aud": "room:lobby", "sub": "u:1", "user_id": 1, "name": "a", "guest": False}
    for claims, reason in (
        (base | {"iat": NOW}, "missing_key"),
        (base | {"iat": NOW, "exp": True}, "bad_key_type"),
        (base | {"iat": NOW, "exp": NOW + 9, "iat_ms": NOW * 1000 + 1000}, "bad_key_type"),
    ):
        ticket = hand_jwt(b'{"alg":"HS256"}', json.dumps(claims).encode())
        with pytest.raises(TicketError) as info:
            verify_ticket(ticket, "lobby", [SECRET], now=NOW)
        assert info.value.reason == reason
