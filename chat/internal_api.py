"""The internal API the chat server calls (HMAC signed, no cookies); see docs/protocol.md."""

from __future__ import annotations

import json
import logging
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from . import attachments, attention, history, markdown
from .models import (
    GUEST_UID_RE,
    MAX_NAME_LENGTH,
    PRIVATE,
    Attachment,
    Membership,
    Message,
    Room,
    body_error,
    body_too_long_text,
    is_valid_nonce,
)
from .params import MAX_ID
from .signing import error_response, internal_endpoint

MAX_BATCH_ITEMS = 1000
INTERNAL_PAGE_DEFAULT = 100
INTERNAL_PAGE_MAX = 1000

ERROR_TEXT = {
    "unknown_room": "No such room.",
    "room_archived": "The room is archived.",
    "empty_body": "A message cannot be empty.",
    "bad_body": "A message cannot contain NUL characters or unpaired surrogates.",
    "bad_nonce": "A nonce is 1 to 64 characters of letters, digits, '_' and '-'.",
    "bad_item": "The item is not a valid message.",
    "unknown_parent": "The message this replies to is not in this room.",
    "not_a_member": "Only members may write in this private room.",
    "bad_attachments": "An attachment is unknown, not yours, or already sent.",
}

log = logging.getLogger(__name__)


def _item_error(item: Any, code: str) -> dict[str, Any]:
    fields = item if isinstance(item, dict) else {}
    return {
        "ok": False,
        "nonce": fields.get("nonce"),
        "room": fields.get("room"),
        "error": code,
        # The limit is a setting, so its text is built when answering.
        "message": body_too_long_text() if code == "body_too_long" else ERROR_TEXT[code],
    }


def _shape_error(item: Any) -> str | None:
    """``bad_item``/``bad_nonce`` for an item whose fields are missing or of the wrong type."""
    if not isinstance(item, dict):
        return "bad_item"
    name = item.get("name")
    user_id = item.get("user_id")
    if not (
        isinstance(item.get("room"), str)
        and isinstance(item.get("body"), str)
        and isinstance(name, str)
        and 1 <= len(name.strip()) <= MAX_NAME_LENGTH
        and isinstance(item.get("guest"), bool)
        and (user_id is None or (isinstance(user_id, int) and not isinstance(user_id, bool)))
        and _reply_to_shape_ok(item.get("reply_to"))
    ):
        return "bad_item"
    if not _uid_matches(item):
        return "bad_item"
    if not is_valid_nonce(item.get("nonce")):
        return "bad_nonce"
    if not attachments.ids_shape_ok(item.get("attachments")):
        return "bad_attachments"
    return None


def _body_error(item: dict[str, Any]) -> str | None:
    """``body_error`` of the item's body, where an empty body is fine with attachments."""
    code = body_error(item["body"])
    if code == "empty_body" and item.get("attachments"):
        return None
    return code


def _attachments_error(
    item: dict[str, Any], room: _RoomRow, uploads: dict[str, Attachment], taken: set[str]
) -> str | None:
    """``bad_attachments`` unless every id the item names is an unsent upload of its author
    (``uid``) to its room that no earlier item of this batch took."""
    ids = item.get("attachments") or []
    for token in ids:
        row = uploads.get(token)
        if (
            row is None
            or token in taken
            or row.message_id is not None
            or row.room_id != room.id
            or row.uploader_uid != item["uid"]
        ):
            return "bad_attachments"
    return None


def _reply_to_shape_ok(value: Any) -> bool:
    """``reply_to`` is absent/null or a message id: an integer from 1 to 2**53 - 1."""
    if value is None:
        return True
    return type(value) is int and 1 <= value <= MAX_ID


def _uid_matches(item: dict[str, Any]) -> bool:
    """The author id agrees with the rest: ``u:<user_id>`` for a user, ``g:<16 hex>`` for a guest.

    A guest item carries no ``user_id``; a user item's uid names exactly its ``user_id``.
    """
    uid = item.get("uid")
    if not isinstance(uid, str):
        return False
    if item["guest"]:
        return item["user_id"] is None and GUEST_UID_RE.fullmatch(uid) is not None
    return item["user_id"] is not None and uid == f"u:{item['user_id']}"


def _created(
    message: Message, slug: str, created: bool, prev_id: int | None = None
) -> dict[str, Any]:
    """The result of a stored item: a new row, or a repeat of a stored ``(room, nonce)``.

    A repeat is authoritative for the chat server (it never publishes one) and carries the
    original ``id`` and ``deleted``; a deleted original is answered without its message, so a
    resent nonce can never bring moderated text back (docs/protocol.md, the batch).
    """
    result: dict[str, Any] = {"ok": True, "created": created}
    if created:
        if prev_id is not None:
            result["prev_id"] = prev_id
    else:
        result["id"] = message.pk
        result["deleted"] = message.is_deleted
        if message.is_deleted:
            result["nonce"] = message.nonce
            result["room"] = slug
            return result
    result["message"] = message.to_dict(slug, fresh=created)
    return result


def _previous_ids(
    stored: dict[tuple[int, str], tuple[Message, bool]], last_ids: dict[int, int]
) -> dict[int, int]:
    """Message pk -> id of the room's previous message, for every row this batch created.

    Chat server instances use it to see a gap in a room's sequence (ids are global across rooms,
    so consecutive ids say nothing). ``last_ids`` was read under the room locks, before insert.
    """
    by_room: dict[int, list[int]] = {}
    for message, created in stored.values():
        if created:
            by_room.setdefault(message.room_id, []).append(message.pk)
    previous: dict[int, int] = {}
    for room_id, ids in by_room.items():
        prev = last_ids.get(room_id) or 0
        for pk in sorted(ids):
            previous[pk] = prev
            prev = pk
    return previous


class _RoomRow(NamedTuple):
    """What storing needs of a room: its key, slug, whether it takes messages and from whom."""

    id: int
    slug: str
    is_archived: bool
    visibility: str


def _placeholders(values: Any) -> str:
    return ", ".join(["%s"] * len(values))


def _locked_rooms(slugs: set[str]) -> dict[str, _RoomRow]:
    """The batch's rooms by slug, locked for the transaction (one plain SQL query).

    Locked in pk order, so two batches never wait on each other. PostgreSQL takes row locks;
    SQLite has no FOR UPDATE, its IMMEDIATE transactions (settings.py) already serialize every
    writer. Plain SQL rather than a queryset: building the ORM's queries was most of the CPU of
    storing a one-message batch (docs/performance.md, "Django's CPU per stored message").
    """
    if not slugs:
        return {}
    table = connection.ops.quote_name(Room._meta.db_table)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    sql = (
        # Only the model's table name and %s placeholders are formatted in; values are params.
        f"SELECT id, slug, is_archived, visibility FROM {table} "  # noqa: S608
        f"WHERE slug IN ({_placeholders(slugs)}) ORDER BY id{lock}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(slugs))
        rows = cursor.fetchall()
    return {row[1]: _RoomRow(row[0], row[1], bool(row[2]), row[3]) for row in rows}


def _nonces_and_last_ids(
    room_ids: list[int], nonces: set[str]
) -> tuple[dict[tuple[int, str], int], dict[int, int]]:
    """One query: ``(room id, nonce) -> message id`` of the batch's nonces already stored, and
    each room's newest message id (deleted rows count: ids only grow, and a receiver must not
    wait for a hidden one). Read under the room locks, before our rows go in."""
    if not room_ids or not nonces:
        return {}, {}
    table = connection.ops.quote_name(Message._meta.db_table)
    rooms = _placeholders(room_ids)
    sql = (
        f"SELECT room_id, nonce, id FROM {table} "  # noqa: S608 - table name, placeholders
        f"WHERE room_id IN ({rooms}) AND nonce IN ({_placeholders(nonces)}) "
        "UNION ALL "
        f"SELECT room_id, NULL, MAX(id) FROM {table} WHERE room_id IN ({rooms}) GROUP BY room_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*room_ids, *nonces, *room_ids])
        rows = cursor.fetchall()
    existing = {(room_id, nonce): pk for room_id, nonce, pk in rows if nonce is not None}
    last_ids = {room_id: pk for room_id, nonce, pk in rows if nonce is None}
    return existing, last_ids


def store_batch(items: list[Any]) -> list[dict[str, Any]]:
    """Store a batch in one transaction; one result per item, in order.

    A constant number of queries: the rooms (locked), then the stored nonces and each room's
    newest id together, the users only when the batch names one, the repeated messages only when
    there are repeats, and the new rows in one ``bulk_create``.
    """
    shaped = [(item, _shape_error(item)) for item in items]
    good = [item for item, err in shaped if err is None]
    # Rendered before the rooms are locked: the Markdown work never holds up other batches.
    html = {
        id(item): markdown.render(item["body"].strip())
        for item in good
        if _body_error(item) is None
    }
    slugs = {item["room"] for item in good}
    user_ids = {item["user_id"] for item in good if item["user_id"] is not None}
    with transaction.atomic():
        # A room's writers are serialized by the lock, so the room's newest id read below is
        # still the newest when our rows go in, and a room's ids commit in order.
        rooms = _locked_rooms(slugs)
        known_users = (
            set(get_user_model().objects.filter(pk__in=user_ids).values_list("pk", flat=True))
            if user_ids
            else set()
        )
        room_ids = [room.id for room in rooms.values()]
        # Private rooms take messages from their members only, checked here too: a ticket minted
        # just before a member was removed must not write after the removal committed.
        members = set(
            Membership.objects.filter(
                room_id__in=[room.id for room in rooms.values() if room.visibility == PRIVATE]
            ).values_list("room_id", "user_id")
        )
        # Every parent named, deleted ones included (a reply to a message deleted meanwhile is
        # stored as a reply to a deleted message); one query for the batch.
        parents = {
            m.pk: m
            for m in Message.objects.filter(
                pk__in={item["reply_to"] for item in good if item.get("reply_to") is not None}
            ).prefetch_related("attachments")
        }
        # The uploads the batch names (one query, only when it names any): claimed below.
        named = {token for item in good for token in item.get("attachments") or []}
        uploads = (
            {row.token: row for row in Attachment.objects.filter(token__in=named)} if named else {}
        )
        taken: set[str] = set()
        claims: dict[tuple[int, str], list[Attachment]] = {}
        nonces = {item["nonce"] for item in good if item["room"] in rooms}
        existing_ids, last_ids = _nonces_and_last_ids(room_ids, nonces)
        existing: dict[tuple[int, str], Message] = {}
        if existing_ids:  # retries: answered with the stored originals
            by_pk = Message.objects.shaped().in_bulk(list(existing_ids.values()))
            existing = {key: by_pk[pk] for key, pk in existing_ids.items() if pk in by_pk}
        results: list[dict[str, Any] | None] = []
        pending: dict[tuple[int, str], Message] = {}  # new rows, keyed for in-batch repeats
        slots: list[tuple[int, tuple[int, str], str]] = []  # (result index, key, slug)
        for item, err in shaped:
            if err is None:
                room = rooms.get(item["room"])
                if room is None:
                    err = "unknown_room"
                else:
                    key = (room.id, item["nonce"])
                    if key in existing:  # a retry: answer with the original
                        results.append(_created(existing[key], room.slug, False))
                        continue
                    if room.is_archived:
                        err = "room_archived"
                    elif room.visibility == PRIVATE and (
                        item["guest"] or (room.id, item["user_id"]) not in members
                    ):
                        err = "not_a_member"
                    else:
                        err = _body_error(item) or _parent_error(item, room, parents)
                        if err is None and key not in pending:
                            err = _attachments_error(item, room, uploads, taken)
            if err is not None:
                results.append(_item_error(item, err))
                continue
            slots.append((len(results), key, room.slug))
            results.append(None)
            if key not in pending:
                ids = item.get("attachments") or []
                taken.update(ids)
                claims[key] = [uploads[token] for token in ids]
                user_id = item["user_id"]
                pending[key] = Message(
                    room_id=room.id,
                    author_id=user_id if user_id in known_users and not item["guest"] else None,
                    author_name=item["name"].strip(),
                    author_is_guest=item["guest"],
                    author_uid=item["uid"],
                    body=item["body"].strip(),
                    html=html[id(item)],
                    nonce=item["nonce"],
                    reply_to=parents.get(item.get("reply_to")),
                )
        stored = _insert(list(pending.values()))
        _claim(stored, claims)
        previous = _previous_ids(stored, last_ids)
        # Mentions are recorded with the message; feed events leave after commit.
        attention.message_stored(
            sorted((m for m, created in stored.values() if created), key=lambda m: m.pk)
        )
        first_seen: set[tuple[int, str]] = set()
        for index, key, slug in slots:
            message, created = stored[key]
            created = created and key not in first_seen
            results[index] = _created(message, slug, created, previous.get(message.pk))
            first_seen.add(key)
    return [r for r in results if r is not None]


def _claim(
    stored: dict[tuple[int, str], tuple[Message, bool]],
    claims: dict[tuple[int, str], list[Attachment]],
) -> None:
    """Tie each new message's uploads to it (one UPDATE for the batch), in the transaction that
    stores it, each at its place in the item's list; a row lost to a concurrent writer of the
    same nonce claims nothing."""
    tied: list[Attachment] = []
    for key, rows in claims.items():
        message, created = stored[key]
        if not created:
            continue
        for position, row in enumerate(rows):  # the item's order: the sender's
            row.message_id = message.pk
            row.position = position
        message.fresh_attachments = rows
        tied.extend(rows)
    if tied:
        Attachment.objects.bulk_update(tied, ["message", "position"])


def _parent_error(item: dict[str, Any], room: Room, parents: dict[int, Message]) -> str | None:
    """``unknown_parent`` when the item replies to a message that is not in its room.

    A message of another room is answered exactly like one that never existed, so a reply
    cannot tell whether an id exists in a room the sender may not read.
    """
    parent_id = item.get("reply_to")
    if parent_id is None:
        return None
    parent = parents.get(parent_id)
    if parent is None or parent.room_id != room.id:
        return "unknown_parent"
    return None


def _insert(rows: list[Message]) -> dict[tuple[int, str], tuple[Message, bool]]:
    """Insert new rows; a concurrent writer may have stored some nonces since we looked."""
    if not rows:
        return {}
    try:
        with transaction.atomic():
            Message.objects.bulk_create(rows)
        return {(m.room_id, m.nonce): (m, True) for m in rows}
    except IntegrityError:
        log.info("nonce race during batch insert; falling back to one insert per message")
    stored: dict[tuple[int, str], tuple[Message, bool]] = {}
    for message in rows:
        key = (message.room_id, message.nonce)
        try:
            with transaction.atomic():
                message.pk = None
                message.save(force_insert=True)
            stored[key] = (message, True)
        except IntegrityError:
            stored[key] = (Message.objects.get(room_id=key[0], nonce=key[1]), False)
    return stored


@internal_endpoint
@require_POST
def message_batch(request: HttpRequest) -> JsonResponse:
    """``POST /internal/messages/batch/``."""
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return error_response(400, "bad_json", "The body is not JSON.")
    items = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return error_response(400, "bad_request", "Expected an object with a `messages` list.")
    if len(items) > MAX_BATCH_ITEMS:
        return error_response(400, "batch_too_large", f"At most {MAX_BATCH_ITEMS} messages.")
    return JsonResponse({"results": store_batch(items)})


@internal_endpoint
@require_GET
def room_messages(request: HttpRequest, slug: str) -> JsonResponse:
    """``GET /internal/rooms/<slug>/messages/?after=&limit=`` (archived rooms still answer)."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return error_response(404, "unknown_room", "No such room.")
    try:
        after = history.parse_id(request.GET, "after")
        limit = history.parse_limit(request.GET, INTERNAL_PAGE_DEFAULT, INTERNAL_PAGE_MAX)
    except history.BadParameter as exc:
        return error_response(400, "bad_parameter", str(exc))
    rows, has_more = history.page(room, after=after, limit=limit)
    return JsonResponse({"messages": [m.to_dict(room.slug) for m in rows], "has_more": has_more})


@internal_endpoint
@require_GET
def room_detail(request: HttpRequest, slug: str) -> JsonResponse:
    """``GET /internal/rooms/<slug>/``."""
    room = Room.objects.filter(slug=slug).first()
    if room is None:
        return error_response(404, "unknown_room", "No such room.")
    last = Message.objects.filter(room=room).order_by("-id").values_list("id", flat=True).first()
    return JsonResponse(
        {
            "slug": room.slug,
            "name": room.name,
            "allow_guests": room.allow_guests,
            "is_archived": room.is_archived,
            "last_id": last,
        }
    )


@internal_endpoint
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    """``GET /internal/health/``: Django and its database answer."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return JsonResponse({"status": "ok"})
