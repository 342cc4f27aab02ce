"""Direct conversations: a private room of exactly two users, found again by who they are.

The room of users 7 and 12 has ``direct_key`` ``"7-12"`` (lower id first), whoever opens it: a
unique column, so two people opening their conversation at the same moment (or one person in
two tabs) end up in one room; the loser of the race reads the winner's room. Both people are
members (role ``member``: nobody owns, invites to or removes from a direct conversation).
Guests have no account to address, so they can neither open nor receive one.
"""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction

from .invites import MembershipError
from .membership import MEMBER, Membership
from .models import PRIVATE, Room

NAME_LIMIT = 100  # Room.name's max_length


def direct_key(a_id: int, b_id: int) -> str:
    """The key of the conversation between users ``a_id`` and ``b_id`` (order does not matter)."""
    low, high = sorted((int(a_id), int(b_id)))
    return f"{low}-{high}"


def open_direct(user: AbstractBaseUser, other_id: int) -> Room:
    """The direct conversation of signed-in ``user`` with user ``other_id``, made on first use.

    Raises :class:`~chat.invites.MembershipError`: ``unknown_user`` for no such active user
    (a guest has none), ``self`` for a conversation with oneself.
    """
    other = get_user_model().objects.filter(pk=other_id, is_active=True).first()
    if other is None:
        raise MembershipError("unknown_user", "No such user: guests cannot be messaged directly.")
    if other.pk == user.pk:
        raise MembershipError("self", "A direct conversation is with someone else.")
    key = direct_key(user.pk, other.pk)
    found = Room.objects.filter(direct_key=key).first()
    if found is not None:
        return found
    return create_direct(user, other, key)


def create_direct(user: AbstractBaseUser, other: AbstractBaseUser, key: str) -> Room:
    """Make the room for ``key``; when another request made it first (the unique key refuses
    this one), answer that room. Also used directly by the tests of that race."""
    low, high = sorted((user, other), key=lambda u: u.pk)
    name = f"{low.get_username()} & {high.get_username()}"[:NAME_LIMIT]
    slug = f"dm-{key}"
    for attempt in range(2):
        try:
            with transaction.atomic():
                room = Room.objects.create(name=name, slug=slug, visibility=PRIVATE, direct_key=key)
                Membership.objects.bulk_create(
                    [
                        Membership(room=room, user=low, role=MEMBER),
                        Membership(room=room, user=high, role=MEMBER),
                    ]
                )
                return room
        except IntegrityError:
            found = Room.objects.filter(direct_key=key).first()
            if found is not None:
                return found
            # The slug belongs to some other room (made by staff): take a unique one.
            slug = f"dm-{key}-{secrets.token_hex(4)}"
            if attempt:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def other_person(room: Room, user: AbstractBaseUser) -> AbstractBaseUser | None:
    """The other member of direct conversation ``room`` seen by ``user`` (None when gone)."""
    membership = (
        Membership.objects.filter(room=room).exclude(user=user).select_related("user").first()
    )
    return membership.user if membership is not None else None
