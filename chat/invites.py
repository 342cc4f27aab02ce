"""Membership changes: invitations to private rooms (to a user, or as a link), accepting and
declining them, joining an open room, removing members and leaving (the models are in
chat/membership.py).

Every function here changes the database in one transaction with the rows it decides on
locked, so two people using the last use of a single-use link at once admit one of them. A
membership of a private room that ends reaches the chat server through the ``post_delete``
signal (chat/signals.py -> ``actions.member_removed``): the removed member's sockets close and
its held polls are answered at once. In an open room (public or sign-in) membership admits
nobody (everyone may enter): it means following the room (chat/attention.py), so joining and
leaving change only that.

Errors are :class:`MembershipError` with a protocol-style ``code`` and a text for people.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import actions
from .membership import MEMBER, OWNER, Invite, Membership
from .models import PRIVATE, ReadState, Room

# How long a link lives: the choices the members page offers (seconds -> label).
LINK_LIFETIMES = {
    3600: "1 hour",
    86400: "1 day",
    7 * 86400: "7 days",
    30 * 86400: "30 days",
}
DEFAULT_LINK_LIFETIME = 7 * 86400
# An invitation addressed to a user waits this long for an answer.
USER_INVITE_LIFETIME = timedelta(days=30)
# Link tokens: 32 random bytes, URL-safe base64 (43 characters).
TOKEN_BYTES = 32


class MembershipError(Exception):
    """A membership change that is refused: ``code`` for machines, the text for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def token_hash(token: str) -> str:
    """The stored form of a link token: hex SHA-256 (a leaked database holds no usable link)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _invitable(room: Room) -> None:
    if room.visibility != PRIVATE or room.direct_key is not None:
        raise MembershipError("not_private", "Only private rooms take invitations.")
    if room.is_archived:
        raise MembershipError("room_archived", "This room is archived.")


def make_link(
    room: Room, by: AbstractBaseUser, *, lifetime: int, single_use: bool
) -> tuple[Invite, str]:
    """A new invitation link to ``room`` valid ``lifetime`` seconds (one of ``LINK_LIFETIMES``),
    for one person or any number; returns it with its token, which is never stored or shown
    again."""
    _invitable(room)
    if lifetime not in LINK_LIFETIMES:
        raise MembershipError("bad_lifetime", "Choose how long the link lasts.")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    invite = Invite.objects.create(
        room=room,
        created_by=by,
        token_hash=token_hash(token),
        expires_at=timezone.now() + timedelta(seconds=lifetime),
        max_uses=1 if single_use else None,
    )
    return invite, token


def invite_user(room: Room, by: AbstractBaseUser, invitee: AbstractBaseUser) -> Invite:
    """Invite ``invitee`` to ``room``: it sees the invitation on its room list and accepts or
    declines it. Refused for a member, an inactive user, or while one is already pending."""
    _invitable(room)
    if not invitee.is_active:
        raise MembershipError("unknown_user", "No such user.")
    with transaction.atomic():
        if Membership.objects.filter(room=room, user=invitee).exists():
            raise MembershipError("already_member", f"{invitee.get_username()} is a member.")
        if Invite.objects.usable().filter(room=room, invitee=invitee).exists():
            raise MembershipError(
                "already_invited", f"{invitee.get_username()} is invited already."
            )
        invite = Invite.objects.create(
            room=room,
            created_by=by,
            invitee=invitee,
            expires_at=timezone.now() + USER_INVITE_LIFETIME,
            max_uses=1,
        )
        # The invitee's open room lists show it live (after commit, docs/protocol.md).
        actions.user_events([{"users": [invitee.pk], "event": invitation_event(invite, by)}])
        return invite


def invitation_event(invite: Invite, by: AbstractBaseUser) -> dict[str, Any]:
    """The ``invitation`` feed event of a pending invitation by username: ``{"type":
    "invitation", "id": <invite id>, "room", "room_name", "by": {"id", "name"}}``."""
    return {
        "type": "invitation",
        "id": invite.pk,
        "room": invite.room.slug,
        "room_name": invite.room.name,
        "by": {"id": f"u:{by.pk}", "name": by.get_username()},
    }


def find_link(token: str) -> Invite | None:
    """The link invitation whose token this is (in any state), or None."""
    if not isinstance(token, str) or not 1 <= len(token) <= 100:
        return None
    return Invite.objects.select_related("room").filter(token_hash=token_hash(token)).first()


def state_error(invite: Invite) -> MembershipError | None:
    state = invite.state()
    if state == "revoked":
        return MembershipError("invite_revoked", "This invitation was withdrawn.")
    if state == "expired":
        return MembershipError("invite_expired", "This invitation has expired.")
    if state == "used_up":
        return MembershipError("invite_used", "This invitation has been used.")
    if invite.room.is_archived:
        return MembershipError("room_archived", "This room is archived.")
    return None


def accept(invite_id: int, user: AbstractBaseUser) -> Room:
    """``user`` accepts invitation ``invite_id`` and becomes a member of its room (a member
    already stays one without using the invitation up); raises :class:`MembershipError`."""
    with transaction.atomic():
        invite = (
            Invite.objects.select_for_update().select_related("room").filter(pk=invite_id).first()
        )
        if invite is None or (invite.invitee_id is not None and invite.invitee_id != user.pk):
            raise MembershipError("unknown_invite", "No such invitation.")
        room = invite.room
        if Membership.objects.filter(room=room, user=user).exists():
            if invite.invitee_id is not None:
                invite.uses = invite.max_uses or 1
                invite.save(update_fields=["uses"])
            return room
        error = state_error(invite)
        if error is not None:
            raise error
        try:
            with transaction.atomic():
                Membership.objects.create(room=room, user=user, role=MEMBER)
        except IntegrityError:
            return room  # joined by another request a moment ago
        invite.uses += 1
        invite.save(update_fields=["uses"])
        return room


def decline(invite_id: int, user: AbstractBaseUser) -> None:
    """``user`` declines the invitation addressed to it (it stops being usable)."""
    updated = Invite.objects.filter(pk=invite_id, invitee=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if not updated:
        raise MembershipError("unknown_invite", "No such invitation.")


def revoke(room: Room, invite_id: int) -> Invite:
    """Withdraw an invitation of ``room`` (a link stops admitting at once)."""
    invite = Invite.objects.filter(pk=invite_id, room=room).first()
    if invite is None:
        raise MembershipError("unknown_invite", "No such invitation.")
    if invite.revoked_at is None:
        invite.revoked_at = timezone.now()
        invite.save(update_fields=["revoked_at"])
    return invite


def _owners_left(room: Room, without: Membership) -> int:
    return Membership.objects.filter(room=room, role=OWNER).exclude(pk=without.pk).count()


def remove_member(room: Room, user_id: int) -> Membership:
    """Remove member ``user_id`` from ``room`` (an owner's action). The last owner cannot be
    removed while other members remain; a direct conversation has no removals."""
    if room.direct_key is not None:
        raise MembershipError("direct_room", "A direct conversation keeps its two people.")
    with transaction.atomic():
        # Lock the room's memberships: two owners removing each other cannot leave none.
        members = list(Membership.objects.select_for_update().filter(room=room))
        target = next((m for m in members if m.user_id == user_id), None)
        if target is None:
            raise MembershipError("not_a_member", "That person is not a member.")
        if target.is_owner and len(members) > 1 and _owners_left(room, target) == 0:
            raise MembershipError(
                "last_owner", "The last owner cannot leave while other members remain."
            )
        target.delete()
    return target


def join(room: Room, user: AbstractBaseUser) -> Membership:
    """``user`` joins open ``room`` (public or sign-in) as a member, and so follows it from now
    on; a member already stays what it is. A private room admits by invitation only
    (``MembershipError`` ``invitation_only``)."""
    found = Membership.objects.filter(room=room, user=user).first()
    if found is not None:
        return found
    if room.visibility == PRIVATE:
        raise MembershipError("invitation_only", "A private room is joined by invitation.")
    try:
        with transaction.atomic():
            return Membership.objects.create(room=room, user=user, role=MEMBER)
    except IntegrityError:
        return Membership.objects.get(room=room, user=user)  # joined a moment ago


def leave(room: Room, user: AbstractBaseUser) -> Membership:
    """``user`` leaves ``room`` (same rule as :func:`remove_member`) and stops following it: its
    read state goes too, so the room leaves its unread counts and feed until it opens the room
    again (chat/attention.py: opening a room follows it)."""
    with transaction.atomic():
        left = remove_member(room, user.pk)
        ReadState.objects.filter(room=room, user=user).delete()
    return left


def make_owner(room: Room, user_id: int) -> Membership:
    """Give member ``user_id`` of ``room`` the owner role."""
    if room.direct_key is not None:
        raise MembershipError("direct_room", "A direct conversation has no owners.")
    updated = Membership.objects.filter(room=room, user_id=user_id).update(role=OWNER)
    if not updated:
        raise MembershipError("not_a_member", "That person is not a member.")
    return Membership.objects.get(room=room, user_id=user_id)
