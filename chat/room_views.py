"""Pages that change rooms and who is in them: create a room, join an open room, its members
page (invite by username or link, withdraw invitations, remove members, leave), accept or
decline an invitation, and open a direct conversation.

Every change is a POST with Django's CSRF check (the forms carry ``{% csrf_token %}``); GET only
shows. Pages that change membership need a signed-in user (guests are sent to sign in). The
rules live in chat/invites.py and chat/direct.py; who may see a room in chat/access.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import access, direct, invites, ratelimits
from .membership import OWNER, Invite, Membership
from .models import Room
from .room_forms import (
    InviteLinkForm,
    InviteUserForm,
    RoomCreateForm,
    RoomSettingsForm,
    slug_candidates,
)

# The session key holding a link made a moment ago, shown once on the members page.
NEW_LINK_KEY = "chat_new_invite_link"


def _limited(request: HttpRequest, retry_after: int, what: str) -> HttpResponse:
    response = render(
        request,
        "chat/rooms/rate_limited.html",
        {"retry_after": retry_after, "what": what},
        status=429,
    )
    response["Retry-After"] = str(retry_after)
    return response


@login_required
def room_create(request: HttpRequest) -> HttpResponse:
    """``/chats/new/``: a signed-in user creates a room and becomes its owner."""
    form = RoomCreateForm(request.POST or None)
    if request.method == "POST":
        retry_after = ratelimits.room_create_limited(request)
        if retry_after is not None:
            return _limited(request, retry_after, "rooms created")
        if form.is_valid():
            room = _create(form, request.user)
            if room is None:
                form.add_error("name", "Too many rooms have this name; choose another.")
            else:
                return redirect("chat:room", slug=room.slug)
    return render(request, "chat/rooms/create.html", {"form": form})


def _create(form: RoomCreateForm, owner: Any) -> Room | None:
    """Save the form's room under the first free slug, with ``owner`` as its owner."""
    for slug in slug_candidates(form.cleaned_data["name"]):
        if Room.objects.filter(slug=slug).exists():
            continue
        try:
            with transaction.atomic():
                room = form.save(commit=False)
                room.slug = slug
                room.save()
                Membership.objects.create(room=room, user=owner, role=OWNER)
                return room
        except IntegrityError:
            continue  # taken a moment ago by another request
    return None


def _readable_room(request: HttpRequest, slug: str) -> Room:
    room = access.known_room(request.user, slug)
    if room is None or access.refusal(request.user, room) is not None:
        raise Http404("No such room.")
    return room


@login_required
def room_members(request: HttpRequest, slug: str) -> HttpResponse:
    """``/chats/<slug>/members/``: who is in the room; an owner also invites and removes."""
    room = _readable_room(request, slug)
    mine = access.membership(request.user, room)
    owner = mine is not None and mine.is_owner and room.direct_key is None
    members = list(Membership.objects.filter(room=room).select_related("user"))
    context = {
        "room": room,
        "members": members,
        "mine": mine,
        "owner": owner,
        "private": room.is_private and room.direct_key is None,
        "invite_form": InviteUserForm(),
        "link_form": InviteLinkForm(),
        "invites": [],
        "new_link": None,
    }
    if owner:
        context["invites"] = list(
            Invite.objects.filter(room=room).select_related("invitee", "created_by")[:50]
        )
        new_link = request.session.pop(NEW_LINK_KEY, None)
        if isinstance(new_link, dict) and new_link.get("room") == room.slug:
            context["new_link"] = new_link.get("url")
    return render(request, "chat/rooms/members.html", context)


def _owner_action(
    view: Callable[[HttpRequest, Room], HttpResponse],
) -> Callable[..., HttpResponse]:
    """A POST of an owner of the room ``slug`` (404 for anyone else), answered by ``view``;
    a ``MembershipError`` becomes a message on the members page."""

    @login_required
    @require_POST
    def wrapper(request: HttpRequest, slug: str, **kwargs: Any) -> HttpResponse:
        room = _readable_room(request, slug)
        if not access.is_owner(request.user, room):
            raise Http404("No such room.")
        try:
            return view(request, room, **kwargs)
        except invites.MembershipError as exc:
            flash.error(request, exc.message)
            return redirect("chat:room_members", slug=room.slug)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


@_owner_action
def invite_user(request: HttpRequest, room: Room) -> HttpResponse:
    """``POST /chats/<slug>/members/invite/`` ``username``: invite one user."""
    retry_after = ratelimits.invite_limited(request)
    if retry_after is not None:
        return _limited(request, retry_after, "invitations")
    form = InviteUserForm(request.POST)
    if not form.is_valid():
        flash.error(request, " ".join(form.errors.get("username", ["Give a username."])))
    else:
        invitee = form.cleaned_data["username"]
        invites.invite_user(room, request.user, invitee)
        flash.success(request, f"{invitee.get_username()} is invited.")
    return redirect("chat:room_members", slug=room.slug)


@_owner_action
def invite_link(request: HttpRequest, room: Room) -> HttpResponse:
    """``POST /chats/<slug>/members/link/`` ``lifetime``, ``single_use``: make a link, shown
    once on the members page (only its hash is stored)."""
    retry_after = ratelimits.invite_limited(request)
    if retry_after is not None:
        return _limited(request, retry_after, "invitations")
    form = InviteLinkForm(request.POST)
    if not form.is_valid():
        flash.error(request, "Choose how long the link lasts.")
    else:
        _invite, token = invites.make_link(
            room,
            request.user,
            lifetime=form.cleaned_data["lifetime"],
            single_use=form.cleaned_data["single_use"],
        )
        url = request.build_absolute_uri(reverse("chat:invite_link", args=[token]))
        request.session[NEW_LINK_KEY] = {"room": room.slug, "url": url}
    return redirect("chat:room_members", slug=room.slug)


@_owner_action
def revoke_invite(request: HttpRequest, room: Room, invite_id: int) -> HttpResponse:
    """``POST /chats/<slug>/invites/<id>/revoke/``: withdraw an invitation or a link."""
    invites.revoke(room, invite_id)
    flash.success(request, "The invitation was withdrawn.")
    return redirect("chat:room_members", slug=room.slug)


@_owner_action
def remove_member(request: HttpRequest, room: Room, user_id: int) -> HttpResponse:
    """``POST /chats/<slug>/members/<user id>/remove/``: the member's sockets and polls close
    at once (chat/signals.py -> actions.member_removed)."""
    removed = invites.remove_member(room, user_id)
    if removed.user_id == request.user.pk:
        return redirect("chat:rooms")
    flash.success(request, f"{removed.user.get_username()} was removed.")
    return redirect("chat:room_members", slug=room.slug)


@_owner_action
def make_owner(request: HttpRequest, room: Room, user_id: int) -> HttpResponse:
    """``POST /chats/<slug>/members/<user id>/owner/``: another owner."""
    member = invites.make_owner(room, user_id)
    flash.success(request, f"{member.user.get_username()} is now an owner.")
    return redirect("chat:room_members", slug=room.slug)


@login_required
def room_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """``/chats/<slug>/settings/``: an owner renames the room, changes its description and who
    may enter (GET shows the form, POST saves and goes back to the room). Anyone else, and every
    direct conversation, gets 404. Making the room private cuts off everyone else at once
    (``RoomSettingsForm``: the room's signals revoke its older tickets)."""
    room = _readable_room(request, slug)
    if room.direct_key is not None or not access.is_owner(request.user, room):
        raise Http404("No such room.")
    form = RoomSettingsForm(request.POST or None, instance=room)
    if request.method == "POST" and form.is_valid():
        form.save()
        flash.success(request, "The room was changed.")
        return redirect("chat:room", slug=room.slug)
    return render(request, "chat/rooms/settings.html", {"form": form, "room": room})


def _next_page(request: HttpRequest, room: Room) -> str:
    """Where a membership form goes back to: its ``next`` field when it is a path on this site
    (Django's own check, as its sign-in view does), else the room."""
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("chat:room", args=[room.slug])


@login_required
@require_POST
def join_room(request: HttpRequest, slug: str) -> HttpResponse:
    """``POST /chats/<slug>/join/`` (``next``): a signed-in user joins an open room and follows
    it (a private room: by invitation only, said on the page it came from)."""
    room = _readable_room(request, slug)
    try:
        invites.join(room, request.user)
    except invites.MembershipError as exc:
        flash.error(request, exc.message)
    else:
        flash.success(request, f"You joined {room.name}.")
    return redirect(_next_page(request, room))


@login_required
@require_POST
def leave_room(request: HttpRequest, slug: str) -> HttpResponse:
    """``POST /chats/<slug>/leave/``: end one's own membership."""
    room = _readable_room(request, slug)
    try:
        invites.leave(room, request.user)
    except invites.MembershipError as exc:
        flash.error(request, exc.message)
        return redirect("chat:room_members", slug=room.slug)
    flash.success(request, f"You left {room.name}.")
    return redirect("chat:rooms")


def invite_link_page(request: HttpRequest, token: str) -> HttpResponse:
    """``/chats/invite/<token>/``: GET shows the room and a Join button (or why the link no
    longer works); POST (signed in) accepts. A guest is asked to sign in first."""
    invite = invites.find_link(token)
    if invite is None:
        return render(
            request, "chat/rooms/invite.html", {"error": "No such invitation."}, status=404
        )
    context: dict[str, Any] = {"invite": invite, "room": invite.room, "error": None}
    if request.method == "POST" and request.user.is_authenticated:
        try:
            room = invites.accept(invite.pk, request.user)
        except invites.MembershipError as exc:
            context["error"] = exc.message
            return render(request, "chat/rooms/invite.html", context, status=410)
        return redirect("chat:room", slug=room.slug)
    if request.method not in ("GET", "HEAD", "POST"):
        return HttpResponse(status=405, headers={"Allow": "GET, HEAD, POST"})
    error = invites.state_error(invite)
    if error is not None:
        context["error"] = error.message
        return render(request, "chat/rooms/invite.html", context, status=410)
    context["member"] = access.membership(request.user, invite.room) is not None
    return render(request, "chat/rooms/invite.html", context)


@login_required
@require_POST
def answer_invite(request: HttpRequest, invite_id: int, answer: str) -> HttpResponse:
    """``POST /chats/invites/<id>/accept/`` or ``.../decline/``: the invitee answers."""
    try:
        if answer == "accept":
            room = invites.accept(invite_id, request.user)
            return redirect("chat:room", slug=room.slug)
        invites.decline(invite_id, request.user)
        flash.success(request, "Invitation declined.")
    except invites.MembershipError as exc:
        flash.error(request, exc.message)
    return redirect("chat:rooms")


@require_POST
def open_direct(request: HttpRequest, user_id: int) -> HttpResponse:
    """``POST /chats/direct/<user id>/``: the direct conversation with that user (made on first
    use), as a redirect to its room. Guests get 403: they can neither send nor receive one."""
    if not request.user.is_authenticated:
        return render(request, "chat/rooms/direct_refused.html", {"guest": True}, status=403)
    try:
        room = direct.open_direct(request.user, user_id)
    except invites.MembershipError as exc:
        context = {"guest": False, "error": exc.message}
        return render(request, "chat/rooms/direct_refused.html", context, status=404)
    return redirect("chat:room", slug=room.slug)
