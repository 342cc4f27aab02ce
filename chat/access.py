"""Who may read and write a room: the one rule every entry point applies.

The room page, the history API, tickets, search, lifecycle actions and (later) mentions and the
personal feed all ask here, so a new kind of room changes one module.

- ``public``: everyone, guests included;
- ``signed_in``: every signed-in user;
- ``private`` (direct conversations included): the room's members only (chat/membership.py).
  Staff are not special here: they manage members in the admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Q, QuerySet

from .models import PUBLIC, SIGNED_IN, Membership, Room


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
NOT_A_MEMBER = Refusal(
    403, "not_a_member", "This room is private: only its members may enter. Ask an owner."
)
# A direct conversation is nobody else's business: it answers as a room that does not exist.
UNKNOWN_ROOM = Refusal(404, "unknown_room", "No such room.")


def refusal(user: User | AnonymousUser, room: Room) -> Refusal | None:
    """None when :func:`may_read` allows ``user`` into ``room``, else why not: a guest outside a
    public room must sign in; a signed-in non-member of a private room is not a member; a direct
    conversation answers a non-member as an unknown room."""
    if may_read(user, room):
        return None
    if room.direct_key is not None:
        return UNKNOWN_ROOM
    if not user.is_authenticated:
        return SIGN_IN_REQUIRED
    return NOT_A_MEMBER


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
