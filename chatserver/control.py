"""The signed control API Django calls (docs/protocol.md, "Control API on the chat server").

    POST /internal/rooms/<slug>/archived                -> {"closed": n}
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

from chatserver.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, verify_request
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
            )
        except SignatureError as exc:
            self._hub.metrics.errors.labels(kind=exc.code).inc()
            return error_response(request, 403, exc.code, "The request signature was refused.")
        parts = [p.decode("utf-8", "replace") for p in request.postpath if p]
        if parts == ["stats"] and method == "GET":
            return json_response(request, 200, self._stats())
        if method == "POST" and len(parts) == 3 and parts[0] == "rooms" and parts[2] == "archived":
            closed = self._on_archived(parts[1])
            log.info("room {room} archived: closed {closed}", room=parts[1], closed=closed)
            return json_response(request, 200, {"closed": closed})
        if (
            method == "POST"
            and len(parts) == 5
            and parts[0] == "rooms"
            and parts[2] == "messages"
            and parts[4] == "deleted"
        ):
            try:
                message_id = int(parts[3])
            except ValueError:
                return error_response(request, 400, "bad_id", "The message id is not a number.")
            notified = self._hub.delete(parts[1], message_id)
            return json_response(request, 200, {"notified": notified})
        if method == "POST" and len(parts) == 3 and parts[0] == "guests" and parts[2] == "renamed":
            return self._renamed(request, parts[1], body)
        return error_response(request, 404, "not_found", "No such control call.")

    def _renamed(self, request: Any, uid: str, body: bytes) -> bytes:
        """A guest renamed itself: its sockets, polls and presence take the new name at once."""
        try:
            name = orjson.loads(body).get("name")
        except (orjson.JSONDecodeError, AttributeError):
            name = None
        if not GUEST_UID_RE.fullmatch(uid) or not isinstance(name, str) or not 1 <= len(name) <= 64:
            return error_response(request, 400, "bad_request", "Expected a guest uid and a name.")
        return json_response(request, 200, {"renamed": self._hub.rename(uid, name)})


def _header(request: Any, name: str) -> str | None:
    value = request.getHeader(name.encode("ascii"))
    if value is None:
        return None
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value
