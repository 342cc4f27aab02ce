"""Socket tickets: verify (and, for tests and benchmarks, mint) the format of docs/protocol.md.

    signed = "v1." + b64url(payload_json)
    ticket = signed + "." + b64url(HMAC-SHA256(secret, signed))

Standard library only: the chat server trusts a ticket because of its signature, not because it
asked Django.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

_PREFIX = "v1"
# A display name is 1 to 64 characters (docs/protocol.md, "Names"), the width of Django's name
# columns; tests/contract/test_shared_rules.py checks that both processes keep the same number.
MAX_NAME_LENGTH = 64


class TicketError(Exception):
    """A ticket was refused; `reason` is a short machine-readable word (never the ticket)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a verified ticket speaks for."""

    uid: str
    user_id: int | None
    name: str
    guest: bool
    # When Django minted the ticket, Unix milliseconds (`iat_ms`, else `iat` * 1000): compared
    # with revocations (chatserver/revocations.py). Not part of who the identity is.
    issued_ms: int = field(default=0, compare=False)

    def public(self) -> dict:
        """The `user` shape of frames: stable id (`uid`), display name and guest flag."""
        return {"id": self.uid, "name": self.name, "guest": self.guest}


def b64url_encode(raw: bytes) -> str:
    """URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of `b64url_encode`; raises `TicketError` on malformed input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TicketError("malformed") from None


def _sign(secret: str, signed_part: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), signed_part.encode("ascii"), hashlib.sha256).digest()


def mint_ticket(
    secret: str,
    *,
    room: str,
    uid: str,
    name: str,
    user_id: int | None = None,
    guest: bool = False,
    now: int,
    ttl: int = 60,
    iat_ms: int | None = None,
) -> str:
    """Mint a ticket in Django's format (used by tests and benchmarks, never by the server).

    `iat_ms` (Unix milliseconds, within the second `now`) is added to the payload when given.
    """
    payload: dict = {
        "room": room,
        "uid": uid,
        "user_id": user_id,
        "name": name,
        "guest": guest,
        "iat": int(now),
        "exp": int(now) + ttl,
    }
    if iat_ms is not None:
        payload["iat_ms"] = iat_ms
    body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    signed_part = f"{_PREFIX}.{b64url_encode(body)}"
    return f"{signed_part}.{b64url_encode(_sign(secret, signed_part))}"


def _typed(payload: dict, key: str, kind: type | tuple[type, ...]) -> object:
    if key not in payload:
        raise TicketError("missing_key")
    value = payload[key]
    # bool is an int subclass: refuse True where an integer is expected.
    if isinstance(value, bool) and kind is not bool:
        raise TicketError("bad_key_type")
    if not isinstance(value, kind):
        raise TicketError("bad_key_type")
    return value


def verify_ticket(
    ticket: str,
    *,
    secrets: Iterable[str],
    room: str,
    now: float,
    max_ttl: float | None = None,
) -> Identity:
    """Return the identity a ticket carries, or raise `TicketError` with the reason.

    `max_ttl` (seconds): a ticket whose lifetime `exp - iat` is longer is refused (`too_long`),
    so a revocation kept that long covers every ticket it could refuse (docs/protocol.md).
    """
    if not ticket or not isinstance(ticket, str):
        raise TicketError("missing")
    parts = ticket.split(".")
    if len(parts) != 3 or parts[0] != _PREFIX:
        raise TicketError("malformed")
    signed_part = f"{parts[0]}.{parts[1]}"
    try:
        signed_part.encode("ascii")
    except UnicodeEncodeError:
        raise TicketError("malformed") from None
    signature = b64url_decode(parts[2])
    # Compare against every accepted secret without stopping early, so timing does not tell
    # which secret matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(_sign(secret, signed_part), signature)
    if not matched:
        raise TicketError("bad_signature")
    try:
        payload = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a (signed) payload nested deeper than json can parse.
        raise TicketError("malformed") from None
    if not isinstance(payload, dict):
        raise TicketError("malformed")
    ticket_room = _typed(payload, "room", str)
    uid = _typed(payload, "uid", str)
    name = _typed(payload, "name", str)
    guest = _typed(payload, "guest", bool)
    iat = _typed(payload, "iat", int)
    exp = _typed(payload, "exp", int)
    issued_ms = iat * 1000
    if "iat_ms" in payload:
        # Optional, added for revocations: the same instant as `iat`, in milliseconds.
        issued_ms = _typed(payload, "iat_ms", int)
        if issued_ms // 1000 != iat:
            raise TicketError("bad_key_type")
    if "user_id" not in payload:
        raise TicketError("missing_key")
    user_id = payload["user_id"]
    if user_id is not None and (isinstance(user_id, bool) or not isinstance(user_id, int)):
        raise TicketError("bad_key_type")
    if not uid or not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise TicketError("bad_key_type")
    if exp < now:
        raise TicketError("expired")
    if max_ttl is not None and exp - iat > max_ttl:
        raise TicketError("too_long")
    if ticket_room != room:
        raise TicketError("wrong_room")
    return Identity(uid=uid, user_id=user_id, name=name, guest=guest, issued_ms=issued_ms)
