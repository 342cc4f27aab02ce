"""Attention: how far each user has read each room, mentions, and who hears about a message.

Read state (:class:`chat.models.ReadState`) is per user and room: ``last_read_id`` only moves
forward (:func:`mark_read`). A user follows a room they may read when they have a read state of
it or are a member of it (:func:`_follows`, the one rule: the live feed's :func:`followers` and
the listing's :func:`followed_rooms` both apply it): every new message in it raises a
``room_message`` feed event for them, a message that names them (``@username``, or ``@here``
while they had the room open) a ``mention`` event instead. A followed room the user never
opened counts from where following began (:func:`start_read_id`: a member's join), so a reload
shows what the live feed counted. Mentions are recorded when a message
is stored (:func:`message_stored`, called by the internal batch API inside its transaction), and
only for people who may read the room (``chat.access.may_read``, the one access rule). The feed
events go to the chat server after commit through ``chat.actions.user_events``, addressed to an
explicit list of user ids (docs/protocol.md, "Personal feed").

Feed event kinds Django sends (a new kind is one more builder and one ``case`` in
static/chat/client/feed.js; the chat server does not look):

- ``room_message``: ``{"type", "room", "room_name", "id", "author": {"id", "name"}}``, plus
  ``"direct": true`` and ``"excerpt"`` when the room is a direct conversation (a direct message
  for the reader)
- ``mention``: the same plus ``"excerpt"`` and ``"here"`` (reached by ``@here``)
- ``invitation``: sent by ``chat.invites.invite_user`` to the invitee (see there)
- ``unread``: ``{"type", "room", "unread", "mentions", "last_read_id", "muted"}``, the absolute
  state of one room for one user, sent to all of that user's feeds when it changed (read, mute).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone

from . import access, actions
from .markdown import MENTION_RE
from .membership import OWNER, Membership
from .models import Mention, Message, ReadState, Room, files_line

# `@name` is chat.markdown.MENTION_RE (the renderer marks the same names); `@here` reaches the
# room's readers who had it open recently.
HERE = "here"
# Counts above this are shown as "99+": the room list never counts a huge backlog row by row.
COUNT_CAP = 100
EXCERPT = 200


def parse_mentions(body: str) -> tuple[set[str], bool]:
    """The lower-cased usernames ``body`` names with ``@``, and whether it says ``@here``."""
    names = {m.group(1).rstrip(".").lower() for m in MENTION_RE.finditer(body)}
    names.discard("")
    here = HERE in names
    names.discard(HERE)
    return names, here


def may_notify_here(author: Any, room: Room, audience: int) -> bool:
    """May ``author`` use ``@here`` in ``room`` now, reaching ``audience`` people?

    In a room where more than ``CHAT_HERE_LARGE_ROOM`` people would be reached only staff and
    the room's owners may; everyone at most once per ``CHAT_HERE_INTERVAL`` seconds per room (a
    refused ``@here`` stays plain text).
    """
    if author is None:
        return False
    if audience > settings.CHAT_HERE_LARGE_ROOM and not (
        author.is_staff or Membership.objects.filter(room=room, user=author, role=OWNER).exists()
    ):
        return False
    return cache.add(f"chat:here:{room.pk}:{author.pk}", 1, settings.CHAT_HERE_INTERVAL)


def here_audience(room: Room, exclude: int | None) -> list[Any]:
    """Who ``@here`` reaches: readers who had the room open within ``CHAT_HERE_WINDOW`` seconds."""
    since = timezone.now() - timedelta(seconds=settings.CHAT_HERE_WINDOW)
    users = get_user_model().objects.filter(
        is_active=True, chat_read_states__room=room, chat_read_states__seen_at__gte=since
    )
    return [u for u in users.exclude(pk=exclude) if access.may_read(u, room)]


def mentioned_users(message: Message) -> tuple[list[Any], list[Any]]:
    """(named, reached by @here) users of a new message: active, not its author, readers only."""
    names, here = parse_mentions(message.body)
    room = message.room
    author_id = message.author_id
    named: list[Any] = []
    if names:
        users = (
            get_user_model()
            .objects.annotate(lname=Lower("username"))
            .filter(lname__in=names, is_active=True)
            .exclude(pk=author_id)
        )
        named = [u for u in users if access.may_read(u, room)]
    reached: list[Any] = []
    if here and author_id is not None:
        audience = [u for u in here_audience(room, author_id) if u.pk not in {n.pk for n in named}]
        if audience and may_notify_here(message.author, room, len(audience)):
            reached = audience
    return named, reached


def _follows(read_states: str, memberships: str, other: Any) -> Q:
    """The follow rule, from either side: a read state of the (user, room) pair, or a
    membership (of a private room or direct conversation, from the moment of joining, whichever
    way: creation, direct open, invitation, admin). ``read_states`` and ``memberships`` are the
    lookups from the side queried to ``other`` (a room when listing users, a user when listing
    rooms). Callers add the access rule (who may read)."""
    return Q(**{read_states: other}) | Q(**{memberships: other})


def followers(room: Room, exclude: int | None) -> list[int]:
    """Ids of the active users following ``room`` (:func:`_follows`) who may read it, but
    ``exclude``. One query."""
    users = (
        get_user_model()
        .objects.filter(is_active=True)
        .filter(_follows("chat_read_states__room", "chat_memberships__room", room))
        .distinct()
    )
    return [u.pk for u in users.exclude(pk=exclude) if access.may_read(u, room)]


def followed_rooms(user: Any) -> QuerySet[Room]:
    """The open (not archived) rooms ``user`` follows (:func:`_follows`) and may read
    (``chat.access.readable_rooms``): the same rooms whose messages :func:`followers` sends to
    the user's feed."""
    return (
        access.readable_rooms(user)
        .filter(_follows("read_states__user", "memberships__user", user), is_archived=False)
        .distinct()
    )


def start_read_id(user_id: int, room_id: int, default: int) -> int:
    """Where the read position of a followed room the user never opened starts (the id of the
    last message taken as read): for a member, the newest message sent before they joined, so
    everything since the join is unread, as the live feed counted it (:func:`followers` sends
    them every message from then on); for anyone else ``default``. One or two queries."""
    joined_at = (
        Membership.objects.filter(user_id=user_id, room_id=room_id)
        .values_list("joined_at", flat=True)
        .first()
    )
    if joined_at is None:
        return default
    before = Message.objects.filter(room_id=room_id, sent_at__lt=joined_at)
    return before.aggregate(newest=Max("id"))["newest"] or 0


def read_state(user: Any, room: Room) -> ReadState | None:
    """``user``'s read state of ``room``: the stored row, else (for a member who never opened
    it) an unsaved one at :func:`start_read_id`, else None (the user does not follow it)."""
    state = ReadState.objects.filter(user=user, room=room).first()
    if state is not None:
        return state
    start = start_read_id(user.pk, room.pk, -1)
    if start < 0:
        return None
    return ReadState(user=user, room=room, last_read_id=start)


def _stored_state(user: Any, room: Room, default: int) -> ReadState:
    """The user's read state row of ``room``, locked; made at :func:`start_read_id` (with
    ``default`` for a non-member) when the user never had one. Inside a transaction."""
    state = ReadState.objects.select_for_update().filter(user=user, room=room).first()
    if state is not None:
        return state
    start = start_read_id(user.pk, room.pk, default)
    state, _ = ReadState.objects.select_for_update().get_or_create(
        user=user, room=room, defaults={"last_read_id": start}
    )
    return state


def message_stored(messages: Iterable[Message]) -> None:
    """New messages were stored (inside the storing transaction): record their mentions, make
    sure each mentioned user follows the room, and schedule the feed events (after commit).

    One ``room_message`` item per message for its room's followers and one ``mention`` item per
    message for the people it reached (the recipients computation: :func:`recipients`).
    """
    items: list[dict[str, Any]] = []
    followers_of: dict[int, list[int]] = {}
    messages = list(messages)
    # The batch's rooms in one query (storing may set only ``room_id``): not one per message.
    rooms = Room.objects.in_bulk({message.room_id for message in messages})
    for message in messages:
        message.room = rooms[message.room_id]
        if message.room_id not in followers_of:
            followers_of[message.room_id] = followers(message.room, None)
        named, reached = mentioned_users(message)
        _record(message, named, reached)
        items.extend(recipients(message, followers_of[message.room_id], named, reached))
    if items:
        actions.user_events(items)


def excerpt_of(message: Message) -> str:
    """A notification's text: the first ``EXCERPT`` characters of the body, or for a message of
    attachments only, a paperclip and the files' names (from the rows the batch just claimed)."""
    if message.body:
        return message.body[:EXCERPT]
    names = [row.original_name for row in getattr(message, "fresh_attachments", [])]
    return files_line(names)[:EXCERPT]


def recipients(
    message: Message, following: list[int], named: list[Any], reached: list[Any]
) -> list[dict[str, Any]]:
    """The feed items of one new message: ``mention`` for the people it named or reached,
    ``room_message`` for the other followers; never its author."""
    author = {"id": message.author_uid, "name": message.author_name}
    base = {
        "room": message.room.slug,
        "room_name": message.room.name,
        "id": message.pk,
        "author": author,
    }
    if message.room.direct_key:
        # A message in a direct conversation is a direct message for the other person; the
        # excerpt is the body of its desktop notification.
        base["direct"] = True
        base["excerpt"] = excerpt_of(message)
    mentioned = {u.pk for u in named} | {u.pk for u in reached}
    items: list[dict[str, Any]] = []
    others = [uid for uid in following if uid not in mentioned and uid != message.author_id]
    if others:
        items.append({"users": others, "event": {"type": "room_message", **base}})
    excerpt = excerpt_of(message)
    for users, here in (([u.pk for u in named], False), ([u.pk for u in reached], True)):
        if users:
            event = {"type": "mention", **base, "excerpt": excerpt, "here": here}
            items.append({"users": users, "event": event})
    return items


def _record(message: Message, named: list[Any], reached: list[Any]) -> None:
    rows = [Mention(message=message, user=u) for u in named]
    rows += [Mention(message=message, user=u, here=True) for u in reached]
    if not rows:
        return
    Mention.objects.bulk_create(rows, ignore_conflicts=True)
    # Someone named in a room they never opened starts following it with this message unread;
    # a member who never opened it keeps everything since joining unread (start_read_id). A
    # user who has a read state keeps it (ignore_conflicts).
    opened = set(
        ReadState.objects.filter(
            room_id=message.room_id, user_id__in=[row.user_id for row in rows]
        ).values_list("user_id", flat=True)
    )
    ReadState.objects.bulk_create(
        [
            ReadState(
                user_id=row.user_id,
                room_id=message.room_id,
                last_read_id=min(
                    message.pk - 1, start_read_id(row.user_id, message.room_id, message.pk - 1)
                ),
            )
            for row in rows
            if row.user_id not in opened
        ],
        ignore_conflicts=True,
    )


def room_state(user: Any, state: ReadState) -> dict[str, Any]:
    """The ``unread`` event of one read state: counts (capped at ``COUNT_CAP``) after it."""
    after = Message.objects.visible().filter(room_id=state.room_id, id__gt=state.last_read_id)
    unread_ids = after.exclude(author_id=user.pk).order_by("id").values_list("id", flat=True)
    unread = len(unread_ids[:COUNT_CAP])
    mentions = Mention.objects.filter(
        user=user,
        message__room_id=state.room_id,
        message__id__gt=state.last_read_id,
        message__is_deleted=False,
    ).count()
    return {
        "type": "unread",
        "room": state.room.slug,
        "unread": unread,
        "mentions": mentions,
        "last_read_id": state.last_read_id,
        "muted": state.muted,
    }


def summary(user: Any) -> dict[str, Any]:
    """``GET /api/attention/``: every room the user follows and may read
    (:func:`followed_rooms`, never opened ones included, counted from :func:`start_read_id`),
    its counts, and totals."""
    followed = list(followed_rooms(user).order_by("pk"))
    stored = {s.room_id: s for s in ReadState.objects.filter(user=user, room__in=followed)}
    states = [
        stored.get(room.pk)
        or ReadState(user=user, room=room, last_read_id=start_read_id(user.pk, room.pk, 0))
        for room in followed
    ]
    for state, room in zip(states, followed, strict=True):
        state.room = room
    rooms = [room_state(user, s) for s in states]
    return {
        "rooms": rooms,
        "unread": sum(r["unread"] for r in rooms if not r["muted"]),
        "mentions": sum(r["mentions"] for r in rooms),
    }


def mark_read(user: Any, room: Room, last_read_id: int) -> dict[str, Any]:
    """Move ``user``'s read position in ``room`` forward to ``last_read_id`` (never back, never
    past the room's newest message) and mark the room seen now; every feed of the user gets the
    new ``unread`` state after commit. Returns that state."""
    newest = Message.objects.filter(room=room).aggregate(newest=Max("id"))["newest"] or 0
    target = max(0, min(int(last_read_id), newest))
    state = _stored_state(user, room, 0)
    changed = target > state.last_read_id
    if changed:
        state.last_read_id = target
    state.seen_at = timezone.now()
    state.save(update_fields=["last_read_id", "seen_at"])
    event = room_state(user, state)
    if changed:
        actions.user_events([{"users": [user.pk], "event": event}])
    return event


def set_muted(user: Any, room: Room, muted: bool) -> dict[str, Any]:
    """Mute or unmute ``room``'s notifications for ``user`` (on every device). A room the user
    never opened starts following from its newest message (a member's from the join)."""
    newest = Message.objects.filter(room=room).aggregate(newest=Max("id"))["newest"] or 0
    state = _stored_state(user, room, newest)
    state.muted = bool(muted)
    state.save(update_fields=["muted"])
    event = room_state(user, state)
    actions.user_events([{"users": [user.pk], "event": event}])
    return event


def people(room: Room, prefix: str, limit: int = 8) -> list[dict[str, str]]:
    """``@`` autocomplete: readers of ``room`` seen there within ``CHAT_MENTION_RECENT`` seconds
    whose username starts with ``prefix`` (case-insensitive), most recently seen first."""
    since = timezone.now() - timedelta(seconds=settings.CHAT_MENTION_RECENT)
    states = (
        ReadState.objects.filter(room=room, seen_at__gte=since, user__is_active=True)
        .filter(user__username__istartswith=prefix)
        .select_related("user")
        .order_by("-seen_at")[: limit * 2]
    )
    found = []
    for state in states:
        if access.may_read(state.user, room):
            found.append({"id": f"u:{state.user.pk}", "name": state.user.get_username()})
    return found[:limit]
