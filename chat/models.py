"""Rooms and messages, and the one function that turns a message into the protocol's shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

# The body limit is a setting (`CHAT_MAX_BODY`, read by both processes); the lengths below are
# fixed by the database columns, and the chat server keeps the same numbers (chatserver/tickets.py,
# chatserver/frames.py; checked by tests/contract/test_shared_rules.py).
MAX_NAME_LENGTH = 64
MAX_NONCE_LENGTH = 64
MAX_UID_LENGTH = 40
USER_UID_RE = re.compile(r"u:[1-9][0-9]{0,18}")
GUEST_UID_RE = re.compile(r"g:[0-9a-f]{16}")
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Code points no store can take (docs/protocol.md, "storable text"): NUL, which PostgreSQL cannot
# keep in text, and UTF-16 surrogates, which have no UTF-8 encoding (JSON's "\ud800" decodes to
# one in Python). The chat server applies the same rule (chatserver/frames.py).
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")
UNSTORABLE_TEXT = "cannot contain NUL characters or unpaired surrogates"


def has_unstorable(text: str) -> bool:
    """True when ``text`` holds U+0000 or a surrogate code point (U+D800 to U+DFFF)."""
    return UNSTORABLE_RE.search(text) is not None


def is_valid_nonce(nonce: object) -> bool:
    """True when ``nonce`` is 1 to 64 characters of ``[A-Za-z0-9_-]`` (docs/protocol.md)."""
    return isinstance(nonce, str) and NONCE_RE.fullmatch(nonce) is not None


def body_error(body: str) -> str | None:
    """The protocol error code for a message body, or None when the body is acceptable.

    The rule applies to the body after stripping surrounding white space, which is what is stored.
    """
    stripped = body.strip()
    if not stripped:
        return "empty_body"
    if len(stripped) > settings.CHAT_MAX_BODY:
        return "body_too_long"
    if has_unstorable(stripped):
        # The database cannot store it: refuse the one item instead of failing the batch.
        return "bad_body"
    return None


def body_too_long_text() -> str:
    """The human text of ``body_too_long``, naming the configured limit."""
    return f"A message has at most {settings.CHAT_MAX_BODY} characters."


def iso_utc_ms(moment: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and a ``Z`` suffix, as the protocol wants."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# The fields of a room whose change changes who may be connected (chat/signals.py).
ROOM_ACCESS_FIELDS = ("slug", "allow_guests", "is_archived")


class RoomQuerySet(models.QuerySet):
    """Queries over rooms; `update()` reports access changes like `save()` does."""

    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update`` that tells the chat server (after commit) when it archives,
        un-archives, renames or closes rooms to guests: bulk updates send no model signals."""
        if not set(kwargs) & set(ROOM_ACCESS_FIELDS):
            return super().update(**kwargs)
        from .signals import room_changed

        with transaction.atomic(using=self.db):
            # By primary key: the rows locked and compared are exactly the ones updated, whatever
            # this queryset joins or annotates (FOR UPDATE refuses GROUP BY).
            rooms = Room._default_manager.using(self.db).filter(
                pk__in=list(self.values_list("pk", flat=True))
            )
            rows = rooms.select_for_update().values("pk", *ROOM_ACCESS_FIELDS)
            before = {row.pop("pk"): row for row in rows}
            count = super().update(**kwargs)
            for row in rooms.values("pk", *ROOM_ACCESS_FIELDS):
                room_changed(before[row.pop("pk")], row)
        return count


class Room(models.Model):
    """A chat room; URLs use its slug."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=300, blank=True)
    allow_guests = models.BooleanField(
        default=False, help_text="Anonymous visitors may read and write under a guest name."
    )
    is_archived = models.BooleanField(
        default=False, help_text="Archived rooms are hidden and read-only; sockets are closed."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse text the database cannot store in any text field (admin, commands, forms).

        In ``clean`` rather than as field validators, so the rule needs no migration.
        """
        super().clean()
        errors = {
            field: f"The {field} {UNSTORABLE_TEXT}."
            for field in ("name", "slug", "description")
            if has_unstorable(getattr(self, field) or "")
        }
        if errors:
            raise ValidationError(errors)


class MessageQuerySet(models.QuerySet):
    """Queries over messages."""

    def visible(self) -> MessageQuerySet:
        """Messages that have not been deleted by a moderator."""
        return self.filter(is_deleted=False)


class Message(models.Model):
    """One stored chat message. Deletion is soft so moderation leaves a trace."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="chat_messages",
    )
    # The name shown when the message was sent: users may rename later, guests have no account.
    author_name = models.CharField(max_length=MAX_NAME_LENGTH)
    author_is_guest = models.BooleanField(default=False)
    # The stable author id of the ticket that sent it: "u:<user id>" or "g:<16 hex>" (a guest's
    # session). "Own message" is decided by it, never by the display name. Empty for old rows
    # whose author cannot be known (guests before this field existed).
    author_uid = models.CharField(max_length=MAX_UID_LENGTH, blank=True, default="")
    # No max_length: the limit is the CHAT_MAX_BODY setting, checked in clean() and by the
    # internal API (a setting in a field's arguments would ask for a migration when it changes).
    body = models.TextField()
    sent_at = models.DateTimeField(default=timezone.now, db_index=True)
    nonce = models.CharField(max_length=MAX_NONCE_LENGTH)
    # Set by the last edit; `version` counts edits, so the newest one wins when edit events race
    # across chat server instances (chatserver/events.py, `versioned`).
    edited_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)
    # Counts reaction changes: the newest summary wins when `reactions` events race.
    reactions_version = models.PositiveIntegerField(default=0)
    is_deleted = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            # A retried send carries the same nonce, so it can never store a second row.
            models.UniqueConstraint(fields=["room", "nonce"], name="chat_message_room_nonce_uniq")
        ]
        indexes = [models.Index(fields=["room", "id"], name="chat_message_room_id_idx")]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.body[:40]}"

    def clean(self) -> None:
        """Apply the protocol's rules for body and nonce."""
        super().clean()
        errors: dict[str, str] = {}
        code = body_error(self.body or "")
        if code == "empty_body":
            errors["body"] = "A message cannot be empty."
        elif code == "body_too_long":
            errors["body"] = body_too_long_text()
        elif code == "bad_body":
            errors["body"] = f"A message {UNSTORABLE_TEXT}."
        if not is_valid_nonce(self.nonce):
            errors["nonce"] = "A nonce is 1 to 64 characters of letters, digits, '_' and '-'."
        if errors:
            raise ValidationError(errors)

    @property
    def sent_at_iso(self) -> str:
        """``sent_at`` in the protocol's format."""
        return iso_utc_ms(self.sent_at)

    def reaction_summary(self) -> list[dict[str, Any]]:
        """The protocol's ``reactions``: one entry per emoji, oldest first, with who reacted.

        Reads the prefetched reactions when the caller prefetched them (lists of messages do).
        """
        by_emoji: dict[str, dict[str, Any]] = {}
        for reaction in sorted(self.reactions.all(), key=lambda r: (r.created_at, r.pk)):
            entry = by_emoji.setdefault(reaction.emoji, {"emoji": reaction.emoji, "users": []})
            entry["users"].append({"id": reaction.uid, "name": reaction.name})
        return [{**entry, "count": len(entry["users"])} for entry in by_emoji.values()]

    def to_dict(self, room_slug: str | None = None, *, fresh: bool = False) -> dict[str, Any]:
        """The protocol's message shape; the only place it is built.

        Pass ``room_slug`` when the caller already knows it, to avoid loading the room, and
        ``fresh`` for a message just created (it has no reactions: no query).
        """
        return {
            "id": self.id,
            "room": room_slug if room_slug is not None else self.room.slug,
            "user": {
                "id": self.author_uid,
                "name": self.author_name,
                "guest": self.author_is_guest,
            },
            "body": self.body,
            "sent_at": self.sent_at_iso,
            "nonce": self.nonce,
            "edited_at": iso_utc_ms(self.edited_at) if self.edited_at else None,
            "version": self.version,
            "reactions": [] if fresh else self.reaction_summary(),
            "reactions_version": self.reactions_version,
        }


class Reaction(models.Model):
    """One person's emoji on one message (a toggle: reacting again with it removes the row)."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="reactions")
    # The reactor's stable id ("u:<id>" or "g:<hex>") and the name shown when it reacted.
    uid = models.CharField(max_length=MAX_UID_LENGTH)
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    # One emoji (validated with the `emoji` package: a single emoji, ZWJ sequences included).
    EMOJI_MAX = 32
    emoji = models.CharField(max_length=EMOJI_MAX)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "uid", "emoji"], name="chat_reaction_message_uid_emoji_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.emoji} on {self.message_id}"


class NameClaim(models.Model):
    """A display name in use, so that no one else may take the same or a look-alike name.

    One row per identity (``uid``): every registered user holds its username for good (the row
    follows the user, see ``chat.signals``), a guest holds its current name while it was seen
    within ``CHAT_GUEST_NAME_HOLD`` seconds (``last_seen`` is refreshed when a page, a ticket or
    a rename is served to it). ``key`` is ``chat.names.name_key(name)``: two guests can never
    hold the same key (a partial unique constraint); a guest may not take a user's key.
    """

    uid = models.CharField(max_length=MAX_UID_LENGTH, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="chat_name_claim",
    )
    name = models.CharField(max_length=MAX_NAME_LENGTH)
    key = models.TextField(db_index=True)
    guest = models.BooleanField()
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(guest=True), name="chat_nameclaim_guest_key_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.uid})"


class ReadState(models.Model):
    """How far one user has read one room, and whether its notifications are muted.

    ``last_read_id`` only moves forward (the newest message id that has been on that user's
    screen, on any device). A row also says the user follows the room: the room list shows its
    unread count, and new messages raise feed events for it (chat/attention.py). ``seen_at`` is
    the last time the room was open on one of the user's screens (``@here`` reaches those seen
    within ``CHAT_HERE_WINDOW`` seconds).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_read_states"
    )
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="read_states")
    last_read_id = models.BigIntegerField(default=0)
    muted = models.BooleanField(default=False)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "room"], name="chat_readstate_user_room_uniq")
        ]
        indexes = [models.Index(fields=["room", "seen_at"], name="chat_readstate_room_seen_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.room_id} to {self.last_read_id}"


class Mention(models.Model):
    """A user named in a message (``@username``, or reached by ``@here``), recorded when stored.

    Only people who may read the room are recorded (``chat.access.may_read``).
    """

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_mentions"
    )
    # True when the user was reached by @here rather than by name.
    here = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user"], name="chat_mention_message_user_uniq"
            )
        ]
        indexes = [models.Index(fields=["user", "message"], name="chat_mention_user_msg_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.message_id}"
