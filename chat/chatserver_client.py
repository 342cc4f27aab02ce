"""The HTTP client of the chat server's control API (docs/protocol.md, "Control API").

Only `chat.actions` calls it (after commit). Every call is signed, uses a short timeout
(CHAT_CONTROL_TIMEOUT) and never raises: when the chat server is down the admin carries on, so
failures are logged and answered with None.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings

from .signing import signed_headers

log = logging.getLogger(__name__)


def _call(method: str, path: str, payload: Any = None) -> dict[str, Any] | None:
    base = settings.CHAT_INTERNAL_URL.rstrip("/")
    # The signature covers the request target as sent, including any prefix of the base URL.
    target = urlsplit(base).path + path
    body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
    headers = signed_headers(method, target, body)
    if method == "POST":
        headers["Content-Type"] = "application/json"
    try:
        response = requests.request(
            method, base + path, data=body, headers=headers, timeout=settings.CHAT_CONTROL_TIMEOUT
        )
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("chat server control call %s %s failed: %s", method, path, type(exc).__name__)
        return None
    if not isinstance(data, dict):
        log.warning("chat server control call %s %s answered a non-object", method, path)
        return None
    return data


def room_event(slug: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """Tell the chat server about one room event: ``POST /internal/rooms/<slug>/events``.

    ``event`` is ``{"type": ...}``: a room state change (``archived``, ``unarchived``,
    ``room_deleted`` with ``before_ms``, ``access`` with ``before_ms`` and ``scope``) or a frame
    for the room's members (``{"type": "deleted", "id": 812}``); docs/protocol.md, "Control API
    on the chat server". Answers the chat server's JSON (``{"closed": n}``, ``{"notified": n}``,
    ...), or None when it does not answer.
    """
    return _call("POST", f"/internal/rooms/{quote(slug, safe='')}/events", event)


def user_revoked(uid: str, before_ms: int) -> dict[str, Any] | None:
    """Tell the chat server an identity's right to be connected ended (signed out, deactivated,
    deleted): its tickets minted at or before ``before_ms`` are refused, its connections
    closed (4003)."""
    path = f"/internal/users/{quote(uid, safe=':')}/revoked"
    return _call("POST", path, {"before_ms": int(before_ms)})


def stats() -> dict[str, Any] | None:
    """Live numbers from the chat server, or None when it does not answer."""
    return _call("GET", "/internal/stats")


def renamed(uid: str, name: str) -> dict[str, Any] | None:
    """Tell the chat server identity ``uid`` (a guest ``g:<hex>`` or a user ``u:<pk>``) is now
    called ``name``: its open tabs and its presence switch at once.

    ``POST /internal/users/<uid>/renamed`` with ``{"name": name}`` (docs/protocol.md, control
    API); answers ``{"renamed": <sockets>}``, or None when the chat server does not answer.
    """
    return _call("POST", f"/internal/users/{quote(uid, safe=':')}/renamed", {"name": name})


def user_events(items: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Deliver feed events: ``POST /internal/users/events`` with a list of
    ``{"users": [user id, ...], "event": {...}}`` (docs/protocol.md, "Personal feed"); answers
    ``{"results": [{"delivered": n}, ...]}``, or None when the chat server does not answer."""
    return _call("POST", "/internal/users/events", items)
