"""Socket tickets: JSON Web Tokens (RFC 7519, HS256) checked with PyJWT (docs/protocol.md).

Any backend holding `CHAT_SHARED_SECRET` can mint one with any JWT library (Django does, through
`chat/tickets.py`); the chat server trusts a ticket because of its signature, not because it asked
Django. PyJWT checks the signature with the algorithm pinned to HS256 (never `none`, never read from
the token's header), the audience (`room:<slug>`, one string) and that the required claims are
there. Times are compared here, with the reactor's clock (`now`): PyJWT reads the wall clock
itself, and the chat server's notion of time is its reactor's (the same clock its revocations use).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.exceptions import (
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidJTIError,
    InvalidSignatureError,
    InvalidSubjectError,
    InvalidTokenError,
    MissingRequiredClaimError,
)

ALGORITHMS = ["HS256"]
# Claims that must be present and not null (PyJWT's `require`); `user_id` may be null, so it is
# checked below instead.
REQUIRED_CLAIMS = ["aud", "sub", "iat", "exp", "name", "guest"]
_DECODE_OPTIONS: Any = {
    "require": REQUIRED_CLAIMS,
    # The audience must be one string equal to the room's, not a list that merely contains it:
    # a ticket opens one room.
    "strict_aud": True,
    # Compared below against the reactor's clock, not PyJWT's wall clock.
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}

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
    # When the ticket was minted, Unix milliseconds (`iat_ms`, else `iat` * 1000): compared with
    # revocations (chatserver/revocations.py). Not part of who the identity is.
    issued_ms: int = field(default=0, compare=False)

    def public(self) -> dict:
        """The `user` shape of frames: stable id (`uid`), display name and guest flag."""
        return {"id": self.uid, "name": self.name, "guest": self.guest}


# The `aud` claim of a user ticket: it opens the signed-in user's own feed (`/ws/@me`,
# `/poll/@me`) and no room; a room ticket (`room:<slug>`) never opens the feed.
FEED_AUDIENCE = "feed"


def audience(room: str) -> str:
    """The `aud` claim of a ticket for `room`."""
    return f"room:{room}"


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
    aud: str | None = None,
) -> str:
    """Mint a ticket as Django does (used by tests and benchmarks, never by the server).

    `iat_ms` (Unix milliseconds, within the second `now`) is added to the claims when given;
    `aud` replaces the room's audience (`FEED_AUDIENCE` for a user ticket).
    """
    claims: dict[str, Any] = {
        "aud": aud or audience(room),
        "sub": uid,
        "user_id": user_id,
        "name": name,
        "guest": guest,
        "iat": int(now),
        "exp": int(now) + ttl,
    }
    if iat_ms is not None:
        claims["iat_ms"] = iat_ms
    return jwt.encode(claims, secret, algorithm="HS256")


def _decode(ticket: str, secrets: Iterable[str], aud: str) -> dict[str, Any]:
    """PyJWT's checks with each accepted secret in turn (current first, then the previous one
    while a rotation is under way); PyJWT's refusals become the documented reasons."""
    for secret in secrets:
        if not secret:
            continue
        try:
            return jwt.decode(
                ticket,
                secret,
                algorithms=ALGORITHMS,
                audience=aud,
                options=_DECODE_OPTIONS,
            )
        except InvalidSignatureError:
            continue  # maybe signed with the other accepted secret
        except InvalidAlgorithmError:
            # `none`, RS256 (key confusion) or anything but HS256: not signed the way we sign.
            raise TicketError("bad_signature") from None
        except MissingRequiredClaimError:
            raise TicketError("missing_key") from None
        except InvalidAudienceError:
            raise TicketError("wrong_room") from None
        except (InvalidSubjectError, InvalidJTIError):
            raise TicketError("bad_key_type") from None
        except InvalidTokenError:
            # Not three base64url parts, a header or payload that is not a JSON object (or is
            # nested too deep to parse), an unsupported `crit` header.
            raise TicketError("malformed") from None
    raise TicketError("bad_signature")


def _typed(claims: dict[str, Any], key: str, kind: type) -> Any:
    value = claims[key]
    # bool is an int subclass: refuse True where an integer is expected.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
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

    `max_ttl` (seconds): a ticket whose lifetime `exp - iat`, or whose time left `exp - now`, is
    longer is refused (`too_long`), so a revocation kept that long covers every ticket it could
    refuse (docs/protocol.md).
    """
    return _verify(ticket, secrets, audience(room), now, max_ttl)


def verify_user_ticket(
    ticket: str, *, secrets: Iterable[str], now: float, max_ttl: float | None = None
) -> Identity:
    """The identity of a user ticket (`aud` = `FEED_AUDIENCE`), or `TicketError`.

    The same checks as `verify_ticket`; a room ticket is refused (`wrong_room`), and so is a
    guest's or one without a `user_id` (`not_a_user`): feeds are addressed by Django user id.
    """
    identity = _verify(ticket, secrets, FEED_AUDIENCE, now, max_ttl)
    if identity.guest or identity.user_id is None:
        raise TicketError("not_a_user")
    return identity


def _verify(
    ticket: str, secrets: Iterable[str], aud: str, now: float, max_ttl: float | None
) -> Identity:
    if not ticket or not isinstance(ticket, str):
        raise TicketError("missing")
    if not ticket.isascii():
        raise TicketError("malformed")
    claims = _decode(ticket, secrets, aud)
    uid = _typed(claims, "sub", str)
    name = _typed(claims, "name", str)
    guest = _typed(claims, "guest", bool)
    iat = _typed(claims, "iat", int)
    exp = _typed(claims, "exp", int)
    issued_ms = iat * 1000
    if "iat_ms" in claims:
        # Optional, for revocations: the same instant as `iat`, in milliseconds.
        issued_ms = _typed(claims, "iat_ms", int)
        if issued_ms // 1000 != iat:
            raise TicketError("bad_key_type")
    if "user_id" not in claims:
        raise TicketError("missing_key")
    user_id = claims["user_id"]
    if user_id is not None:
        _typed(claims, "user_id", int)
    if not uid or not 1 <= len(name) <= MAX_NAME_LENGTH:
        raise TicketError("bad_key_type")
    nbf = claims.get("nbf")
    if nbf is not None and _typed(claims, "nbf", int) > now:
        raise TicketError("not_yet_valid")
    # RFC 7519 4.1.4: refused on or after `exp` (no leeway).
    if exp <= now:
        raise TicketError("expired")
    if max_ttl is not None and max(exp - iat, exp - now) > max_ttl:
        raise TicketError("too_long")
    return Identity(uid=uid, user_id=user_id, name=name, guest=guest, issued_ms=issued_ms)
