"""The public JSON API for changing a stored message (docs/protocol.md, "Message actions"):
edit and delete your own message, toggle a reaction on anyone's.

Session auth and Django's CSRF check (these views are not exempt): the browser sends the
``X-CSRFToken`` header. "Own message" is decided by the stable author id (``author_uid``),
never by the display name, so a guest may change what it sent from the same guest identity.
Each view checks, in this order: the room (unknown, archived, may the asker join it at all),
the message (gone), the right (author, or staff), the window, then the input; the change is
saved with the row locked, and the chat server is told after commit (chat/actions.py).
"""

from __future__ import annotations

import json
from datetime import timedelta

import emoji
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from . import access, actions
from .identity import GuestLimitReached, chat_identity
from .models import UNSTORABLE_TEXT, Message, Reaction, Room, body_error, body_too_long_text
from .signing import error_response


class Refused(Exception):
    """An action the asker may not take: answered as the protocol's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JsonResponse:
        """The JSON error answer."""
        return error_response(self.status, self.code, self.message)


def _room(request: HttpRequest, slug: str) -> Room:
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        raise Refused(404, "unknown_room", "No such room.")
    if room.is_archived:
        raise Refused(409, "room_archived", "This room is archived: its messages stay as they are.")
    refused = access.refusal(request.user, room)
    if refused is not None:
        # Also a guest in a room that no longer allows guests, or a removed member.
        raise Refused(refused.status, refused.code, refused.message)
    return room


def _asker_uid(request: HttpRequest) -> str:
    try:
        return chat_identity(request).uid
    except GuestLimitReached:
        # A visitor with no guest identity yet: it sent nothing, so it owns nothing.
        return ""


def _own_message(request: HttpRequest, room: Room, message_id: int) -> Message:
    """The message, locked for the change, when the asker may change it (else `Refused`)."""
    message = (
        Message.objects.select_for_update()
        .filter(room=room, id=message_id, is_deleted=False)
        .first()
    )
    if message is None:
        raise Refused(404, "message_gone", "This message does not exist or was deleted.")
    if request.user.is_authenticated and request.user.is_staff:
        return message
    uid = _asker_uid(request)
    if not uid or not message.author_uid or message.author_uid != uid:
        raise Refused(403, "not_author", "Only the author can change this message.")
    return message


def _json_body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "bad_json", "The request body is not JSON.") from None
    if not isinstance(data, dict):
        raise Refused(400, "bad_json", "The request body is a JSON object.")
    return data


def _new_body(data: dict, has_files: bool = False) -> str:
    """The edited body, stripped; empty only for a message with attachments (a caption removed)."""
    body = data.get("body")
    if not isinstance(body, str):
        raise Refused(400, "empty_body", "A message cannot be empty.")
    code = body_error(body)
    if code == "empty_body" and has_files:
        return ""
    if code == "empty_body":
        raise Refused(400, code, "A message cannot be empty.")
    if code == "body_too_long":
        raise Refused(400, code, body_too_long_text())
    if code == "bad_body":
        raise Refused(400, code, f"A message {UNSTORABLE_TEXT}.")
    return body.strip()


@require_POST
def edit_message(request: HttpRequest, slug: str, message_id: int) -> JsonResponse:
    """``POST /api/rooms/<slug>/messages/<id>/edit/`` ``{"body"}``: the edited message."""
    try:
        data = _json_body(request)
        with transaction.atomic():
            room = _room(request, slug)
            message = _own_message(request, room, message_id)
            staff = request.user.is_authenticated and request.user.is_staff
            window = timedelta(seconds=settings.CHAT_EDIT_WINDOW)
            if not staff and timezone.now() - message.sent_at > window:
                raise Refused(
                    403,
                    "edit_window_passed",
                    f"A message can be edited for {settings.CHAT_EDIT_WINDOW // 60} minutes "
                    "after it was sent.",
                )
            body = _new_body(data, message.attachments.exists())
            if body != message.body:
                message.body = body
                message.edited_at = timezone.now()
                message.version += 1
                # Saving `body` renders `html` again (Message.save) and writes it too.
                message.save(update_fields=["body", "html", "edited_at", "version"])
                shape = message.to_dict(room.slug)
                actions.message_edited(room.slug, shape)
            else:
                shape = message.to_dict(room.slug)
    except Refused as refused:
        return refused.response()
    return JsonResponse({"message": shape})


@require_POST
def delete_message(request: HttpRequest, slug: str, message_id: int) -> JsonResponse:
    """``POST /api/rooms/<slug>/messages/<id>/delete/``: the author (or staff) removes it.

    The same soft deletion and the same `deleted` event as staff moderation (chat/admin.py):
    every reader removes the message, and no list shows it again (so a reload agrees).
    """
    try:
        with transaction.atomic():
            room = _room(request, slug)
            message = _own_message(request, room, message_id)
            message.is_deleted = True
            message.deleted_at = timezone.now()
            message.deleted_by = request.user if request.user.is_authenticated else None
            message.save(update_fields=["is_deleted", "deleted_at", "deleted_by"])
            actions.message_deleted(room.slug, message.id)
    except Refused as refused:
        return refused.response()
    return JsonResponse({"deleted": message_id})


def _one_emoji(data: dict) -> str:
    value = data.get("emoji")
    # The `emoji` package knows every emoji of the Unicode release it follows, sequences
    # (flags, skin tones, ZWJ families) included: no hand-written table here.
    if not isinstance(value, str) or len(value) > Reaction.EMOJI_MAX or not emoji.is_emoji(value):
        raise Refused(400, "bad_emoji", "A reaction is one emoji.")
    return value


@require_POST
def toggle_reaction(request: HttpRequest, slug: str, message_id: int) -> JsonResponse:
    """``POST /api/rooms/<slug>/messages/<id>/react/`` ``{"emoji"}``: add the asker's reaction
    with that emoji, or remove it when the asker already reacted so; answers the message."""
    try:
        data = _json_body(request)
        with transaction.atomic():
            room = _room(request, slug)
            message = (
                Message.objects.select_for_update()
                .filter(room=room, id=message_id, is_deleted=False)
                .first()
            )
            if message is None:
                raise Refused(404, "message_gone", "This message does not exist or was deleted.")
            value = _one_emoji(data)
            try:
                who = chat_identity(request)
            except GuestLimitReached as exc:
                raise Refused(429, "rate_limited", "Too many new guests; wait and retry.") from exc
            mine = message.reactions.filter(uid=who.uid, emoji=value)
            if mine.exists():
                mine.delete()
            else:
                known = set(message.reactions.values_list("emoji", flat=True))
                if value not in known and len(known) >= settings.CHAT_MAX_REACTIONS:
                    raise Refused(
                        409,
                        "too_many_reactions",
                        f"A message has at most {settings.CHAT_MAX_REACTIONS} different reactions.",
                    )
                Reaction.objects.create(message=message, uid=who.uid, name=who.name, emoji=value)
            message.reactions_version += 1
            message.save(update_fields=["reactions_version"])
            shape = message.to_dict(room.slug)
            actions.message_reactions(room.slug, shape)
    except Refused as refused:
        return refused.response()
    return JsonResponse({"message": shape})
