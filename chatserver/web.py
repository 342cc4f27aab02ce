"""HTTP plumbing shared by every resource on the chat server's port, and the root resource.

`/ws/<slug>` (WebSocket), `/poll/<slug>` (long polling), `/healthz`, `/metrics` and
`/internal/...` (signed control API) share one twisted.web `Site`.
"""

from __future__ import annotations

from typing import Any

import orjson
from autobahn.twisted.resource import WebSocketResource
from twisted.web.resource import Resource
from twisted.web.server import Site

MAX_SIGNED_BODY = 1024 * 1024


def json_response(request: Any, status: int, payload: object) -> bytes:
    """Set status and JSON content type; return the encoded body."""
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    return orjson.dumps(payload)


def error_response(request: Any, status: int, code: str, message: str) -> bytes:
    """An error body in the contract's shape: `{"error", "message"}`."""
    return json_response(request, status, {"error": code, "message": message})


def read_body(request: Any, limit: int) -> bytes | None:
    """The raw request body, or None when it is over `limit` bytes."""
    length = request.getHeader(b"content-length")
    if length is not None:
        try:
            if int(length) > limit:
                return None
        except ValueError:
            return None
    request.content.seek(0)
    body = request.content.read(limit + 1)
    if len(body) > limit:
        return None
    return body


class _WebSocketRoot(Resource):
    """`/ws/<slug>`: every child is the WebSocket resource (the protocol reads the slug)."""

    def __init__(self, ws_resource: WebSocketResource) -> None:
        super().__init__()
        self._ws = ws_resource

    def getChild(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (twisted API)
        return self._ws


class _NotFound(Resource):
    isLeaf = True

    def render(self, request: Any) -> bytes:
        return error_response(request, 404, "not_found", "No such resource.")


class RootResource(Resource):
    """The tree of the chat server's port."""

    def __init__(self, children: dict[bytes, Resource]) -> None:
        super().__init__()
        for name, child in children.items():
            self.putChild(name, child)

    def getChild(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (twisted API)
        return _NotFound()

    def render(self, request: Any) -> bytes:
        return error_response(request, 404, "not_found", "No such resource.")


def build_site(
    factory: Any,
    *,
    poll: Resource | None,
    control: Resource,
    health: Resource,
    metrics: Resource,
    reactor: Any,
) -> Site:
    """Compose the root resource and its Site (access logging off: URLs carry tickets)."""
    children: dict[bytes, Resource] = {
        b"ws": _WebSocketRoot(WebSocketResource(factory)),
        b"internal": control,
        b"healthz": health,
        b"metrics": metrics,
    }
    if poll is not None:
        children[b"poll"] = poll
    site = Site(RootResource(children), reactor=reactor)
    site.log = lambda request: None  # never log request lines: they contain tickets
    site.displayTracebacks = False
    return site
