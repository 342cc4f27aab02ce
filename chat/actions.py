"""What Django tells the chat server, and when: the only caller of `chat.chatserver_client`.

Each function schedules one signed control call (docs/protocol.md, "Control API"; room changes
all go to the one room-events endpoint, `chatserver_client.room_event`) with
`transaction.on_commit`, so the chat server never acts on a change that is rolled back, and the
cut-off it gets (``before_ms``) is taken after the commit: every ticket minted before the change
is at or before it. The signal handlers in `chat.signals` call these for every path that changes
a user or a room (admin buttons and actions, the shell, management commands); the admin calls
them for moderation.

A call that gets no answer is logged and dropped (the chat server may be down; the change in
Django stands). The calls of one transaction form a batch: after one of them got no answer, the
rest of the batch is skipped instead of each waiting for its own timeout, so a bulk action over
many rows costs one timeout, not one per row.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db import transaction

from . import chatserver_client

log = logging.getLogger(__name__)

# Scopes of a room access change (docs/protocol.md): the room's guest tickets, or all of them.
GUESTS = "guests"
EVERYONE = "all"


class _Batch:
    """The control calls of one transaction; `unanswered` once one of them got no answer."""

    __slots__ = ("unanswered",)

    def __init__(self) -> None:
        self.unanswered = False


def now_ms() -> int:
    """Unix time in milliseconds (the unit of ticket ``iat_ms`` and of revocation cut-offs)."""
    return time.time_ns() // 1_000_000


def _send(name: str, call: Callable[[], dict[str, Any] | None], batch: _Batch) -> None:
    if batch.unanswered:
        log.warning("chat server control call %s skipped: the chat server did not answer", name)
        return
    if call() is None:
        batch.unanswered = True


def _batch() -> _Batch:
    """The batch of the current transaction (a new one outside a transaction)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return _Batch()
    # Django starts a new `run_on_commit` list for every transaction (after commit, rollback,
    # or a savepoint rollback): the list object tells one transaction's calls from the next.
    pending = connection.run_on_commit
    current = getattr(connection, "_chat_control_batch", None)
    if current is not None and current[0] is pending:
        return current[1]
    batch = _Batch()
    connection._chat_control_batch = (pending, batch)
    return batch


def _after_commit(name: str, call: Callable[[], dict[str, Any] | None]) -> None:
    batch = _batch()
    transaction.on_commit(lambda: _send(name, call, batch))


def _room_event(name: str, slug: str, event: Callable[[], dict[str, Any]]) -> None:
    """One room event after commit; `event` is built then (a cut-off is taken after commit)."""
    _after_commit(name, lambda: chatserver_client.room_event(slug, event()))


def room_archived(slug: str) -> None:
    """A room was archived: its sockets close with 4004, its held polls answer 410."""
    _room_event("room_archived", slug, lambda: {"type": "archived"})


def room_unarchived(slug: str) -> None:
    """A room was un-archived: the chat server accepts its sockets again."""
    _room_event("room_unarchived", slug, lambda: {"type": "unarchived"})


def room_deleted(slug: str) -> None:
    """A room was deleted (or its slug changed): 4005 / 410, and the chat server forgets it."""
    _room_event("room_deleted", slug, lambda: {"type": "room_deleted", "before_ms": now_ms()})


def room_access_changed(slug: str, scope: str) -> None:
    """Fewer people may join a room (``GUESTS``: guests no longer; ``EVERYONE``: membership
    rules changed): the affected connections close with 4003 and their old tickets are refused."""
    if scope not in (GUESTS, EVERYONE):
        raise ValueError(f"scope must be {GUESTS!r} or {EVERYONE!r}, not {scope!r}")
    _room_event(
        "room_access_changed",
        slug,
        lambda: {"type": "access", "scope": scope, "before_ms": now_ms()},
    )


def member_removed(slug: str, user_id: int) -> None:
    """A member left or was removed from a private room: that user's connections to the room
    close with 4003 and its earlier tickets for it are refused (its other rooms stay open); the
    fresh ticket the client then asks for is refused with 404 ``unknown_room`` (the room no
    longer exists for that user: chat.access.known_room)."""
    uid = f"u:{int(user_id)}"
    _room_event(
        "member_removed",
        slug,
        lambda: {"type": "access", "scope": "member", "uid": uid, "before_ms": now_ms()},
    )


def user_access_revoked(user_id: int) -> None:
    """A user signed out, was deactivated or deleted: every connection of ``u:<id>`` closes
    with 4003 and its earlier tickets are refused; a fresh ticket decides what it may do now."""
    uid = f"u:{int(user_id)}"
    _after_commit("user_revoked", lambda: chatserver_client.user_revoked(uid, now_ms()))


def _with_quote(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` (about message ``id``) plus ``quote``, the ``reply_to`` its replies show now,
    when the message has replies (docs/protocol.md, `edited` and `deleted`).

    Read after commit: a reply stored before the change is seen here, one stored after it
    quoted the changed parent already. The chat server gives the quote to the replies in its
    recent buffer, and clients to the replies they show.
    """
    from .models import Message, quote_of

    message_id = event["id"]
    if not Message.objects.filter(reply_to_id=message_id).exists():
        return event
    parent = Message.objects.filter(pk=message_id).first()
    return {**event, "quote": quote_of(message_id, parent)}


def message_deleted(slug: str, message_id: int) -> None:
    """A moderator or the author deleted a message: clients remove it (a `deleted` frame), and
    its replies show "deleted" in their quote."""
    event = {"type": "deleted", "id": int(message_id)}
    _room_event("message_deleted", slug, lambda: _with_quote(event))


def renamed(uid: str, name: str) -> None:
    """A guest renamed itself, or a user changed its display name (``uid`` is ``g:<hex>`` or
    ``u:<pk>``): its open sockets, polls and presence take the new name at once."""
    _after_commit("renamed", lambda: chatserver_client.renamed(uid, name))


def live_stats() -> dict[str, Any] | None:
    """The chat server's live numbers now (read only, nothing to commit), or None."""
    return chatserver_client.stats()


def message_edited(slug: str, message: dict[str, Any]) -> None:
    """An author (or staff) edited a message: members show the new body and "(edited)".

    The event carries the new source (``body``) and its rendering (``html``); the chat server
    passes both through.

    ``message`` is the stored message's protocol shape (``Message.to_dict``) after the edit; its
    ``version`` lets the newest edit win when events race across chat server instances.
    """
    event = {
        "type": "edited",
        "id": int(message["id"]),
        "version": int(message["version"]),
        "body": message["body"],
        "html": message["html"],
        "edited_at": message["edited_at"],
    }
    _room_event("message_edited", slug, lambda: _with_quote(event))


def message_reactions(slug: str, message: dict[str, Any]) -> None:
    """Someone added or removed a reaction: members show the message's new summary.

    ``message`` is the message's protocol shape after the change; the event carries its
    ``reactions`` and ``reactions_version`` (also as ``version``: the newest summary wins when
    events race across chat server instances).
    """
    event = {
        "type": "reactions",
        "id": int(message["id"]),
        "version": int(message["reactions_version"]),
        "reactions_version": int(message["reactions_version"]),
        "reactions": message["reactions"],
    }
    _room_event("message_reactions", slug, lambda: event)


# Items per call of the user-events endpoint (the chat server's MAX_EVENTS).
USER_EVENT_ITEMS = 100


def user_events(items: list[dict[str, Any]]) -> None:
    """Feed events for explicit recipients, after commit: each item is
    ``{"users": [user id, ...], "event": {"type": ...}}`` (chat/attention.py lists the kinds).

    The Zulip ``send_event(realm, event, users)`` shape: the chat server delivers each event to
    every feed connection (``/ws/@me``, ``/poll/@me``) of the listed users, on every instance.
    """
    items = [item for item in items if item["users"]]
    for start in range(0, len(items), USER_EVENT_ITEMS):
        chunk = items[start : start + USER_EVENT_ITEMS]
        _after_commit("user_events", lambda chunk=chunk: chatserver_client.user_events(chunk))
