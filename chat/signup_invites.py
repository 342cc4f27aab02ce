"""Sign-up invites for ``CHAT_SIGNUP = "invite"``: signed, expiring tokens, no table.

An invite is ``django.core.signing.dumps({"i": <16 hex>}, salt=SALT)``: signed with the
project's ``SECRET_KEY`` and time-stamped (Django's ``TimestampSigner``), so it needs no storage
and cannot be forged or altered. It stays valid for ``CHAT_SIGNUP_INVITE_MAX_AGE`` seconds from
when it was made, and may be used by more than one person until then (like a team's invite link);
changing ``SECRET_KEY`` voids every invite at once. Staff make one with
``manage.py signupinvite`` (docs/operations.md, "Who may sign up").
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.core import signing

SALT = "chat.signup-invite"

EXPIRED = "This invitation has expired. Ask for a new one."
INVALID = "This invitation is not valid. Check that the whole link was copied."
MISSING = "Signing up needs an invitation. Ask an administrator for an invitation link."


def mint_invite() -> str:
    """A new sign-up invite (URL-safe text, about 60 characters)."""
    return signing.dumps({"i": secrets.token_hex(8)}, salt=SALT)


def invite_error(token: object) -> str | None:
    """Why ``token`` is not a usable invite (a sentence for the visitor), or None when it is.

    Refused: missing or not text, a bad signature (altered, made with another key, or not an
    invite), and an invite older than ``CHAT_SIGNUP_INVITE_MAX_AGE`` seconds.
    """
    if not isinstance(token, str) or not token.strip():
        return MISSING
    try:
        data = signing.loads(token.strip(), salt=SALT, max_age=settings.CHAT_SIGNUP_INVITE_MAX_AGE)
    except signing.SignatureExpired:
        return EXPIRED
    except signing.BadSignature:
        return INVALID
    if not isinstance(data, dict) or not isinstance(data.get("i"), str):
        return INVALID
    return None
