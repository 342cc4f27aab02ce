"""Who may read and write a room: the one rule every entry point applies.

The room page, the history API, tickets, search, lifecycle actions and (later) mentions and the
personal feed all ask here, so a new kind of room (private, direct) changes one module.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from .models import Room


def may_read(user: User | AnonymousUser, room: Room) -> bool:
    """True when ``user`` (signed in or anonymous) may read and write in ``room``.

    A signed-in user may enter any open room; a visitor only a room that allows guests.
    Archiving is not an access rule: an archived room stays readable, it refuses new messages.
    """
    return user.is_authenticated or room.allow_guests


def readable_rooms(user: User | AnonymousUser) -> QuerySet[Room]:
    """The rooms ``user`` may read, as a query (the same rule as :func:`may_read`)."""
    rooms = Room.objects.all()
    if not user.is_authenticated:
        rooms = rooms.filter(allow_guests=True)
    return rooms
