"""Staff screens for rooms and messages.

Archiving, un-archiving, narrowing access, removing members and deleting rooms reach the chat
server through the model signals (`chat.signals`); moderation calls `chat.actions`. Staff manage a
room's members in an inline of the room (removing one closes its connections at once).
"""

from __future__ import annotations

import contextvars
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.contrib.auth import models as auth_models
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from . import actions, attachments
from .forms import AdminUserChangeForm, AdminUserCreationForm
from .membership import Invite, Membership
from .models import Attachment, Message, NameClaim, Room

# The chat server's stats for the changelist being rendered: fetched once per page, never per row.
# A context variable keeps concurrent requests (threads) apart on the shared ModelAdmin instance.
_live_stats: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "chat_live_stats", default=None
)


class MembershipInline(admin.TabularInline):
    """A room's members and their roles (deleting a row removes the member)."""

    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "joined_at"]


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    """Rooms with message counts, last activity and who is online now."""

    list_display = [
        "name",
        "slug",
        "visibility",
        "is_archived",
        "message_count",
        "last_activity",
        "online_now",
    ]
    list_filter = ["is_archived", "visibility"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    actions = ["archive_rooms"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Room]:
        """Annotate counts and last activity so the list needs no query per row."""
        visible = Q(messages__is_deleted=False)
        return (
            super()
            .get_queryset(request)
            .annotate(
                message_count=Count("messages", filter=visible),
                last_activity=Max("messages__sent_at", filter=visible),
            )
        )

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Fetch the chat server's stats once for the whole page (and which direct
        conversations the viewer is in: only those show who is online)."""
        stats = dict(actions.live_stats() or {})
        stats["_my_direct"] = set(
            Membership.objects.filter(
                user=request.user, room__direct_key__isnull=False
            ).values_list("room_id", flat=True)
        )
        token = _live_stats.set(stats)
        try:
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()  # render while the stats are still set
            return response
        finally:
            _live_stats.reset(token)

    @admin.display(description="Messages", ordering="message_count")
    def message_count(self, room: Room) -> int:
        """Visible messages in the room."""
        return room.message_count

    @admin.display(description="Last activity", ordering="last_activity")
    def last_activity(self, room: Room):
        """The newest visible message's time."""
        return room.last_activity

    @admin.display(description="Online now")
    def online_now(self, room: Room) -> str:
        """People online according to the chat server; "—" when it did not answer. A direct
        conversation is its two people's business: "private" unless the viewer is one of them."""
        stats = _live_stats.get() or {}
        if room.direct_key is not None and room.pk not in stats.get("_my_direct", ()):
            return "private"
        rooms = stats.get("rooms")
        if not isinstance(rooms, dict):
            return "—"
        entry = rooms.get(room.slug) or {}
        online = entry.get("online") if isinstance(entry, dict) else None
        return str(len(online)) if isinstance(online, list) else "0"

    @admin.action(description="Archive selected rooms")
    def archive_rooms(self, request: HttpRequest, queryset: QuerySet[Room]) -> None:
        """Archive rooms; each save tells the chat server to close their sockets (signals)."""
        rooms = list(queryset.filter(is_archived=False))
        for room in rooms:
            room.is_archived = True
            room.save(update_fields=["is_archived"])
        self.message_user(request, f"Archived {len(rooms)} room(s).", messages.SUCCESS)


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    """Invitations to private rooms; withdrawing one stops it admitting anybody."""

    list_display = ["room", "invitee", "created_by", "created_at", "expires_at", "uses", "state"]
    list_filter = ["revoked_at"]
    list_select_related = ["room", "invitee", "created_by"]
    raw_id_fields = ["room", "invitee", "created_by"]
    search_fields = ["room__name", "room__slug", "invitee__username"]
    actions = ["withdraw"]

    @admin.display(description="State")
    def state(self, invite: Invite) -> str:
        """usable, revoked, expired or used_up."""
        return invite.state()

    @admin.action(description="Withdraw selected invitations")
    def withdraw(self, request: HttpRequest, queryset: QuerySet[Invite]) -> None:
        """Revoke invitations (links stop working at once)."""
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Withdrew {count} invitation(s).", messages.SUCCESS)


class AttachmentInline(admin.TabularInline):
    """A message's files, read-only (deleting the message, or a row here, removes the files)."""

    model = Attachment
    extra = 0
    fields = ["original_name", "size", "kind", "content_type", "created_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """Files arrive through the upload endpoint only."""
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    """Messages, searchable; moderation is a soft delete that clients are told about."""

    list_display = ["room", "author_name", "guest", "excerpt", "sent_at", "is_deleted"]
    list_filter = ["room", "author_is_guest", "sent_at", "is_deleted"]
    search_fields = ["body", "author_name", "author_uid"]
    list_select_related = ["room"]
    date_hierarchy = "sent_at"
    readonly_fields = ["sent_at", "nonce", "author_uid", "deleted_at", "deleted_by"]
    raw_id_fields = ["author"]
    actions = ["moderate_messages"]
    inlines = [AttachmentInline]

    @admin.display(description="Guest", boolean=True, ordering="author_is_guest")
    def guest(self, message: Message) -> bool:
        """True when a guest (not a registered user) wrote it: its name proves nothing."""
        return message.author_is_guest

    @admin.display(description="Body")
    def excerpt(self, message: Message) -> str:
        """The first 80 characters of the body (escaped by the admin)."""
        body = message.body
        return body if len(body) <= 80 else body[:79] + "…"

    @admin.action(description="Delete (moderate) selected messages")
    def moderate_messages(self, request: HttpRequest, queryset: QuerySet[Message]) -> None:
        """Soft-delete messages and tell the chat server so clients remove them."""
        targets = list(queryset.filter(is_deleted=False).select_related("room"))
        now = timezone.now()
        for message in targets:
            message.is_deleted = True
            message.deleted_at = now
            message.deleted_by = request.user
        Message.objects.bulk_update(targets, ["is_deleted", "deleted_at", "deleted_by"])
        # bulk_update sends no signals: their files go here (after commit).
        attachments.discard_for_messages([message.pk for message in targets])
        for message in targets:
            actions.message_deleted(message.room.slug, message.id)
        self.message_user(request, f"Deleted {len(targets)} message(s).", messages.SUCCESS)


@admin.register(Attachment)
class AttachmentAdmin(admin.ModelAdmin):
    """Uploaded files: name, size, room, uploader and message (empty while unsent). Deleting a
    row removes its files from storage (``chat.signals``); the message stays."""

    list_display = [
        "original_name",
        "human_size",
        "kind",
        "room",
        "uploader",
        "message",
        "created_at",
    ]
    list_filter = ["kind", "room", "created_at"]
    search_fields = ["original_name", "token", "uploader_uid"]
    list_select_related = ["room", "uploader", "message"]
    date_hierarchy = "created_at"
    raw_id_fields = ["room", "message", "uploader"]
    readonly_fields = [
        "token",
        "room",
        "message",
        "uploader",
        "uploader_uid",
        "original_name",
        "size",
        "content_type",
        "kind",
        "image_type",
        "width",
        "height",
        "thumbnail_width",
        "thumbnail_height",
        "storage_name",
        "thumbnail_name",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        """Files arrive through the upload endpoint only."""
        return False

    @admin.display(description="Size", ordering="size")
    def human_size(self, row: Attachment) -> str:
        """The size in bytes, KiB or MiB."""
        if row.size < 1024:
            return f"{row.size} B"
        if row.size < attachments.MIB:
            return f"{row.size / 1024:.1f} KiB"
        return attachments.mib(row.size)


@admin.register(NameClaim)
class NameClaimAdmin(admin.ModelAdmin):
    """Names in use: every username, and guest names while their guest was seen recently."""

    list_display = ["name", "display_name", "uid", "guest", "last_seen"]
    list_filter = ["guest"]
    search_fields = ["name", "display_name", "uid", "key", "display_key"]
    readonly_fields = [
        "uid",
        "user",
        "name",
        "key",
        "display_name",
        "display_key",
        "guest",
        "created_at",
        "last_seen",
    ]


User = get_user_model()
# Only Django's own user admin over Django's own User is replaced: a host project's custom user
# model or user admin stays as the project made it (its forms may mix in
# chat.forms.UsernameRuleMixin for the same rule; docs/adding-chat.md).
if (
    User is auth_models.User
    and admin.site.is_registered(User)
    and type(admin.site.get_model_admin(User)) is auth_admin.UserAdmin
):

    class ChatUserAdmin(auth_admin.UserAdmin):
        """Django's user admin whose forms refuse a username that looks like one in use."""

        form = AdminUserChangeForm
        add_form = AdminUserCreationForm

    admin.site.unregister(User)
    admin.site.register(User, ChatUserAdmin)
