"""Who is chatting: a signed-in user, or a guest whose name and id live in the session."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.http import HttpRequest

from .models import MAX_NAME_LENGTH, Room

GUEST_ID_KEY = "chat_guest_id"
GUEST_NAME_KEY = "chat_guest_name"


@dataclass(frozen=True)
class ChatIdentity:
    """The identity a ticket is minted for (see docs/protocol.md, ticket payload)."""

    uid: str
    user_id: int | None
    name: str
    guest: bool


def may_join(request: HttpRequest, room: Room) -> bool:
    """A signed-in user may join any open room; a visitor only a room that allows guests."""
    return request.user.is_authenticated or room.allow_guests


def guest_identity(request: HttpRequest) -> ChatIdentity:
    """The session's guest identity, created on first use (``guest-NNNN``, 16 hex id)."""
    session = request.session
    guest_id = session.get(GUEST_ID_KEY)
    if not isinstance(guest_id, str) or len(guest_id) != 16:
        guest_id = secrets.token_hex(8)
        session[GUEST_ID_KEY] = guest_id
    name = session.get(GUEST_NAME_KEY)
    if not isinstance(name, str) or not name:
        name = f"guest-{secrets.randbelow(9000) + 1000}"
        session[GUEST_NAME_KEY] = name
    return ChatIdentity(uid=f"g:{guest_id}", user_id=None, name=name, guest=True)


def chat_identity(request: HttpRequest) -> ChatIdentity:
    """The identity of this request: the user when signed in, otherwise the session's guest."""
    user = request.user
    if user.is_authenticated:
        name = user.get_username()[:MAX_NAME_LENGTH]
        return ChatIdentity(uid=f"u:{user.pk}", user_id=user.pk, name=name, guest=False)
    return guest_identity(request)


def set_guest_name(request: HttpRequest, name: str) -> str | None:
    """Store a new guest name; return an error text, or None when it was accepted."""
    name = name.strip()
    if not name:
        return "A name cannot be empty."
    if len(name) > MAX_NAME_LENGTH:
        return f"A name has at most {MAX_NAME_LENGTH} characters."
    guest_identity(request)  # make sure the guest id exists too
    request.session[GUEST_NAME_KEY] = name
    return None
