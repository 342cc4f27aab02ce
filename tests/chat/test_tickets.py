"""Socket tickets: the exact wire format, round trip, tampering, expiry, room and secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from chat.tickets import TicketError, mint_ticket, verify_ticket

SECRET = "s3cret-current"
OLD = "s3cret-previous"
NOW = 1_795_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def ticket_for(room="lobby", secret=SECRET, now=NOW, ttl=60, **over) -> str:
    args = {"uid": "u:7", "user_id": 7, "name": "alice", "guest": False}
    args.update(over)
    return mint_ticket(room, ttl=ttl, secret=secret, now=now, **args)


def test_wire_format_matches_protocol():
    """The ticket is v1.b64url(compact JSON).b64url(HMAC-SHA256 over 'v1.'+part2), no padding."""
    ticket = ticket_for()
    version, part2, part3 = ticket.split(".")
    assert version == "v1"
    assert "=" not in ticket
    raw = unb64(part2)
    payload = json.loads(raw)
    assert payload == {
        "room": "lobby",
        "uid": "u:7",
        "user_id": 7,
        "name": "alice",
        "guest": False,
        "iat": NOW,
        "exp": NOW + 60,
        "iat_ms": NOW * 1000,
    }
    assert b" " not in raw  # compact separators
    expected = hmac.new(SECRET.encode(), f"v1.{part2}".encode(), hashlib.sha256).digest()
    assert part3 == b64(expected)


def test_independently_built_ticket_verifies():
    """A ticket built from the protocol text alone (not by mint_ticket) is accepted."""
    payload = {"room": "lobby", "uid": "g:0123456789abcdef", "user_id": None, "name": "guest-1"}
    payload.update({"guest": True, "iat": NOW, "exp": NOW + 5})
    part2 = b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(SECRET.encode(), f"v1.{part2}".encode(), hashlib.sha256).digest()
    assert verify_ticket(f"v1.{part2}.{b64(sig)}", "lobby", [SECRET], now=NOW) == payload


def test_round_trip():
    """A fresh ticket verifies and gives back its payload."""
    payload = verify_ticket(ticket_for(), "lobby", [SECRET], now=NOW + 1)
    assert payload["uid"] == "u:7" and payload["name"] == "alice"


def test_payload_tampering_refused():
    """Changing the payload (e.g. to another user) breaks the signature."""
    version, part2, part3 = ticket_for().split(".")
    payload = json.loads(unb64(part2))
    payload["user_id"] = 1
    forged = f"{version}.{b64(json.dumps(payload, separators=(',', ':')).encode())}.{part3}"
    with pytest.raises(TicketError) as info:
        verify_ticket(forged, "lobby", [SECRET], now=NOW)
    assert info.value.reason == "bad_signature"


def test_signature_tampering_refused():
    """Changing one character of the signature is refused."""
    ticket = ticket_for()
    last = "A" if ticket[-2] != "A" else "B"
    forged = ticket[:-2] + last + ticket[-1]
    with pytest.raises(TicketError):
        verify_ticket(forged, "lobby", [SECRET], now=NOW)


def test_expired_refused():
    """A ticket is refused once exp < now, accepted exactly at exp."""
    ticket = ticket_for(ttl=60)
    verify_ticket(ticket, "lobby", [SECRET], now=NOW + 60)
    with pytest.raises(TicketError) as info:
        verify_ticket(ticket, "lobby", [SECRET], now=NOW + 61)
    assert info.value.reason == "expired"


def test_wrong_room_refused():
    """A ticket for one room does not open another."""
    with pytest.raises(TicketError) as info:
        verify_ticket(ticket_for(room="lobby"), "members", [SECRET], now=NOW)
    assert info.value.reason == "wrong_room"


def test_previous_secret_accepted_unknown_refused():
    """During rotation the previous secret is accepted; any other secret is refused."""
    old_ticket = ticket_for(secret=OLD)
    assert verify_ticket(old_ticket, "lobby", [SECRET, OLD], now=NOW)["room"] == "lobby"
    with pytest.raises(TicketError):
        verify_ticket(old_ticket, "lobby", [SECRET], now=NOW)
    with pytest.raises(TicketError):
        verify_ticket(ticket_for(secret="someone-else"), "lobby", [SECRET, OLD], now=NOW)


@pytest.mark.parametrize("ticket", ["", "v1", "v1.a", "v2.a.b", "v1.a.b.c", "v1.!!.??"])
def test_malformed_refused(ticket):
    """Anything not shaped like a ticket is refused with a TicketError, never another error."""
    with pytest.raises(TicketError):
        verify_ticket(ticket, "lobby", [SECRET], now=NOW)


def test_missing_or_mistyped_field_refused():
    """A correctly signed payload lacking a key, or with a wrong type, is refused."""
    for payload in (
        {"room": "lobby", "uid": "u:1", "user_id": 1, "name": "a", "guest": False, "iat": NOW},
        {"room": "lobby", "uid": "u:1", "user_id": "1", "name": "a", "guest": False}
        | {"iat": NOW, "exp": NOW + 9},
        {"room": "lobby", "uid": "u:1", "user_id": 1, "name": "a", "guest": 0}
        | {"iat": NOW, "exp": NOW + 9},
    ):
        part2 = b64(json.dumps(payload).encode())
        sig = hmac.new(SECRET.encode(), f"v1.{part2}".encode(), hashlib.sha256).digest()
        with pytest.raises(TicketError) as info:
            verify_ticket(f"v1.{part2}.{b64(sig)}", "lobby", [SECRET], now=NOW)
        assert info.value.reason == "malformed"
