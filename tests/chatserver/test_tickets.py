"""Ticket verification against the format of docs/protocol.md."""

import base64
import hashlib
import hmac

import pytest

from chatserver.tickets import Identity, TicketError, mint_ticket, verify_ticket

NOW = 1_795_000_000


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_known_answer_vector_computed_by_hand():
    """A ticket built by hand with hmac/base64 (Django's side of the contract) verifies."""
    payload = (
        b'{"room":"lobby","uid":"u:7","user_id":7,"name":"alice","guest":false,'
        b'"iat":1795000000,"exp":1795000060}'
    )
    signed = "v1." + _b64(payload)
    sig = hmac.new(b"k3y", signed.encode(), hashlib.sha256).digest()
    ticket = signed + "." + _b64(sig)
    assert verify_ticket(ticket, secrets=["k3y"], room="lobby", now=NOW) == Identity(
        uid="u:7", user_id=7, name="alice", guest=False, issued_ms=1795000000000
    )
    # mint_ticket produces the same bytes for the same payload.
    assert mint_ticket("k3y", room="lobby", uid="u:7", name="alice", user_id=7, now=NOW) == ticket


def test_guest_ticket_and_previous_secret():
    """A guest ticket with null user_id verifies; the previous secret is accepted too."""
    t = mint_ticket("old", room="r", uid="g:0123456789abcdef", name="Guest 1", guest=True, now=NOW)
    identity = verify_ticket(t, secrets=["new", "old"], room="r", now=NOW)
    assert identity.guest and identity.user_id is None


@pytest.mark.parametrize(
    "mutate, reason",
    [
        (lambda t: t.replace("v1.", "v2.", 1), "malformed"),
        (lambda t: t + ".x", "malformed"),
        (lambda t: t[:-3] + ("AAA" if t[-3:] != "AAA" else "BBB"), "bad_signature"),
        (lambda t: "v1." + _b64(b'{"room":"lobby"}') + "." + t.split(".")[2], "bad_signature"),
        (lambda t: "", "missing"),
    ],
)
def test_tampered_and_malformed_tickets_are_refused(mutate, reason):
    """Changing any part of a ticket, or its shape, is refused with a reason."""
    t = mint_ticket("s", room="lobby", uid="u:1", name="a", user_id=1, now=NOW)
    with pytest.raises(TicketError) as info:
        verify_ticket(mutate(t), secrets=["s"], room="lobby", now=NOW)
    assert info.value.reason == reason


def test_expired_and_wrong_room():
    """exp in the past and another room's ticket are refused."""
    t = mint_ticket("s", room="lobby", uid="u:1", name="a", user_id=1, now=NOW, ttl=60)
    assert verify_ticket(t, secrets=["s"], room="lobby", now=NOW + 60)
    with pytest.raises(TicketError, match="expired"):
        verify_ticket(t, secrets=["s"], room="lobby", now=NOW + 61)
    with pytest.raises(TicketError, match="wrong_room"):
        verify_ticket(t, secrets=["s"], room="other", now=NOW)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"room":"lobby","uid":"u:1","name":"a","guest":false,"iat":1,"exp":9999999999}',
        b'{"room":"lobby","uid":"u:1","user_id":"1","name":"a","guest":false,"iat":1,'
        b'"exp":9999999999}',
        b'{"room":"lobby","uid":"u:1","user_id":1,"name":"a","guest":0,"iat":1,"exp":9999999999}',
        b'{"room":"lobby","uid":"u:1","user_id":1,"name":"a","guest":false,"iat":1,"exp":true}',
        b'["not an object"]',
    ],
)
def test_missing_keys_and_wrong_types_are_refused(payload):
    """A correctly signed payload with a missing key or wrong type is still refused."""
    signed = "v1." + _b64(payload)
    t = signed + "." + _b64(hmac.new(b"s", signed.encode(), hashlib.sha256).digest())
    with pytest.raises(TicketError):
        verify_ticket(t, secrets=["s"], room="lobby", now=NOW)
