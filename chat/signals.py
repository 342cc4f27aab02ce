"""Every change to who may be connected reaches the chat server, whichever path made it.

Connected in `ChatConfig.ready()`. Model signals fire for the admin's change form, its Delete
button and bulk "delete selected" action, the shell and management commands alike; each handler
calls one function of `chat.actions` (which calls the chat server after commit):

- a user signs out, is deactivated (``is_active`` goes from true to false) or is deleted:
  ``actions.user_access_revoked``;
- a room: ``allow_guests`` goes from true to false -> ``room_access_changed(GUESTS)``;
  ``visibility`` becomes private -> ``room_access_changed(EVERYONE)`` (members get a fresh
  ticket at once, everyone else is refused);
- a membership is deleted (removed, left, its user or room deleted) -> ``member_removed``;
  ``is_archived`` changes -> ``room_archived`` / ``room_unarchived``; the room is deleted, or
  its slug changes (the old address is gone) -> ``room_deleted``.

A saved user's username is held as a name no guest may take (``chat.identity.hold_username``);
a deleted user's claim goes with it (``NameClaim.user`` cascades). A user renamed (admin, shell)
is announced like a display name change (``actions.renamed``): without a display name it is
shown under the new username at once.

Attachments: a deleted ``Attachment`` row removes its files from storage after commit, and a
message saved as deleted deletes its attachment rows (soft-deleted messages keep no files).

``QuerySet.update()`` sends no model signals: for rooms, `RoomQuerySet.update` compares the rows
before and after and calls `room_changed` itself; for users, code that deactivates in bulk must
save each user or call `chat.actions.user_access_revoked`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete, post_save, pre_save

from . import actions, attachments
from .models import PRIVATE, Attachment, Membership, Message, Room
from .models import ROOM_ACCESS_FIELDS as ROOM_FIELDS


def _before_save(
    sender: Any, instance: Any, fields: tuple[str, ...], update_fields: Any, raw: bool
) -> dict[str, Any] | None:
    """The stored values of ``fields`` before this save, or None (a new row, a fixture load,
    or a save that does not touch them)."""
    if raw or instance.pk is None:
        return None
    if update_fields is not None and not set(update_fields) & set(fields):
        return None
    return sender._default_manager.filter(pk=instance.pk).values(*fields).first()


def _user_signed_out(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is not None and user.pk is not None:
        actions.user_access_revoked(user.pk)


def _user_before_save(sender: Any, instance: Any, raw: bool = False, **kwargs: Any) -> None:
    instance._chat_before = _before_save(
        sender, instance, ("is_active",), kwargs.get("update_fields"), raw
    )


def _user_saved(sender: Any, instance: Any, created: bool, raw: bool = False, **kw: Any) -> None:
    before = getattr(instance, "_chat_before", None)
    instance._chat_before = None
    if before is not None and before["is_active"] and not instance.is_active:
        actions.user_access_revoked(instance.pk)


def _username_saved(
    sender: Any, instance: Any, raw: bool = False, update_fields: Any = None, **kwargs: Any
) -> None:
    if raw:
        return  # loading fixtures: the claim rows come with them or from the migration
    if update_fields is not None and instance.USERNAME_FIELD not in update_fields:
        return  # e.g. the last_login update at every sign-in: the username did not change
    from .identity import hold_username, shown_name

    if hold_username(instance):
        # A renamed user without a display name is now shown under its new username (with one,
        # the chat server finds the name unchanged and does nothing).
        actions.renamed(f"u:{instance.pk}", shown_name(instance))


def _user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.pk is not None:
        actions.user_access_revoked(instance.pk)


def _room_before_save(sender: Any, instance: Room, raw: bool = False, **kwargs: Any) -> None:
    instance._chat_before = _before_save(
        sender, instance, ROOM_FIELDS, kwargs.get("update_fields"), raw
    )


def _room_saved(sender: Any, instance: Room, created: bool, raw: bool = False, **kw: Any) -> None:
    before = getattr(instance, "_chat_before", None)
    instance._chat_before = None
    if before is not None:
        room_changed(before, {field: getattr(instance, field) for field in ROOM_FIELDS})


def room_changed(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Tell the chat server what a change of one room's ``ROOM_FIELDS`` means for connections
    (``before``/``after``: field -> value). Used by the post-save signal and by
    ``RoomQuerySet.update``."""
    if before["slug"] != after["slug"]:
        # Everything the chat server holds under the old slug belongs to an address that no
        # longer exists: close it for good. The room lives on under its new slug.
        actions.room_deleted(before["slug"])
    if before["is_archived"] != after["is_archived"]:
        if after["is_archived"]:
            actions.room_archived(after["slug"])
        else:
            actions.room_unarchived(after["slug"])
    if before["visibility"] != PRIVATE and after["visibility"] == PRIVATE:
        actions.room_access_changed(after["slug"], actions.EVERYONE)
    elif before["allow_guests"] and not after["allow_guests"]:
        actions.room_access_changed(after["slug"], actions.GUESTS)


def _membership_deleted(sender: Any, instance: Membership, **kwargs: Any) -> None:
    # Also when a user or a room is deleted (memberships cascade): a redundant call then, as the
    # user's revocation or the room's deletion already covers it. A room already gone is skipped.
    room = Room.objects.filter(pk=instance.room_id).values("slug").first()
    if room is not None:
        actions.member_removed(room["slug"], instance.user_id)


def _room_deleted(sender: Any, instance: Room, **kwargs: Any) -> None:
    actions.room_deleted(instance.slug)


def _attachment_deleted(sender: Any, instance: Attachment, **kwargs: Any) -> None:
    # Every path that deletes a row (a deleted message, a purged room or user, the admin, the
    # purge of unsent uploads) removes its files, after commit.
    attachments.delete_files_after_commit(instance)


def _message_saved(sender: Any, instance: Message, raw: bool = False, **kwargs: Any) -> None:
    # A message deleted by its author, staff or the admin's change form takes its files along.
    if instance.is_deleted and not raw:
        attachments.discard_for_messages([instance.pk])


def connect() -> None:
    """Connect the handlers (idempotent: each has a dispatch_uid)."""
    user_model = get_user_model()
    user_logged_out.connect(_user_signed_out, dispatch_uid="chat.user_signed_out")
    pre_save.connect(_user_before_save, sender=user_model, dispatch_uid="chat.user_before_save")
    post_save.connect(_user_saved, sender=user_model, dispatch_uid="chat.user_saved")
    post_save.connect(_username_saved, sender=user_model, dispatch_uid="chat.hold_username")
    post_delete.connect(_user_deleted, sender=user_model, dispatch_uid="chat.user_deleted")
    pre_save.connect(_room_before_save, sender=Room, dispatch_uid="chat.room_before_save")
    post_save.connect(_room_saved, sender=Room, dispatch_uid="chat.room_saved")
    post_delete.connect(_room_deleted, sender=Room, dispatch_uid="chat.room_deleted")
    post_delete.connect(
        _membership_deleted, sender=Membership, dispatch_uid="chat.membership_deleted"
    )
    post_delete.connect(
        _attachment_deleted, sender=Attachment, dispatch_uid="chat.attachment_deleted"
    )
    post_save.connect(_message_saved, sender=Message, dispatch_uid="chat.message_saved")
