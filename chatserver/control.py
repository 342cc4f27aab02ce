"""The signed control API Django calls (docs/protocol.md, "Control API on the chat server").

    POST /internal/rooms/<slug>/archived                -> {"closed": n}
    POST /internal/rooms/<slug>/unarchived              -> {"archived": false}
    POST /internal/rooms/<slug>/deleted                 {"before_ms"} -> {"closed": n}
    POST /internal/rooms/<slug>/access                  {"before_ms", "scope"} -> {"closed": n}
    POST /internal/users/<uid>/revoked                  {"before_ms"} -> {"closed": n}
    POST /internal/rooms/<slug>/messages/<id>/deleted   -> {"notified": n}
    GET  /internal/stats                                -> live numbers
    POST /internal/guests/<uid>/renamed  {"name": n}     -> {"renamed": n}

Unsigned, badly signed or stale calls get 403 JSON; bodies over 1 MiB get 413.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from twisted.logger import Logger
from twisted.web.resource import Resource

from chatserver.admission import parse_decimal
from chatserver.methods import refuse_method
from chatserver.revocations import ROOM, ROOM_GUESTS, USER, Revocation
from chatserver.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify_request
from chatserver.tickets import MAX_NAME_LENGTH
from chatserver.web import MAX_SIGNED_BODY, error_response, json_response, read_body

log = Logger()

GUEST_UID_RE = re.compile(r"g:[0-9a-f]{16}")


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
        if method == "POST" and len(parts) == 3 and parts[0] == "rooms" and parts[2] == "archived":
            closed = self._on_archived(parts[1])
            log.info("room {room} archived: closed {closed}", room=parts[1], closed=closed)
            return json_response(request, 200, {"closed": closed})
        if method == "POST" and len(parts) == 3 and parts[0] in ("rooms", "users"):
            return self._access_call(request, parts[0], parts[1], parts[2], body)
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
            notified = self._hub.delete(parts[1], message_id)
            return json_response(request, 200, {"notified": notified})
        if method == "POST" and len(parts) == 3 and parts[0] == "guests" and parts[2] == "renamed":
            return self._renamed(request, parts[1], body)
        return error_response(request, 404, "not_found", "No such control call.")

    def _renamed(self, request: Any, uid: str, body: bytes) -> bytes:
        """A guest renamed itself: its sockets, polls and presence take the new name at once."""
        fields = _body_fields(body)
        name = fields.get("name") if fields is not None else None
        if (
            not GUEST_UID_RE.fullmatch(uid)
            or not isinstance(name, str)
            or not 1 <= len(name) <= MAX_NAME_LENGTH
        ):
            return error_response(request, 400, "bad_request", "Expected a guest uid and a name.")
        return json_response(request, 200, {"renamed": self._hub.rename(uid, name)})

    def _access_call(self, request: Any, kind: str, key: str, verb: str, body: bytes) -> bytes:
        """The calls that change who may be connected (docs/protocol.md, "Control API")."""
        if kind == "rooms" and verb == "unarchived":
            self._hub.unarchive(key)
            log.info("room {room} un-archived", room=key)
            return json_response(request, 200, {"archived": False})
        if (kind, verb) not in (("rooms", "deleted"), ("rooms", "access"), ("users", "revoked")):
            return error_response(request, 404, "not_found", "No such control call.")
        fields = _body_fields(body)
        before_ms = fields.get("before_ms") if fields is not None else None
        if not _is_millis(before_ms):
            return error_response(
                request, 400, "bad_request", "before_ms must be Unix time in milliseconds."
            )
        if verb == "deleted":
            closed = self._hub.delete_room(key, before_ms)
            log.info("room {room} deleted: closed {closed}", room=key, closed=closed)
            return json_response(request, 200, {"closed": closed})
        if verb == "revoked":
            revocation = Revocation(USER, key, before_ms)
        else:
            scope = fields.get("scope")
            if scope not in ("guests", "all"):
                return error_response(request, 400, "bad_request", 'scope is "guests" or "all".')
            revocation = Revocation(ROOM_GUESTS if scope == "guests" else ROOM, key, before_ms)
        closed = self._hub.revoke(revocation)
        log.info("access revoked ({scope}): closed {closed}", scope=revocation.scope, closed=closed)
        return json_response(request, 200, {"closed": closed})


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
