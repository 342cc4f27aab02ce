"""Who is chatting: a signed-in user, or a guest whose name and id live in the session.

A guest can never pass for a registered person or for another guest: every name it takes is
checked by ``chat.names`` (characters, and the look-alike key) against the names in use, kept as
``NameClaim`` rows (a user's username for good, a guest's name while that guest was seen within
``CHAT_GUEST_NAME_HOLD`` seconds). The stable author id (``uid``) is ``u:<user pk>`` or
``g:<16 hex>``; "own message" and presence are decided by it, never by the name.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from . import actions, ratelimits
from .access import may_read
from .models import MAX_NAME_LENGTH, NameClaim, Room
from .names import name_error, name_key

GUEST_ID_KEY = "chat_guest_id"
GUEST_NAME_KEY = "chat_guest_name"

# A guest's claim is refreshed at most this often (a write per page view would be wasteful).
_SEEN_REFRESH = timedelta(seconds=60)

NAME_TAKEN = "This name is taken, or looks too much like a name someone else uses."


class GuestLimitReached(Exception):
    """Too many new guest identities from this client address; ``retry_after`` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True)
class ChatIdentity:
    """The identity a ticket is minted for (see docs/protocol.md, ticket payload)."""

    uid: str
    user_id: int | None
    name: str
    guest: bool

    def public(self) -> dict:
        """The protocol's ``user`` shape: ``{"id": uid, "name": ..., "guest": ...}``."""
        return {"id": self.uid, "name": self.name, "guest": self.guest}


def may_join(request: HttpRequest, room: Room) -> bool:
    """The request's user may read and write ``room`` (``chat.access.may_read``)."""
    return may_read(request.user, room)


def _hold_cutoff():
    return timezone.now() - timedelta(seconds=settings.CHAT_GUEST_NAME_HOLD)


def name_taken(name: str, uid: str | None = None) -> bool:
    """True when ``name`` looks like (same ``name_key``) a name another identity holds.

    Holders are every registered user (its username, and its display name when it has one) and
    every guest seen within ``CHAT_GUEST_NAME_HOLD`` seconds; ``uid`` (the asking identity) is
    not counted against itself.
    """
    key = name_key(name)
    claims = NameClaim.objects.filter(Q(key=key) | Q(display_key=key))
    if uid is not None:
        claims = claims.exclude(uid=uid)
    return (
        claims.filter(guest=False).exists()
        or claims.filter(guest=True, last_seen__gte=_hold_cutoff()).exists()
    )


def claim_guest_name(uid: str, name: str) -> str | None:
    """Let guest ``uid`` hold ``name``; an error sentence when someone else holds its key.

    A guest whose hold has lapsed loses the name to the new holder (its row is removed; it gets
    a fresh default name the next time it is seen). Two concurrent claims of one key cannot both
    win: the database's unique constraint on guest keys decides.
    """
    key = name_key(name)
    now = timezone.now()
    with transaction.atomic():
        if name_taken(name, uid):
            return NAME_TAKEN
        NameClaim.objects.filter(key=key, guest=True).exclude(uid=uid).delete()
        try:
            with transaction.atomic():
                NameClaim.objects.update_or_create(
                    uid=uid, defaults={"name": name, "key": key, "guest": True, "last_seen": now}
                )
        except IntegrityError:
            return NAME_TAKEN
    return None


def forget_lapsed_guest_names(limit: int = 100) -> int:
    """Delete up to ``limit`` guest claims whose hold has lapsed; returns how many.

    Called whenever a new guest identity is created (which is rate-limited per address), so the
    table stays about as large as the number of guests seen within ``CHAT_GUEST_NAME_HOLD``.
    """
    lapsed = NameClaim.objects.filter(guest=True, last_seen__lt=_hold_cutoff()).order_by(
        "last_seen"
    )
    pks = list(lapsed.values_list("pk", flat=True)[:limit])
    return NameClaim.objects.filter(pk__in=pks).delete()[0] if pks else 0


def _default_guest_name(uid: str) -> str:
    """A free ``guest-NNNN`` name for ``uid`` (more digits when four keep colliding)."""
    for attempt in range(40):
        digits = 4 if attempt < 20 else 8
        number = secrets.randbelow(9 * 10 ** (digits - 1)) + 10 ** (digits - 1)
        name = f"guest-{number}"
        if claim_guest_name(uid, name) is None:
            return name
    raise RuntimeError("no free guest name found")  # pragma: no cover - 40 collisions in a row


def _held_name(uid: str, wanted: object) -> str:
    """The name guest ``uid`` may show now: ``wanted`` when it still holds it, else a default."""
    claim = NameClaim.objects.filter(uid=uid).first()
    if isinstance(wanted, str) and wanted:
        if claim is not None and claim.name == wanted:
            if claim.last_seen < timezone.now() - _SEEN_REFRESH:
                NameClaim.objects.filter(pk=claim.pk).update(last_seen=timezone.now())
            return wanted
        if name_error(wanted) is None and claim_guest_name(uid, wanted) is None:
            return wanted
    return _default_guest_name(uid)


def guest_identity(request: HttpRequest) -> ChatIdentity:
    """The session's guest identity, created on first use (``guest-NNNN``, 16 hex id).

    Creating one counts against the client address (``RATELIMIT_GUEST_IDENTITY``); over the
    limit it raises :class:`GuestLimitReached`. The session's name is re-checked against the
    names in use: a name lost meanwhile (its hold lapsed and someone else took it) is replaced.
    """
    session = request.session
    guest_id = session.get(GUEST_ID_KEY)
    if not isinstance(guest_id, str) or len(guest_id) != 16:
        retry_after = ratelimits.guest_identity_limited(request)
        if retry_after is not None:
            raise GuestLimitReached(retry_after)
        guest_id = secrets.token_hex(8)
        session[GUEST_ID_KEY] = guest_id
        forget_lapsed_guest_names()
    uid = f"g:{guest_id}"
    name = _held_name(uid, session.get(GUEST_NAME_KEY))
    if session.get(GUEST_NAME_KEY) != name:
        session[GUEST_NAME_KEY] = name
    return ChatIdentity(uid=uid, user_id=None, name=name, guest=True)


def chat_identity(request: HttpRequest) -> ChatIdentity:
    """The identity of this request: the user when signed in, otherwise the session's guest."""
    user = request.user
    if user.is_authenticated:
        return ChatIdentity(uid=f"u:{user.pk}", user_id=user.pk, name=shown_name(user), guest=False)
    return guest_identity(request)


def shown_name(user) -> str:
    """The name a registered user speaks under: its display name, else its username (at most
    ``MAX_NAME_LENGTH`` characters). One query (its ``NameClaim``)."""
    display = (
        NameClaim.objects.filter(uid=f"u:{user.pk}").values_list("display_name", flat=True).first()
    )
    return display or user.get_username()[:MAX_NAME_LENGTH]


def set_display_name(user, name: str) -> str | None:
    """Change a registered user's display name; an error sentence, or None when accepted.

    ``name`` is stripped; empty clears it (the username is shown again). Refused like a guest
    name: over ``MAX_NAME_LENGTH``, characters ``chat.names.name_error`` refuses (controls, bidi
    controls, nothing visible), and a look-alike (same ``name_key``) of another user's username
    or display name or of a name a guest holds now. An accepted change reaches the chat server
    after commit (``actions.renamed``): presence and the open sockets of the user switch at once
    on every instance; messages already sent keep the name they were sent under.
    """
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        return f"A name has at most {MAX_NAME_LENGTH} characters."
    if name:
        error = name_error(name)
        if error:
            return error
    uid = f"u:{user.pk}"
    before = shown_name(user)
    try:
        with transaction.atomic():
            if name and name_taken(name, uid):
                return NAME_TAKEN
            hold_username(user)  # the row exists for every user; make sure, then update it
            NameClaim.objects.filter(uid=uid).update(
                display_name=name, display_key=name_key(name) if name else ""
            )
    except IntegrityError:
        return NAME_TAKEN  # another user took the same display key at the same moment
    after = shown_name(user)
    if after != before:
        actions.renamed(uid, after)
    return None


def set_guest_name(request: HttpRequest, name: str) -> str | None:
    """Store a new guest name; return an error text, or None when it was accepted.

    Refused: empty, over ``MAX_NAME_LENGTH``, characters ``chat.names.name_error`` refuses, and
    a name that looks like one in use (:func:`claim_guest_name`). Accepted names reach the chat
    server at once (``actions.renamed``, after commit), so every open tab of the
    guest shows the new name. May raise :class:`GuestLimitReached` for a session without a guest.
    """
    name = name.strip()
    if not name:
        return "A name cannot be empty."
    if len(name) > MAX_NAME_LENGTH:
        return f"A name has at most {MAX_NAME_LENGTH} characters."
    error = name_error(name)
    if error:
        return error
    who = guest_identity(request)  # make sure the guest id exists too
    if who.name == name:
        return None
    error = claim_guest_name(who.uid, name)
    if error:
        return error
    request.session[GUEST_NAME_KEY] = name
    actions.renamed(who.uid, name)
    return None


def hold_username(user) -> bool:
    """Record (or update) the claim of a registered user on its username; True when an existing
    claim held another username (the user was renamed)."""
    name = user.get_username()
    before = NameClaim.objects.filter(uid=f"u:{user.pk}").values_list("name", flat=True).first()
    NameClaim.objects.update_or_create(
        uid=f"u:{user.pk}",
        defaults={
            "user": user,
            "name": name[:MAX_NAME_LENGTH],
            "key": name_key(name),
            "guest": False,
            "last_seen": timezone.now(),
        },
    )
    return before is not None and before != name[:MAX_NAME_LENGTH]


def username_error(username: str, user_pk: int | None = None) -> str | None:
    """Why ``username`` cannot be a registered username, or None (sign-up and admin forms).

    The character rule of ``chat.names.name_error``, and no look-alike (same key) of another
    user's username or of a name a guest holds now. ``user_pk`` is the user being edited.
    """
    error = name_error(username)
    if error:
        return error
    if name_taken(username, f"u:{user_pk}" if user_pk is not None else None):
        return NAME_TAKEN
    return None
