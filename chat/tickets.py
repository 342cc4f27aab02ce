"""Socket tickets: short-lived JSON Web Tokens (RFC 7519, HS256) letting one identity join one room.

The claims are fixed by docs/protocol.md ("Socket tickets"). The chat server verifies tickets on
its own, with PyJWT as well; nothing but that contract is shared with it, so any other backend
holding the shared secret can mint tickets the same way (docs/examples/mint_ticket.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import jwt

ALGORITHMS = ["HS256"]
REQUIRED_CLAIMS = ["aud", "sub", "iat", "exp", "name", "guest"]
_DECODE_OPTIONS: Any = {
    "require": REQUIRED_CLAIMS,
    "strict_aud": True,
    # `now` is compared below, so tests can pass their own time.
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


class TicketError(Exception):
    """A ticket was refused; ``reason`` is a short machine-readable cause."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# The ``aud`` of a user ticket: the signed-in user's own feed (``/ws/@me``), never a room.
FEED_AUDIENCE = "feed"


def audience(room_slug: str) -> str:
    """The ``aud`` claim of a ticket for ``room_slug``."""
    return f"room:{room_slug}"


def mint_ticket(
    room_slug: str,
    uid: str,
    user_id: int | None,
    name: str,
    guest: bool,
    ttl: int,
    secret: str,
    now: float | None = None,
    aud: str | None = None,
) -> str:
    """Return a ticket letting ``uid`` join ``room_slug`` for ``ttl`` seconds.

    With ``aud=FEED_AUDIENCE`` it is a user ticket instead: it opens ``uid``'s personal feed
    and no room (``room_slug`` is ignored).

    ``now`` (Unix seconds, float) is the minting time; pass the moment *before* the rights the
    ticket grants were read, so a revocation after that moment covers it (docs/protocol.md:
    ``iat_ms`` is compared with revocation cut-offs).
    """
    iat_ms = int((time.time() if now is None else now) * 1000)
    iat = iat_ms // 1000
    claims = {
        "aud": aud or audience(room_slug),
        "sub": uid,
        "user_id": user_id,
        "name": name,
        "guest": guest,
        "iat": iat,
        "exp": iat + int(ttl),
        "iat_ms": iat_ms,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_ticket(
    ticket: str, room_slug: str, secrets: Iterable[str], now: float | None = None
) -> dict[str, Any]:
    """Return the claims of a valid ticket for ``room_slug``; raise :class:`TicketError`.

    ``secrets`` are every accepted key (the current one and, during a rotation, the previous one),
    tried in that order; empty entries are ignored. The chat server's verifier
    (``chatserver/tickets.py``) is the one that admits sockets and checks every claim's type; this
    one applies the same signature, audience, expiry and ``iat_ms`` rules.
    """
    if not isinstance(ticket, str) or not ticket.isascii():
        raise TicketError("malformed")
    claims = None
    for secret in secrets:
        if not secret:
            continue
        try:
            claims = jwt.decode(
                ticket,
                secret,
                algorithms=ALGORITHMS,
                audience=audience(room_slug),
                options=_DECODE_OPTIONS,
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.InvalidAlgorithmError:
            raise TicketError("bad_signature") from None
        except jwt.MissingRequiredClaimError:
            raise TicketError("missing_key") from None
        except jwt.InvalidAudienceError:
            raise TicketError("wrong_room") from None
        except jwt.InvalidTokenError:
            raise TicketError("malformed") from None
    if claims is None:
        raise TicketError("bad_signature")
    iat, exp, iat_ms = claims["iat"], claims["exp"], claims.get("iat_ms", 0)
    if any(isinstance(v, bool) or not isinstance(v, int) for v in (iat, exp, iat_ms)):
        raise TicketError("bad_key_type")
    if "iat_ms" in claims and iat_ms // 1000 != iat:
        raise TicketError("bad_key_type")
    if exp <= (time.time() if now is None else now):
        raise TicketError("expired")
    return claims
