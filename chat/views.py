"""HTML pages: the room list, a room, search and the guest-name form (accounts:
chat/account_views.py)."""

from __future__ import annotations

from csp.decorators import csp_update
from django.conf import settings
from django.contrib import messages as flash
from django.http import Http404, HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import access, attention, history, ratelimits, room_directory
from . import search as chat_search
from .api import PUBLIC_PAGE_DEFAULT, rooms_with_activity
from .identity import GuestLimitReached, chat_identity, set_guest_name
from .models import MAX_NAME_LENGTH, Room
from .params import parse_decimal


def room_list(request: HttpRequest) -> HttpResponse:
    """``/chats/``: the open rooms the reader may enter, with their description and last
    activity; for a signed-in reader also its memberships, direct conversations and
    invitations (chat/room_directory.py)."""
    context = room_directory.context(request.user, rooms_with_activity(request.user))
    return render(request, "chat/room_list.html", context)


# The room page runs the client, which inserts the server's rendering of message bodies: on top
# of the site-wide policy (settings.CONTENT_SECURITY_POLICY) it requires Trusted Types, so no
# script on the page can hand a string to an HTML sink except through the one policy the client
# creates (static/chat/client/richtext.js). Site-wide it would break the admin, whose own
# scripts (SelectBox.js, inlines.js) assign innerHTML.
ROOM_PAGE_CSP = {"require-trusted-types-for": ["'script'"], "trusted-types": ["chat-html"]}


@csp_update(ROOM_PAGE_CSP)
def room_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """``/chats/<slug>/``: the newest messages rendered on the server, then the live client."""
    room = access.known_room(request.user, slug)
    if room is None:
        raise Http404("No such room.")
    if room.is_archived:
        # 404 like the API (the room is gone for visitors), with a page that says why.
        return render(request, "chat/room_archived.html", {"room": room}, status=404)
    refused = access.refusal(request.user, room)
    if refused is not None:
        return render(request, "chat/sign_in_required.html", {"room": room}, status=403)
    try:
        who = chat_identity(request)
    except GuestLimitReached as exc:
        return guest_limited(request, exc.retry_after)
    target = _around(request)
    if target is not None:
        # Opened from a search result: the page holds the history around that message (the
        # client scrolls to it and marks it, static/chat/client/search-context.js).
        latest, _, _ = history.around(room, target, limit=PUBLIC_PAGE_DEFAULT)
    else:
        latest = list(room.messages.visible().shaped().order_by("-id")[:PUBLIC_PAGE_DEFAULT])
        latest.reverse()
    # The rules the browser applies come from the one place Django reads them, never literals.
    limits = {
        "max_body": settings.CHAT_MAX_BODY,
        "max_name": MAX_NAME_LENGTH,
        # How many messages a page holds (rendered here, and asked for when scrolling up).
        "page": PUBLIC_PAGE_DEFAULT,
        "socket_give_up_ms": settings.CHAT_SOCKET_GIVE_UP_MS,
        # Attachments: the composer's pre-check (static/chat/client/uploads.js; the server still
        # checks) and whether to offer it at all (guests may not upload).
        "max_file_bytes": settings.CHAT_MAX_FILE_BYTES,
        "max_files": settings.CHAT_MAX_FILES_PER_MESSAGE,
        "may_attach": request.user.is_authenticated,
    }
    # The client's message actions (edit) are CSRF-protected JSON posts: make sure the page
    # sets the `csrftoken` cookie the client sends back as `X-CSRFToken`.
    get_token(request)
    context = {
        "room": room,
        "chat_messages": latest,
        "who": who,
        "limits": limits,
        # Signed-in readers keep a read position (the divider starts after it) and may mute.
        "attention": _attention(request, room),
        # An owner finds the room's settings in the room's menu.
        "room_owner": room.direct_key is None and access.is_owner(request.user, room),
    }
    return render(request, "chat/room.html", context)


def _attention(request: HttpRequest, room: Room) -> dict | None:
    """The reader's read state of ``room`` as the page starts (None for visitors)."""
    if not request.user.is_authenticated:
        return None
    # A member who never opened the room reads it from the join (where its count starts).
    state = attention.read_state(request.user, room)
    return {
        "last_read_id": state.last_read_id if state is not None else None,
        "muted": state.muted if state is not None else False,
    }


def _around(request: HttpRequest) -> int | None:
    """``?around=<id>`` of the room page; a value that is not an id is ignored (newest page)."""
    try:
        return parse_decimal(request.GET.get("around", ""))
    except ValueError:
        return None


def search(request: HttpRequest) -> HttpResponse:
    """``/search/?q=&room=&before=``: the search form and results (chat/search.py), newest first;
    each result links to its message in context. Works without JavaScript."""
    text = request.GET.get("q", "")
    rooms = chat_search.readable_rooms(request)
    slug = request.GET.get("room", "")
    room = get_object_or_404(rooms, slug=slug) if slug else None
    context = {"q": text, "room": room, "hits": [], "error": "", "searched": False}
    if text:
        retry_after = ratelimits.search_limited(request)
        if retry_after is not None:
            context["error"] = f"Too many searches; try again in {retry_after} s."
            response = render(request, "chat/search.html", context, status=429)
            response["Retry-After"] = str(retry_after)
            return response
        try:
            before = history.parse_id(request.GET, "before")
            scope = rooms.filter(pk=room.pk) if room else rooms
            hits, has_more = chat_search.search(scope, text, before=before)
        except (history.BadParameter, chat_search.BadQuery) as exc:
            context["error"] = str(exc)
            return render(request, "chat/search.html", context, status=400)
        context.update(
            hits=hits,
            searched=True,
            next_before=hits[-1].message.id if has_more and hits else None,
        )
    return render(request, "chat/search.html", context)


def guest_limited(request: HttpRequest, retry_after: int) -> HttpResponse:
    """429 page: too many new guest identities from this address (``RATELIMIT_GUEST_IDENTITY``)."""
    response = render(request, "chat/guest_limited.html", {"retry_after": retry_after}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


@require_POST
def guest_name(request: HttpRequest, slug: str) -> HttpResponse:
    """``POST /chats/<slug>/guest-name/``: change the session's guest display name."""
    room = access.known_room(request.user, slug)
    if room is None or room.is_archived or not room.allow_guests:
        raise Http404("No such room.")
    if not request.user.is_authenticated:
        try:
            error = set_guest_name(request, request.POST.get("name", ""))
        except GuestLimitReached as exc:
            return guest_limited(request, exc.retry_after)
        if error:
            flash.error(request, error)
        else:
            flash.success(request, "Your guest name was changed.")
    return redirect("chat:room", slug=room.slug)
