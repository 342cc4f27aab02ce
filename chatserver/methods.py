"""One answer for every HTTP method on every chat-server path (docs/protocol.md, "HTTP methods
and paths").

twisted.web answers a method a resource has no `render_<METHOD>` for with an HTML 405, and runs
`render_GET` for HEAD when there is no `render_HEAD`: a `HEAD /poll/<room>` used to join the room's
presence and be held like a GET. Each resource here names its methods; every other method gets a
JSON 405 with an `Allow` header before any of the resource's code runs, OPTIONS gets 204 with
`Allow` (or the resource's own answer, e.g. the CORS preflight of `/poll/`), and HEAD is allowed
only where GET has no side effect (then twisted.web runs GET and drops the body).
"""

from __future__ import annotations

from typing import Any

import orjson
from twisted.web.resource import Resource


def allow_header(methods: tuple[bytes, ...]) -> bytes:
    """The `Allow` value for a resource's methods (OPTIONS is always answered)."""
    listed = list(methods)
    if b"OPTIONS" not in listed:
        listed.append(b"OPTIONS")
    return b", ".join(listed)


def refuse_method(request: Any, methods: tuple[bytes, ...]) -> bytes | None:
    """The answer for a method outside `methods` (405, or 204 for OPTIONS), else None.

    `methods` lists what the resource serves besides OPTIONS; a resource with its own
    `render_OPTIONS` lists `b"OPTIONS"` in it to keep that answer.
    """
    method = request.method
    if method in methods:
        return None
    request.setHeader(b"Allow", allow_header(methods))
    if method == b"OPTIONS":
        request.setResponseCode(204)
        return b""
    request.setResponseCode(405)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    message = "Allowed: " + allow_header(methods).decode("ascii") + "."
    return orjson.dumps({"error": "method_not_allowed", "message": message})


class MethodsResource(Resource):
    """A resource that serves only `methods`; everything else is refused by `refuse_method`."""

    methods: tuple[bytes, ...] = (b"GET", b"HEAD")
    # A leaf that reads no path below itself answers 404 for `/healthz/x` or `/healthz//`.
    subpaths = False

    def render(self, request: Any) -> Any:
        """Refuse a path below a leaf that takes none, then an undocumented method, before the
        resource's own code runs."""
        if self.isLeaf and not self.subpaths and request.postpath:
            request.setResponseCode(404)
            request.setHeader(b"Content-Type", b"application/json")
            request.setHeader(b"Cache-Control", b"no-store")
            return orjson.dumps({"error": "not_found", "message": "No such resource."})
        refused = refuse_method(request, self.methods)
        if refused is not None:
            return refused
        return super().render(request)
