"""The public JSON API of attention (docs/protocol.md, "Personal feed" and "Read state").

    GET  /api/attention/                   followed rooms with unread and mention counts, totals
    GET  /api/feed/ticket/                 a user ticket and the feed's ws_url / poll_url
    POST /api/rooms/<slug>/read/  {"last_read_id": id}   move the read position (forward only)
    POST /api/rooms/<slug>/mute/  {"muted": bool}         per-room notification mute
    GET  /api/rooms/<slug>/people/?q=pre   @ autocomplete: readers seen recently

Signed-in users only (401 ``sign_in_required``): read state, mentions and the feed are
per account. Session auth with Django's CSRF check on the POSTs (header ``X-CSRFToken``); every
room is found and checked like on every other entry point (``chat.access.known_room``: a room
hidden from the asker is 404 ``unknown_room``, as no room).
"""

from __future__ import annotations

import json
import time

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from . import access, attention, ratelimits
from .api import _chat_url
from .models import Room
from .params import parse_decimal
from .signing import error_response
from .tickets import FEED_AUDIENCE, mint_ticket


def _signed_in(request: HttpRequest) -> JsonResponse | None:
    if not request.user.is_authenticated:
        return error_response(401, "sign_in_required", "Sign in to keep read state.")
    return None


def _reader_room(request: HttpRequest, slug: str) -> Room | JsonResponse:
    """The open room ``slug`` when the signed-in asker may read it, else the error answer:
    401 ``sign_in_required`` for a visitor, 404 ``unknown_room`` for no such room, an
    archived one or a room hidden from the asker (``chat.access.known_room``), the access
    rule's refusal otherwise (``chat.access.refusal``). The preamble of every per-room call."""
    refused = _signed_in(request)
    if refused is not None:
        return refused
    room = access.known_room(request.user, slug)
    if room is None or room.is_archived:
        return error_response(404, "unknown_room", "No such room.")
    why = access.refusal(request.user, room)
    if why is not None:
        return error_response(why.status, why.code, why.message)
    return room


def _body(request: HttpRequest) -> dict | None:
    try:
        data = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


@never_cache
@require_GET
def summary(request: HttpRequest) -> JsonResponse:
    """``GET /api/attention/``: ``{"rooms": [unread event, ...], "unread", "mentions"}``."""
    refused = _signed_in(request)
    if refused is not None:
        return refused
    return JsonResponse(attention.summary(request.user))


@never_cache
@require_GET
def feed_ticket(request: HttpRequest) -> JsonResponse:
    """``GET /api/feed/ticket/``: a short-lived user ticket (``aud`` ``feed``) for the signed-in
    user's own feed; it opens no room (docs/security.md)."""
    minted_at = time.time()
    refused = _signed_in(request)
    if refused is not None:
        return refused
    retry_after = ratelimits.ticket_limited(request)
    if retry_after is not None:
        response = error_response(429, "rate_limited", "Too many ticket requests; wait and retry.")
        response["Retry-After"] = str(retry_after)
        return response
    user = request.user
    ttl = settings.CHAT_TICKET_TTL
    value = mint_ticket(
        "",
        f"u:{user.pk}",
        user.pk,
        user.get_username()[:64],
        False,
        ttl,
        settings.CHAT_SHARED_SECRET,
        now=minted_at,
        aud=FEED_AUDIENCE,
    )
    return JsonResponse(
        {
            "ticket": value,
            "ws_url": _chat_url({"http": "ws", "https": "wss"}, "/ws/@me", value),
            "poll_url": _chat_url({}, "/poll/@me", value),
            "expires_in": ttl,
        }
    )


@require_POST
def mark_read(request: HttpRequest, slug: str) -> JsonResponse:
    """``POST /api/rooms/<slug>/read/`` ``{"last_read_id": id}``: the room's new ``unread``
    state (every feed of the user gets it too)."""
    room = _reader_room(request, slug)
    if isinstance(room, JsonResponse):
        return room
    data = _body(request)
    raw = data.get("last_read_id") if data is not None else None
    try:
        # A JSON number (or its decimal string), by the one number rule (chat/params.py).
        last_read_id = parse_decimal(str(raw) if type(raw) is int else raw)
    except ValueError:
        return error_response(400, "bad_id", "last_read_id must be a message id.")
    with transaction.atomic():
        return JsonResponse(attention.mark_read(request.user, room, last_read_id))


@require_POST
def mute(request: HttpRequest, slug: str) -> JsonResponse:
    """``POST /api/rooms/<slug>/mute/`` ``{"muted": true|false}``: the room's ``unread`` state."""
    room = _reader_room(request, slug)
    if isinstance(room, JsonResponse):
        return room
    data = _body(request)
    muted = data.get("muted") if data is not None else None
    if not isinstance(muted, bool):
        return error_response(400, "bad_request", "muted must be true or false.")
    with transaction.atomic():
        return JsonResponse(attention.set_muted(request.user, room, muted))


@never_cache
@require_GET
def people(request: HttpRequest, slug: str) -> JsonResponse:
    """``GET /api/rooms/<slug>/people/?q=<prefix>``: ``{"people": [{"id", "name"}]}``."""
    room = _reader_room(request, slug)
    if isinstance(room, JsonResponse):
        return room
    prefix = request.GET.get("q", "")[:150]
    return JsonResponse({"people": attention.people(room, prefix)})
