"""The signed control API Django calls (docs/protocol.md, "Control API on the chat server").

    POST /internal/rooms/<slug>/events                  an event or a list of events -> answers
    POST /internal/users/events  {"users": [id...], "event": {...}} (or a list of such)
                                                        -> {"delivered": n} / {"results": [...]}
    POST /internal/users/<uid>/revoked                  {"before_ms"} -> {"closed": n}
    POST /internal/users/<uid>/renamed   {"name": n}     -> {"renamed": n}  (a user or a guest)
    POST /internal/guests/<uid>/renamed  {"name": n}     -> the same, for guest uids only
    GET  /internal/stats                                -> live numbers

A room event is `{"type": ...}`: a room state change (`archived`, `unarchived`, `room_deleted`
with `before_ms`, `access` with `before_ms` and `scope` "guests", "all", or "member" with the
removed member's `uid`) or a frame for the room's members (a
kind of chatserver/events.py marked `control`, e.g. `{"type": "deleted", "id": 812}`). The
per-change URLs of the previous release are aliases of it:

    POST /internal/rooms/<slug>/archived                = {"type": "archived"}
    POST /internal/rooms/<slug>/unarchived              = {"type": "unarchived"}
    POST /internal/rooms/<slug>/deleted  {"before_ms"}  = {"type": "room_deleted", ...}
    POST /internal/rooms/<slug>/access   {...}          = {"type": "access", ...}
    POST /internal/rooms/<slug>/messages/<id>/deleted   = {"type": "deleted", "id": <id>}

Unsigned, badly signed or stale calls get 403 JSON; bodies over 1 MiB get 413.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from twisted.logger import Logger
from twisted.web.resource import Resource

from chatserver.admission import MAX_ID, parse_decimal
from chatserver.events import KINDS, refers_to_message
from chatserver.methods import refuse_method
from chatserver.revocations import MEMBER, ROOM, ROOM_GUESTS, USER, Revocation, member_key
from chatserver.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify_request
from chatserver.tickets import MAX_NAME_LENGTH
from chatserver.web import MAX_SIGNED_BODY, error_response, json_response, read_body

log = Logger()

GUEST_UID_RE = re.compile(r"g:[0-9a-f]{16}")
USER_UID_RE = re.compile(r"u:[1-9][0-9]{0,18}")
# A user event's type: opaque to the chat server (Django's feed kinds: docs/protocol.md), so a new
# kind (a direct message, an invitation) needs no chat server change. `hello` is the server's own.
USER_EVENT_TYPE_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
# Recipients of one user event (a room's readers; Django splits larger lists).
MAX_RECIPIENTS = 10_000
# One call carries at most this many events (a bulk action sends one call per room).
MAX_EVENTS = 100
# The old per-change URLs: /internal/rooms/<slug>/<verb> -> the event type they stand for.
ROOM_ALIASES = {
    "archived": "archived",
    "unarchived": "unarchived",
    "deleted": "room_deleted",
    "access": "access",
}


class BadEvent(ValueError):
    """A room event the control API refuses (400 `bad_request`, with this text)."""


class ControlResource(Resource):
    """`/internal/...`: one leaf resource that checks the signature, then routes on the path."""

    isLeaf = True

    def __init__(
        self,
        hub: Any,
        *,
        on_archived: Callable[[str], int] | None = None,
        stats: Callable[[], dict] | None = None,
    ) -> None:
        super().__init__()
        self._hub = hub
        self._on_archived = on_archived or hub.archive
        self._stats = stats or (lambda: {})

    def render(self, request: Any) -> bytes:
        refused = refuse_method(request, (b"GET", b"POST"))
        if refused is not None:
            return refused  # before the body is read or the signature checked
        body = read_body(request, MAX_SIGNED_BODY)
        if body is None:
            return error_response(request, 413, "too_large", "The body is over 1 MiB.")
        method = request.method.decode("ascii", "replace")
        try:
            verify_request(
                self._hub.config.secrets,
                timestamp=_header(request, TIMESTAMP_HEADER),
                sig=_header(request, SIGNATURE_HEADER),
                method=method,
                path_and_query=request.uri.decode("utf-8", "replace"),
                body=body,
                now=self._hub.clock.seconds(),
                window=self._hub.config.signature_window,
            )
        except SignatureError as exc:
            self._hub.metrics.errors.labels(kind=exc.code).inc()
            return error_response(request, 403, exc.code, "The request signature was refused.")
        # Empty segments are part of the path (one trailing slash was dropped by the root).
        parts = [p.decode("utf-8", "replace") for p in request.postpath]
        if parts == ["stats"] and method == "GET":
            return json_response(request, 200, self._stats())
        if method == "POST" and len(parts) == 3 and parts[0] == "rooms":
            if parts[2] == "events":
                return self._events(request, parts[1], body)
            if parts[2] in ROOM_ALIASES:
                fields = _body_fields(body) or {}
                return self._events_answer(
                    request, parts[1], {**fields, "type": ROOM_ALIASES[parts[2]]}
                )
        if method == "POST" and parts == ["users", "events"]:
            return self._user_events(request, body)
        if method == "POST" and len(parts) == 3 and parts[0] == "users" and parts[2] == "revoked":
            return self._user_revoked(request, parts[1], body)
        if (
            method == "POST"
            and len(parts) == 5
            and parts[0] == "rooms"
            and parts[2] == "messages"
            and parts[4] == "deleted"
        ):
            try:
                message_id = parse_decimal(parts[3])
            except ValueError:
                return error_response(request, 400, "bad_id", "The message id is not a number.")
            return self._events_answer(request, parts[1], {"type": "deleted", "id": message_id})
        if method == "POST" and len(parts) == 3 and parts[2] == "renamed":
            if parts[0] == "users" and USER_UID_RE.fullmatch(parts[1]):
                return self._renamed(request, parts[1], body)
            if parts[0] in ("users", "guests") and GUEST_UID_RE.fullmatch(parts[1]):
                return self._renamed(request, parts[1], body)
            if parts[0] in ("users", "guests"):
                return error_response(
                    request, 400, "bad_request", "Expected a user or guest uid and a name."
                )
        return error_response(request, 404, "not_found", "No such control call.")

    def _events(self, request: Any, room: str, body: bytes) -> bytes:
        """`POST /internal/rooms/<slug>/events`: one event (answered as its alias is) or a
        list of them (`{"results": [...]}`, applied in order). Every event is checked before
        any is applied: one bad event refuses the call and changes nothing."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return self._events_answer(request, room, data)
        if not isinstance(data, list) or not 1 <= len(data) <= MAX_EVENTS:
            return error_response(
                request, 400, "bad_request", f"Expected an event or a list of 1 to {MAX_EVENTS}."
            )
        try:
            for event in data:
                _check_event(event)
        except BadEvent as exc:
            return error_response(request, 400, "bad_request", str(exc))
        return json_response(request, 200, {"results": [self._apply(room, e) for e in data]})

    def _events_answer(self, request: Any, room: str, event: dict) -> bytes:
        try:
            _check_event(event)
        except BadEvent as exc:
            return error_response(request, 400, "bad_request", str(exc))
        return json_response(request, 200, self._apply(room, event))

    def _apply(self, room: str, event: dict) -> dict:
        """One checked room event, through the hub's verb for it."""
        kind = event["type"]
        if kind == "archived":
            closed = self._on_archived(room)
            log.info("room {room} archived: closed {closed}", room=room, closed=closed)
            return {"closed": closed}
        if kind == "unarchived":
            self._hub.unarchive(room)
            log.info("room {room} un-archived", room=room)
            return {"archived": False}
        if kind == "room_deleted":
            closed = self._hub.delete_room(room, event["before_ms"])
            log.info("room {room} deleted: closed {closed}", room=room, closed=closed)
            return {"closed": closed}
        if kind == "access":
            if event["scope"] == "member":
                key = member_key(room, event["uid"])
                return {"closed": self._revoke(Revocation(MEMBER, key, event["before_ms"]))}
            scope = ROOM_GUESTS if event["scope"] == "guests" else ROOM
            return {"closed": self._revoke(Revocation(scope, room, event["before_ms"]))}
        return {"notified": self._hub.announce(room, event)}

    def _revoke(self, revocation: Revocation) -> int:
        closed = self._hub.revoke(revocation)
        log.info("access revoked ({scope}): closed {closed}", scope=revocation.scope, closed=closed)
        return closed

    def _user_events(self, request: Any, body: bytes) -> bytes:
        """`POST /internal/users/events`: one `{"users", "event"}` item (answered
        `{"delivered": n}`) or a list of 1 to `MAX_EVENTS` of them (`{"results": [...]}`).
        Every item is checked before any is delivered."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        items = data if isinstance(data, list) else [data]
        if not 1 <= len(items) <= MAX_EVENTS:
            return error_response(
                request, 400, "bad_request", f"Expected an item or a list of 1 to {MAX_EVENTS}."
            )
        try:
            for item in items:
                _check_user_item(item)
        except BadEvent as exc:
            return error_response(request, 400, "bad_request", str(exc))
        results = [
            {"delivered": self._hub.notify_users(item["users"], item["event"])} for item in items
        ]
        return json_response(
            request, 200, results[0] if isinstance(data, dict) else {"results": results}
        )

    def _renamed(self, request: Any, uid: str, body: bytes) -> bytes:
        """A guest renamed itself or a user changed its display name (`uid` already checked):
        its sockets, polls and presence take the new name at once."""
        fields = _body_fields(body)
        name = fields.get("name") if fields is not None else None
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_LENGTH:
            return error_response(
                request, 400, "bad_request", "Expected a user or guest uid and a name."
            )
        return json_response(request, 200, {"renamed": self._hub.rename(uid, name)})

    def _user_revoked(self, request: Any, uid: str, body: bytes) -> bytes:
        """An identity's right to be connected ended (sign-out, deactivation, deletion)."""
        fields = _body_fields(body)
        before_ms = fields.get("before_ms") if fields is not None else None
        if not _is_millis(before_ms):
            return error_response(
                request, 400, "bad_request", "before_ms must be Unix time in milliseconds."
            )
        closed = self._revoke(Revocation(USER, uid, before_ms))
        return json_response(request, 200, {"closed": closed})


def _check_event(event: object) -> None:
    """Raise `BadEvent` unless `event` is a room event this API applies (see the module)."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadEvent("An event is an object with a string type.")
    kind = event["type"]
    if kind in ("room_deleted", "access") and not _is_millis(event.get("before_ms")):
        raise BadEvent("before_ms must be Unix time in milliseconds.")
    if kind == "access" and event.get("scope") not in ("guests", "all", "member"):
        raise BadEvent('scope is "guests", "all" or "member".')
    if kind == "access" and event["scope"] == "member":
        uid = event.get("uid")
        if not isinstance(uid, str) or not USER_UID_RE.fullmatch(uid):
            raise BadEvent('A "member" access change names the user: uid "u:<id>".')
    if kind in ROOM_ALIASES.values():
        return
    row = KINDS.get(kind)
    if row is None or not row.control:
        raise BadEvent(f"Unknown event type {kind!r}.")
    message_id = event.get("id")
    if refers_to_message(row) and (type(message_id) is not int or not 0 <= message_id <= MAX_ID):
        raise BadEvent("id must be a message id.")
    version = event.get("version")
    if row.versioned and (type(version) is not int or not 0 <= version <= MAX_ID):
        raise BadEvent("version must be a whole number.")
    missing = [field for field in row.revises if field not in event]
    if missing:
        raise BadEvent(f"A {kind} event carries {', '.join(row.revises)}.")
    quote = event.get("quote")
    if "quote" in event and not (
        row.requotes and isinstance(quote, dict) and quote.get("id") == message_id
    ):
        raise BadEvent("quote is an object about the event's message (edited, deleted).")


def _check_user_item(item: object) -> None:
    """Raise `BadEvent` unless `item` is `{"users": [user id, ...], "event": {"type": ...}}`."""
    if not isinstance(item, dict):
        raise BadEvent("An item is an object with users and event.")
    users, event = item.get("users"), item.get("event")
    if (
        not isinstance(users, list)
        or len(users) > MAX_RECIPIENTS
        or not all(type(u) is int and 1 <= u <= MAX_ID for u in users)
    ):
        raise BadEvent(f"users is a list of at most {MAX_RECIPIENTS} user ids.")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadEvent("An event is an object with a string type.")
    if not USER_EVENT_TYPE_RE.fullmatch(event["type"]) or event["type"] == "hello":
        raise BadEvent(f"Not a user event type: {event['type'][:40]!r}.")


def _body_fields(body: bytes) -> dict | None:
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return fields if isinstance(fields, dict) else None


def _is_millis(value: object) -> bool:
    """A non-negative integer no larger than JSON numbers hold exactly (2**53)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**53


def _header(request: Any, name: str) -> str | None:
    value = request.getHeader(name.encode("ascii"))
    if value is None:
        return None
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value
