"""Rooms, messages and their attachments, and the one function that turns a message into the
protocol's shape.

Who may enter a room is decided in chat/access.py from ``Room.visibility`` and the room's
``Membership`` rows (chat/membership.py holds the models of members and invitations).
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from . import markdown

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
# A reply quotes this many characters of its parent's body (docs/protocol.md, `reply_to`); the
# client shows what Django cut, so the number lives here alone.
REPLY_SNIPPET_CHARS = 100


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


# Who may enter a room (chat/access.py): everyone including guests, every signed-in user, or
# its members only. `Room.allow_guests` is kept as the stored shadow of "public" for code and
# data from before visibility existed (a database constraint keeps the two in step).
PUBLIC = "public"
SIGNED_IN = "signed_in"
PRIVATE = "private"
VISIBILITY_CHOICES = [
    (PUBLIC, "Public: guests too"),
    (SIGNED_IN, "Open to signed-in users"),
    (PRIVATE, "Private: members only"),
]

# The fields of a room whose change changes who may be connected (chat/signals.py).
ROOM_ACCESS_FIELDS = ("slug", "allow_guests", "visibility", "is_archived")


def visibility_for_guests(allow_guests: bool, visibility: str) -> str:
    """The visibility a room takes when old code sets ``allow_guests``: True opens it to guests;
    False closes a public room to them (signed-in users stay) and leaves other rooms as they are."""
    if allow_guests:
        return PUBLIC
    return SIGNED_IN if visibility == PUBLIC else visibility


class RoomQuerySet(models.QuerySet):
    """Queries over rooms; `update()` reports access changes like `save()` does."""

    def update(self, **kwargs: Any) -> int:
        """``QuerySet.update`` that tells the chat server (after commit) when it archives,
        un-archives, renames or closes rooms to guests: bulk updates send no model signals.

        ``allow_guests`` and ``visibility`` are updated together (either one given sets the
        other: ``visibility_for_guests``); both given and disagreeing raise ``ValueError``."""
        kwargs = _access_update(kwargs)
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


def _access_update(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` of an update with ``allow_guests`` and ``visibility`` kept in step."""
    has_guests, has_visibility = "allow_guests" in kwargs, "visibility" in kwargs
    if has_guests and has_visibility:
        if bool(kwargs["allow_guests"]) != (kwargs["visibility"] == PUBLIC):
            raise ValueError("allow_guests is true exactly when visibility is public")
    elif has_visibility:
        kwargs = {**kwargs, "allow_guests": kwargs["visibility"] == PUBLIC}
    elif has_guests:
        if kwargs["allow_guests"]:
            visibility: Any = PUBLIC
        else:
            visibility = models.Case(
                models.When(visibility=PUBLIC, then=models.Value(SIGNED_IN)),
                default=models.F("visibility"),
            )
        kwargs = {**kwargs, "visibility": visibility}
    return kwargs


class Room(models.Model):
    """A chat room; URLs use its slug.

    ``visibility`` says who may enter (chat/access.py). ``allow_guests`` is its stored shadow
    (true exactly when public): code that sets only ``allow_guests`` keeps working, saving the
    room derives ``visibility`` from it (``visibility_for_guests``); setting ``visibility``
    derives ``allow_guests``. A direct conversation (``direct_key`` set) is always private.
    """

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=50, unique=True)
    description = models.CharField(max_length=300, blank=True)
    visibility = models.CharField(
        max_length=16,
        choices=VISIBILITY_CHOICES,
        default=SIGNED_IN,
        help_text="Who may enter: everyone (guests too), signed-in users, or members only.",
    )
    allow_guests = models.BooleanField(
        default=False,
        editable=False,
        help_text="Anonymous visitors may read and write under a guest name (visibility public).",
    )
    # "<lower user id>-<higher user id>" for a direct conversation between two users, else NULL;
    # unique, so two people opening their conversation at once end up in one room.
    direct_key = models.CharField(max_length=41, unique=True, null=True, blank=True, editable=False)
    is_archived = models.BooleanField(
        default=False, help_text="Archived rooms are hidden and read-only; sockets are closed."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = RoomQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(visibility__in=[PUBLIC, SIGNED_IN, PRIVATE]),
                name="chat_room_visibility_known",
            ),
            models.CheckConstraint(
                condition=models.Q(visibility=PUBLIC, allow_guests=True)
                | (~models.Q(visibility=PUBLIC) & models.Q(allow_guests=False)),
                name="chat_room_allow_guests_is_public",
            ),
            models.CheckConstraint(
                condition=models.Q(direct_key__isnull=True) | models.Q(visibility=PRIVATE),
                name="chat_room_direct_is_private",
            ),
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        guests, visibility = kwargs.get("allow_guests"), kwargs.get("visibility")
        super().__init__(*args, **kwargs)
        if not args:  # built by code, not loaded (Model.from_db passes positional values)
            if visibility is None and guests is not None:
                self.visibility = visibility_for_guests(bool(guests), self.visibility)
            elif visibility is not None and guests is not None:
                if bool(guests) != (visibility == PUBLIC):
                    raise ValueError("allow_guests is true exactly when visibility is public")
            self.allow_guests = self.visibility == PUBLIC
        self._access_seen = (self.visibility, self.allow_guests)

    def __str__(self) -> str:
        return self.name

    @property
    def is_direct(self) -> bool:
        """True for a direct conversation between two users (chat/direct.py)."""
        return self.direct_key is not None

    @property
    def is_private(self) -> bool:
        """True when only members may enter."""
        return self.visibility == PRIVATE

    def _sync_access(self) -> None:
        """Keep ``allow_guests`` and ``visibility`` in step, whichever one the caller changed
        since the room was loaded or saved (visibility wins when both changed)."""
        seen_visibility, seen_guests = self._access_seen
        if self.visibility != seen_visibility:
            self.allow_guests = self.visibility == PUBLIC
        elif self.allow_guests != seen_guests:
            self.visibility = visibility_for_guests(self.allow_guests, self.visibility)

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save with ``allow_guests`` and ``visibility`` in step (both written when either is)."""
        self._sync_access()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"allow_guests", "visibility"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "allow_guests", "visibility"}
        super().save(*args, **kwargs)
        self._access_seen = (self.visibility, self.allow_guests)

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        """Reload, and take the stored access fields as the ones seen."""
        super().refresh_from_db(*args, **kwargs)
        self._access_seen = (self.visibility, self.allow_guests)

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

    def shaped(self) -> MessageQuerySet:
        """With what ``Message.to_dict`` reads of other rows (the parent a reply quotes, its
        files for a quote of a files-only message, reactions, attachments) fetched alongside:
        a list of messages costs a fixed number of queries, not one per message."""
        return self.select_related("reply_to").prefetch_related(
            "reactions", "attachments", "reply_to__attachments"
        )


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
    body = models.TextField(blank=True)  # empty only with attachments: clean() decides
    # The body rendered by chat/markdown.py (sanitized HTML), kept in step with `body` by
    # `save()` (and by the internal API's bulk insert): rendered once, never per read.
    html = models.TextField(blank=True, default="", editable=False)
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

    # The message this one answers (same room, checked when stored). No database constraint and
    # DO_NOTHING: the parent's id stays whatever happens to the parent row, so a reply to a
    # deleted (or even purged) message still says "a reply to a deleted message".
    reply_to = models.ForeignKey(
        "self",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="replies",
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
        if code == "empty_body" and self.pk is not None and self.attachments.exists():
            code = None  # the files are the message: no text needed
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

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, rendering ``html`` from ``body`` whenever ``body`` is written (a new row, an
        edit, the admin's change form), so the two can never disagree."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "body" in update_fields:
            self.html = markdown.render(self.body or "")
            if update_fields is not None and "html" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "html"]
        super().save(*args, **kwargs)

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

    def reply_shape(self) -> dict[str, Any] | None:
        """The protocol's ``reply_to``: None, or the quote of the parent (see ``quote_of``).

        Lists use ``MessageQuerySet.shaped`` so this costs no query per message.
        """
        if self.reply_to_id is None:
            return None
        try:
            parent = self.reply_to
        except Message.DoesNotExist:  # purged from the database: as good as deleted
            parent = None
        return quote_of(self.reply_to_id, parent)

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
            "html": self.html,
            "sent_at": self.sent_at_iso,
            "nonce": self.nonce,
            "edited_at": iso_utc_ms(self.edited_at) if self.edited_at else None,
            "version": self.version,
            "reactions": [] if fresh else self.reaction_summary(),
            "reactions_version": self.reactions_version,
            "reply_to": self.reply_shape(),
            "attachments": self.attachment_shapes(fresh=fresh),
        }

    def attachment_shapes(self, *, fresh: bool = False) -> list[dict[str, Any]]:
        """The protocol's ``attachments``: one shape per file, in the order the message named
        them (``Attachment.position``; upload order for rows without one).

        Lists ``prefetch_related("attachments")`` so this costs no query per message; a message
        just created carries the rows it claimed (``fresh_attachments``, set by the batch).
        """
        rows = getattr(self, "fresh_attachments", []) if fresh else self.attachments.all()
        return [row.shape() for row in in_message_order(rows)]


def in_message_order(rows: Any) -> list[Attachment]:
    """``rows`` (a message's attachments) in the order the message named them
    (``Attachment.position``; upload order for rows without one)."""
    return sorted(
        rows, key=lambda row: (row.position if row.position is not None else 1 << 15, row.pk)
    )


def snippet(body: str) -> str:
    """The quoted part of a parent's body: its first ``REPLY_SNIPPET_CHARS`` characters (code
    points), followed by ``…`` when the body is longer."""
    if len(body) <= REPLY_SNIPPET_CHARS:
        return body
    return body[:REPLY_SNIPPET_CHARS] + "…"


def files_line(names: list[str]) -> str:
    """What stands for a message of files only where a text is wanted (a reply's quote, a
    notification): a paperclip and the files' names, ``"📎 shot.png, notes.pdf"``; ``""`` for
    none."""
    return "📎 " + ", ".join(names) if names else ""


def quoted_text(parent: Message) -> str:
    """The text a reply quotes of ``parent``: its body, or for a message of files only, its
    ``files_line`` (the parent's attachments; prefetched by ``MessageQuerySet.shaped``)."""
    if parent.body:
        return parent.body
    return files_line([row.original_name for row in in_message_order(parent.attachments.all())])


def quote_of(parent_id: int, parent: Message | None) -> dict[str, Any]:
    """``reply_to`` for a reply to message ``parent_id`` (docs/protocol.md, shapes).

    ``{"id", "author": {"id", "name", "guest"}, "snippet", "deleted": false}`` for a parent
    that is shown; ``{"id", "author": null, "snippet": "", "deleted": true}`` for one that was
    deleted (``parent`` None or deleted): nothing of a deleted message is ever shown again.
    """
    if parent is None or parent.is_deleted:
        return {"id": parent_id, "author": None, "snippet": "", "deleted": True}
    return {
        "id": parent_id,
        "author": {
            "id": parent.author_uid,
            "name": parent.author_name,
            "guest": parent.author_is_guest,
        },
        "snippet": snippet(quoted_text(parent)),
        "deleted": False,
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
    follows the user, see ``chat.signals``) and its display name (``display_name``) while it has
    one; a guest holds its current name while it was seen within ``CHAT_GUEST_NAME_HOLD``
    seconds (``last_seen`` is refreshed when a page, a ticket or a rename is served to it).
    ``key`` and ``display_key`` are ``chat.names.name_key`` of the names: two guests can never
    hold the same key, nor two users the same display key (partial unique constraints); no one
    may take a key another identity holds in either column (``chat.identity.name_taken``).
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
    # A registered user's display name (its profile, chat/profile.py): what messages, presence and
    # tickets show instead of the username when set. Held like the username: no one else may take
    # a name with the same key. Empty for guests and for users who did not choose one.
    display_name = models.CharField(max_length=MAX_NAME_LENGTH, blank=True, default="")
    display_key = models.TextField(blank=True, default="", db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key"], condition=models.Q(guest=True), name="chat_nameclaim_guest_key_uniq"
            ),
            # Two users racing for one display name: the database decides.
            models.UniqueConstraint(
                fields=["display_key"],
                condition=~models.Q(display_key=""),
                name="chat_nameclaim_display_key_uniq",
            ),
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


def new_attachment_token() -> str:
    """A fresh attachment id: 16 random bytes, URL-safe base64 (22 characters)."""
    return secrets.token_urlsafe(16)


# An attachment id as clients send it (the token alphabet, 22 characters); the chat server
# checks the same shape (chatserver/frames.py).
ATTACHMENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
IMAGE = "image"
FILE = "file"
ATTACHMENT_KINDS = [(IMAGE, "Image"), (FILE, "File")]


class Attachment(models.Model):
    """One uploaded file (chat/attachments.py stores it, chat/attachment_views.py serves it).

    Uploaded first, unsent (``message`` null) and visible to its uploader alone; tied to a message
    when the uploader sends one naming ``token`` in the same room (chat/internal_api.py). The file
    lives in the default storage under a random ``storage_name`` (never the user's file name);
    an image also has a WebP ``thumbnail_name``. Deleting the row deletes both files after commit
    (chat/signals.py).
    """

    token = models.CharField(max_length=32, unique=True, default=new_attachment_token)
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    uploader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="chat_attachments",
    )
    # The uploader's stable id ("u:<id>"): a message may only take uploads of its own author.
    uploader_uid = models.CharField(max_length=MAX_UID_LENGTH)
    original_name = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField(help_text="Bytes, as stored.")
    # What the browser declared; the served type comes from `kind` and the detected format.
    content_type = models.CharField(max_length=255, blank=True, default="")
    kind = models.CharField(max_length=8, choices=ATTACHMENT_KINDS, default=FILE)
    # For images: the detected MIME type ("image/png", ...), and the displayed dimensions (after
    # EXIF orientation) of the image and of its thumbnail.
    image_type = models.CharField(max_length=16, blank=True, default="")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    thumbnail_width = models.PositiveIntegerField(null=True, blank=True)
    thumbnail_height = models.PositiveIntegerField(null=True, blank=True)
    # Its place in its message's list: the order the message frame named the ids in (set when the
    # message claims it; null while unsent).
    position = models.PositiveSmallIntegerField(null=True, blank=True)
    storage_name = models.CharField(max_length=255)
    thumbnail_name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["uploader_uid", "created_at"], name="chat_attach_uid_time_idx"),
        ]

    def __str__(self) -> str:
        return self.original_name

    def shape(self) -> dict[str, Any]:
        """The protocol's attachment shape (docs/protocol.md, "Attachments")."""
        from .attachments import file_url, thumbnail_url

        is_image = self.kind == IMAGE
        return {
            "id": self.token,
            "name": self.original_name,
            "size": self.size,
            "content_type": self.image_type if is_image else (self.content_type or ""),
            "kind": self.kind,
            "url": file_url(self),
            "width": self.width if is_image else None,
            "height": self.height if is_image else None,
            "thumbnail": (
                {
                    "url": thumbnail_url(self),
                    "width": self.thumbnail_width,
                    "height": self.thumbnail_height,
                }
                if is_image and self.thumbnail_name
                else None
            ),
        }


# The membership models live in their own module; imported here so Django registers them.
from .membership import Invite, Membership  # noqa: E402, F401
