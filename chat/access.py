"""Who may read and write a room: the one rule every entry point applies.

The room page, the history API, tickets, search, lifecycle actions and (later) mentions and the
personal feed all ask here, so a new kind of room changes one module.

- ``public``: everyone, guests included;
- ``signed_in``: every signed-in user;
- ``private`` (direct conversations included): the room's members only (chat/membership.py).
  Staff are not special here: they manage members in the admin.

A private room does not exist for anyone outside it: every path that takes a slug finds the
room with :func:`known_room`, which answers such a room as no room at all, before anything else
about it (archived, its messages) is told; :func:`refusal` answers it ``unknown_room`` too. So
nobody can probe which private room names exist (docs/security.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from .models import PRIVATE, PUBLIC, SIGNED_IN, Membership, Room


def may_read(user: User | AnonymousUser, room: Room) -> bool:
    """True when ``user`` (signed in or anonymous) may read and write in ``room``.

    Archiving is not an access rule: an archived room stays readable, it refuses new messages.
    """
    if room.visibility == PUBLIC:
        return True
    if not user.is_authenticated:
        return False
    if room.visibility == SIGNED_IN:
        return True
    return membership(user, room) is not None


@dataclass(frozen=True)
class Refusal:
    """Why ``user`` may not enter a room: an HTTP ``status``, the protocol's ``code`` and a text
    for people (docs/protocol.md, "Errors")."""

    status: int
    code: str
    message: str


SIGN_IN_REQUIRED = Refusal(403, "sign_in_required", "Sign in to join this room.")
# A private room (a direct conversation too) is nobody else's business: it answers everyone
# outside it, guests, signed-in users and staff alike, as a room that does not exist.
UNKNOWN_ROOM = Refusal(404, "unknown_room", "No such room.")


def hidden_from(user: User | AnonymousUser, room: Room) -> bool:
    """True when ``room`` must not be known to exist for ``user``: private, and ``user`` (or a
    guest) is not a member."""
    return room.visibility == PRIVATE and not may_read(user, room)


def known_room(user: User | AnonymousUser, slug: str) -> Room | None:
    """The room ``slug`` as ``user`` may know it: None when no room has that slug or when it is
    hidden from the user (:func:`hidden_from`). Callers answer None exactly as an unknown slug,
    and ask this first, before telling anything else about the room (archived, messages)."""
    room = Room.objects.filter(slug=slug).first()
    if room is None or hidden_from(user, room):
        return None
    return room


def refusal(user: User | AnonymousUser, room: Room) -> Refusal | None:
    """None when :func:`may_read` allows ``user`` into ``room``, else why not: a private room
    answers a non-member as an unknown room; a guest outside a sign-in room must sign in."""
    if may_read(user, room):
        return None
    if hidden_from(user, room):
        return UNKNOWN_ROOM
    return SIGN_IN_REQUIRED


def membership(user: User | AnonymousUser, room: Room) -> Membership | None:
    """The user's membership of ``room`` (any visibility), or None (always None for guests)."""
    if not user.is_authenticated:
        return None
    return Membership.objects.filter(room=room, user=user).first()


def readable_rooms(user: User | AnonymousUser) -> QuerySet[Room]:
    """The rooms ``user`` may read, as a query (the same rule as :func:`may_read`)."""
    if not user.is_authenticated:
        return Room.objects.filter(visibility=PUBLIC)
    mine = Membership.objects.filter(user=user).values("room_id")
    return Room.objects.filter(Q(visibility__in=[PUBLIC, SIGNED_IN]) | Q(pk__in=mine))


def is_owner(user: User | AnonymousUser, room: Room) -> bool:
    """True when ``user`` owns ``room`` (may invite and remove members)."""
    found = membership(user, room)
    return found is not None and found.is_owner
