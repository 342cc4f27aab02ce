"""The public JSON API used by the browser (session cookies); shapes are in docs/protocol.md."""

from __future__ import annotations

import time
from urllib.parse import quote, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Max, Q
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from . import access, history, ratelimits
from . import search as chat_search
from .identity import GuestLimitReached, chat_identity
from .models import PUBLIC, SIGNED_IN, Room, iso_utc_ms
from .signing import error_response
from .tickets import mint_ticket

PUBLIC_PAGE_DEFAULT = 50
PUBLIC_PAGE_MAX = 100


def rooms_with_activity(user: User | AnonymousUser):
    """The open (not archived) rooms ``user`` may enter (``chat.access.readable_rooms``),
    direct conversations included, annotated with ``last_activity`` (newest visible message).
    A visitor also sees the rooms signing in opens (listed as "sign-in"), never private ones."""
    rooms = access.readable_rooms(user)
    if not user.is_authenticated:
        rooms = Room.objects.filter(visibility__in=[PUBLIC, SIGNED_IN])
    return rooms.filter(is_archived=False).annotate(
        last_activity=Max("messages__sent_at", filter=Q(messages__is_deleted=False))
    )


@require_GET
def room_list(request: HttpRequest) -> JsonResponse:
    """``GET /api/rooms/``: every open room the session may enter (direct conversations are the
    room list page's own section, not listed here)."""
    rooms = [
        {
            "slug": room.slug,
            "name": room.name,
            "description": room.description,
            "allow_guests": room.allow_guests,
            "visibility": room.visibility,
            "last_activity": iso_utc_ms(room.last_activity) if room.last_activity else None,
        }
        for room in rooms_with_activity(request.user).filter(direct_key__isnull=True)
    ]
    return JsonResponse({"rooms": rooms})


def _room_or_error(request: HttpRequest, slug: str) -> Room | JsonResponse:
    room = access.known_room(request.user, slug)
    if room is None:
        return error_response(404, "unknown_room", "No such room.")
    if room.is_archived:
        return error_response(404, "room_archived", "This room is archived.")
    refused = access.refusal(request.user, room)
    if refused is not None:
        return error_response(refused.status, refused.code, refused.message)
    return room


@require_GET
def messages(request: HttpRequest, slug: str) -> JsonResponse:
    """``GET /api/rooms/<slug>/messages/?before=&after=&around=&limit=``."""
    room = _room_or_error(request, slug)
    if isinstance(room, JsonResponse):
        return room
    try:
        before = history.parse_id(request.GET, "before")
        after = history.parse_id(request.GET, "after")
        target = history.parse_id(request.GET, "around")
        limit = history.parse_limit(request.GET, PUBLIC_PAGE_DEFAULT, PUBLIC_PAGE_MAX)
        if target is not None:
            if before is not None or after is not None:
                raise history.BadParameter("Give `around` alone, without `before` or `after`.")
            rows, has_older, has_newer = history.around(room, target, limit=limit)
            return JsonResponse(
                {
                    "messages": [m.to_dict(room.slug) for m in rows],
                    "has_more": has_older,
                    "has_newer": has_newer,
                }
            )
        rows, has_more = history.page(room, before=before, after=after, limit=limit)
    except history.BadParameter as exc:
        return error_response(400, "bad_parameter", str(exc))
    return JsonResponse({"messages": [m.to_dict(room.slug) for m in rows], "has_more": has_more})


@require_GET
def search(request: HttpRequest) -> JsonResponse:
    """``GET /api/search/?q=&room=&before=&limit=``: messages the session may read, newest first,
    with highlighted snippets (docs/protocol.md, "Search")."""
    retry_after = ratelimits.search_limited(request)
    if retry_after is not None:
        response = error_response(429, "rate_limited", "Too many searches; wait and retry.")
        response["Retry-After"] = str(retry_after)
        return response
    rooms = chat_search.readable_rooms(request)
    slug = request.GET.get("room", "")
    if slug:
        room = _room_or_error(request, slug)
        if isinstance(room, JsonResponse):
            return room
        rooms = rooms.filter(pk=room.pk)
    try:
        before = history.parse_id(request.GET, "before")
        limit = history.parse_limit(request.GET, chat_search.SEARCH_PAGE, chat_search.SEARCH_PAGE)
        hits, has_more = chat_search.search(
            rooms, request.GET.get("q", ""), before=before, limit=limit
        )
    except history.BadParameter as exc:
        return error_response(400, "bad_parameter", str(exc))
    except chat_search.BadQuery as exc:
        return error_response(400, exc.code, str(exc))
    results = [
        {
            "message": hit.message.to_dict(hit.message.room.slug),
            "room_name": hit.message.room.name,
            "snippet_html": hit.snippet,
            "url": reverse("chat:room", args=[hit.message.room.slug]) + f"?around={hit.message.id}",
        }
        for hit in hits
    ]
    next_before = hits[-1].message.id if has_more and hits else None
    return JsonResponse({"results": results, "has_more": has_more, "next_before": next_before})


def _chat_url(scheme_map: dict[str, str], path: str, ticket: str) -> str:
    parts = urlsplit(settings.CHAT_PUBLIC_URL)
    scheme = scheme_map.get(parts.scheme, parts.scheme)
    full_path = parts.path.rstrip("/") + path
    return urlunsplit((scheme, parts.netloc, full_path, "ticket=" + quote(ticket, safe=""), ""))


@never_cache  # Cache-Control: no-store (and friends): a ticket must never be cached
@require_GET
def ticket(request: HttpRequest, slug: str) -> JsonResponse:
    """``GET /api/rooms/<slug>/ticket/``: a short-lived ticket and ready-to-open URLs."""
    # Minted "now" means before the session, user and room are read: a revocation that lands
    # while this request runs has a later cut-off and covers the ticket (docs/protocol.md).
    minted_at = time.time()
    retry_after = ratelimits.ticket_limited(request)
    if retry_after is not None:
        response = error_response(429, "rate_limited", "Too many ticket requests; wait and retry.")
        response["Retry-After"] = str(retry_after)
        return response
    room = _room_or_error(request, slug)
    if isinstance(room, JsonResponse):
        return room
    try:
        who = chat_identity(request)
    except GuestLimitReached as exc:
        response = JsonResponse(
            {
                "error": "rate_limited",
                "message": "Too many new guests from this address; wait and retry.",
                "retry_after": exc.retry_after,
            },
            status=429,
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
    ttl = settings.CHAT_TICKET_TTL
    value = mint_ticket(
        room.slug,
        who.uid,
        who.user_id,
        who.name,
        who.guest,
        ttl,
        settings.CHAT_SHARED_SECRET,
        now=minted_at,
    )
    return JsonResponse(
        {
            "ticket": value,
            "ws_url": _chat_url({"http": "ws", "https": "wss"}, f"/ws/{room.slug}", value),
            "poll_url": _chat_url({}, f"/poll/{room.slug}", value),
            "user": who.public(),
            "expires_in": ttl,
        }
    )
