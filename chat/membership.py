"""Members of rooms and invitations to private rooms (the models; the rules are in chat/invites.py
and chat/access.py).

A private room admits its members only. A member has a role: an ``owner`` invites people and
removes members, a ``member`` reads and writes. An invitation is either addressed to one user (by
username: only that user may accept it, once) or a link (anyone signed in who holds it may
accept it while it lasts). A link's token is shown once, when it is made; only its SHA-256 is
stored, so the database never holds a usable link.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .models import Room

OWNER = "owner"
MEMBER = "member"
ROLE_CHOICES = [(OWNER, "Owner"), (MEMBER, "Member")]


class Membership(models.Model):
    """One user's membership of one room, with its role."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_memberships"
    )
    role = models.CharField(max_length=16, choices=ROLE_CHOICES, default=MEMBER)
    joined_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["room", "joined_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["room", "user"], name="chat_membership_room_user_uniq"),
            models.CheckConstraint(
                condition=models.Q(role__in=[OWNER, MEMBER]), name="chat_membership_role_known"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.room} ({self.role})"

    @property
    def is_owner(self) -> bool:
        """True when this member may invite and remove members."""
        return self.role == OWNER


class InviteQuerySet(models.QuerySet):
    """Queries over invitations."""

    def usable(self) -> InviteQuerySet:
        """Invitations that may still be accepted now: not revoked, not expired, uses left."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=timezone.now()).filter(
            models.Q(max_uses__isnull=True) | models.Q(uses__lt=models.F("max_uses"))
        )


class Invite(models.Model):
    """An invitation to a private room: to one user (``invitee``) or a link (``token_hash``).

    ``max_uses`` None means any number of people until it expires; 1 is a single-use link. A
    revoked or expired invitation, or one used up, admits nobody (chat/invites.py).
    """

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="invites")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    invitee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="chat_invites",
    )
    # Hex SHA-256 of the link's random token; NULL for an invitation addressed to a user.
    token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    max_uses = models.PositiveIntegerField(null=True, blank=True)
    uses = models.PositiveIntegerField(default=0)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = InviteQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            # Exactly one of the two kinds.
            models.CheckConstraint(
                condition=models.Q(invitee__isnull=True, token_hash__isnull=False)
                | models.Q(invitee__isnull=False, token_hash__isnull=True),
                name="chat_invite_user_or_link",
            ),
        ]

    def __str__(self) -> str:
        target = f"for {self.invitee}" if self.invitee_id else "link"
        return f"Invite to {self.room} ({target})"

    @property
    def is_link(self) -> bool:
        """True for a link invitation (else it is addressed to ``invitee``)."""
        return self.token_hash is not None

    def state(self) -> str:
        """``usable``, ``revoked``, ``expired`` or ``used_up`` (in that order of precedence)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= timezone.now():
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used_up"
        return "usable"
