"""Socket tickets: short-lived, HMAC-signed proof that one identity may join one room.

The format is fixed by docs/protocol.md ("Socket tickets"); the chat server re-implements the
verification on its own, so this module uses the standard library only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any

VERSION = "v1"

# key -> accepted types; bool is a subclass of int, so "int" fields are checked separately.
_FIELDS: dict[str, tuple[type, ...]] = {
    "room": (str,),
    "uid": (str,),
    "user_id": (int, type(None)),
    "name": (str,),
    "guest": (bool,),
    "iat": (int,),
    "exp": (int,),
}
# Optional keys: key -> accepted types.
_OPTIONAL_FIELDS: dict[str, tuple[type, ...]] = {"iat_ms": (int,)}


class TicketError(Exception):
    """A ticket was refused; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def b64url_encode(data: bytes) -> str:
    """URL-safe base64 without ``=`` padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of :func:`b64url_encode`; raises ``ValueError`` on bad input."""
    try:
        raw = text.encode("ascii")
    except UnicodeEncodeError as exc:
        raise ValueError("not ascii") from exc
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("bad base64") from exc


def _signature(signed_part: str, secret: str) -> bytes:
    return hmac.new(secret.encode("utf-8"), signed_part.encode("ascii"), hashlib.sha256).digest()


def mint_ticket(
    room_slug: str,
    uid: str,
    user_id: int | None,
    name: str,
    guest: bool,
    ttl: int,
    secret: str,
    now: float | None = None,
) -> str:
    """Return a ticket letting ``uid`` join ``room_slug`` for ``ttl`` seconds.

    ``now`` (Unix seconds, float) is the minting time; pass the moment *before* the rights the
    ticket grants were read, so a revocation after that moment covers it (docs/protocol.md:
    ``iat_ms`` is compared with revocation cut-offs).
    """
    iat_ms = int((time.time() if now is None else now) * 1000)
    iat = iat_ms // 1000
    payload = {
        "room": room_slug,
        "uid": uid,
        "user_id": user_id,
        "name": name,
        "guest": guest,
        "iat": iat,
        "exp": iat + int(ttl),
        "iat_ms": iat_ms,
    }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    signed_part = f"{VERSION}.{b64url_encode(body)}"
    return f"{signed_part}.{b64url_encode(_signature(signed_part, secret))}"


def verify_ticket(
    ticket: str, room_slug: str, secrets: Iterable[str], now: float | None = None
) -> dict[str, Any]:
    """Return the payload of a valid ticket for ``room_slug``; raise :class:`TicketError`.

    ``secrets`` are every accepted key (the current one and, during a rotation, the previous one);
    empty entries are ignored.
    """
    if not isinstance(ticket, str):
        raise TicketError("malformed")
    parts = ticket.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise TicketError("malformed")
    signed_part = f"{parts[0]}.{parts[1]}"
    try:
        given = b64url_decode(parts[2])
    except ValueError as exc:
        raise TicketError("malformed") from exc
    # Check every secret (no early exit) so timing does not reveal which one matched.
    matched = False
    for secret in secrets:
        if secret and hmac.compare_digest(_signature(signed_part, secret), given):
            matched = True
    if not matched:
        raise TicketError("bad_signature")
    try:
        payload = json.loads(b64url_decode(parts[1]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise TicketError("malformed") from exc
    if not isinstance(payload, dict):
        raise TicketError("malformed")
    for key, types in _FIELDS.items():
        if key not in payload:
            raise TicketError("malformed")
        value = payload[key]
        if isinstance(value, bool) and bool not in types:
            raise TicketError("malformed")
        if not isinstance(value, types):
            raise TicketError("malformed")
    for key, types in _OPTIONAL_FIELDS.items():
        value = payload.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, types):
            raise TicketError("malformed")
    if "iat_ms" in payload and payload["iat_ms"] // 1000 != payload["iat"]:
        raise TicketError("malformed")
    current = time.time() if now is None else now
    if payload["exp"] < current:
        raise TicketError("expired")
    if payload["room"] != room_slug:
        raise TicketError("wrong_room")
    return payload
