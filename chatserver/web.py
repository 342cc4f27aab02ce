"""HTTP plumbing shared by every resource on the chat server's port, and the root resource.

`/ws/<slug>` (WebSocket), `/poll/<slug>` (long polling), `/healthz`, `/metrics` and
`/internal/...` (signed control API) share one twisted.web `Site`. The front door
(`chatserver/frontdoor.py`) sends a connection that opens with `GET /ws/...` straight to Autobahn;
`/ws/` stays here for an upgrade that comes later on a keep-alive HTTP connection.
"""

from __future__ import annotations

from typing import Any

import orjson
from autobahn.twisted.resource import WebSocketResource
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

from chatserver.methods import refuse_method

log = Logger()

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


class _WebSocketResource(WebSocketResource):
    """`/ws/<slug>` on the Site: GET upgrades (Autobahn reads the slug); other methods get the
    JSON 405 / OPTIONS 204 of `chatserver/methods.py` instead of Autobahn's bare refusal."""

    def render(self, request: Any) -> Any:
        refused = refuse_method(request, (b"GET",))
        if refused is not None:
            return refused
        return super().render(request)


class _WebSocketRoot(Resource):
    """`/ws/<slug>`: every child is the WebSocket resource; `/ws` itself is no resource."""

    def __init__(self, ws_resource: WebSocketResource) -> None:
        super().__init__()
        self._ws = ws_resource

    def getChild(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (twisted API)
        return self._ws

    def render(self, request: Any) -> bytes:
        return error_response(request, 404, "not_found", "No such resource.")


class _NotFound(Resource):
    """Any method on an unknown path: 404 (HEAD gets the headers only)."""

    isLeaf = True

    def render(self, request: Any) -> bytes:
        return error_response(request, 404, "not_found", "No such resource.")


class RootResource(Resource):
    """The tree of the chat server's port.

    Trailing slash rule (docs/protocol.md, "HTTP methods and paths"): one trailing slash is
    ignored on every path (`/poll/lobby/` is `/poll/lobby`, `/healthz/` is `/healthz`, as
    `/ws/lobby/` always was); any other empty segment (`/poll//lobby`, `/poll/lobby//`) is
    part of the path and answers 404.
    """

    def __init__(self, children: dict[bytes, Resource]) -> None:
        super().__init__()
        for name, child in children.items():
            self.putChild(name, child)

    def getChildWithDefault(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (twisted API)
        if path and request.postpath and request.postpath[-1] == b"":
            request.postpath.pop()
        return super().getChildWithDefault(path, request)

    def getChild(self, path: bytes, request: Any) -> Resource:  # noqa: N802 (twisted API)
        return _NotFound()

    def render(self, request: Any) -> bytes:
        return error_response(request, 404, "not_found", "No such resource.")


def cancel_pending(call: Any) -> None:
    """Cancel a delayed call (`IDelayedCall` or None) unless it already ran or was cancelled."""
    if call is not None and call.active():
        call.cancel()


class DeadlineHTTPChannel(HTTPChannel):
    """An HTTP channel that must receive each whole request within `request_timeout` seconds.

    twisted.web's own timeout is an idle timeout: every byte restarts it, so a client trickling a
    request head one byte at a time (slowloris) could hold a connection forever. The deadline runs
    from the connection (or the first byte of the next keep-alive request) until the request's
    content is complete; a WebSocket upgrade is then Autobahn's (open handshake timeout), a held
    long poll is the poll timeout's. One timer per connection, only while a request arrives.
    """

    _deadline: Any = None
    _between_requests = False

    def connectionMade(self) -> None:  # noqa: N802 (twisted API)
        super().connectionMade()
        self._arm()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (twisted API)
        if self._between_requests:
            self._between_requests = False
            self._arm()
        super().dataReceived(data)

    def allContentReceived(self) -> None:  # noqa: N802 (twisted API)
        self._disarm()
        super().allContentReceived()

    def requestDone(self, request: Any) -> None:  # noqa: N802 (twisted API)
        super().requestDone(request)
        self._between_requests = True  # the next deadline starts with the next request's bytes

    def connectionLost(self, reason: Any) -> None:  # noqa: N802 (twisted API)
        self._disarm()
        super().connectionLost(reason)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.callLater(self.site.request_timeout, self._too_slow)

    def _disarm(self) -> None:
        cancel_pending(self._deadline)
        self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.site.on_request_timeout is not None:
            self.site.on_request_timeout()
        log.info("closing a connection whose request did not arrive in time")
        if self.transport is not None:
            self.transport.abortConnection()


class ChatSite(Site):
    """The chat server's Site: plain HTTP/1.1 channels (no TLS, so no HTTP/2 negotiation
    wrapper) with a per-request deadline; only JSON bodies, so form uploads are never parsed."""

    protocol = DeadlineHTTPChannel

    def __init__(
        self,
        resource: Resource,
        *,
        reactor: Any,
        request_timeout: float,
        idle_timeout: float,
        on_request_timeout: Any = None,
    ) -> None:
        super().__init__(
            resource, reactor=reactor, timeout=idle_timeout, parsePOSTFormSubmission=False
        )
        self.request_timeout = request_timeout
        self.on_request_timeout = on_request_timeout


def build_site(
    factory: Any,
    *,
    poll: Resource | None,
    control: Resource,
    health: Resource,
    metrics: Resource | None = None,
    reactor: Any,
    request_timeout: float = 10.0,
    idle_timeout: float = 60.0,
    on_request_timeout: Any = None,
) -> ChatSite:
    """Compose the root resource and its Site (access logging off: URLs carry tickets).

    `request_timeout` bounds the arrival of each whole request (slowloris); `idle_timeout` is
    twisted.web's idle timeout for a quiet keep-alive connection.
    """
    children: dict[bytes, Resource] = {
        b"ws": _WebSocketRoot(_WebSocketResource(factory)),
        b"internal": control,
        b"healthz": health,
    }
    if metrics is not None:  # tests only: the service serves metrics on the internal listener
        children[b"metrics"] = metrics
    if poll is not None:
        children[b"poll"] = poll
    site = ChatSite(
        RootResource(children),
        reactor=reactor,
        request_timeout=request_timeout,
        idle_timeout=idle_timeout,
        on_request_timeout=on_request_timeout,
    )
    site.log = lambda request: None  # never log request lines: they contain tickets
    site.displayTracebacks = False
    return site


def build_internal_site(
    root: Resource,
    *,
    reactor: Any,
    request_timeout: float = 10.0,
    idle_timeout: float = 60.0,
) -> ChatSite:
    """The internal listener's Site (detailed health, metrics): same deadlines, no access log."""
    site = ChatSite(
        root, reactor=reactor, request_timeout=request_timeout, idle_timeout=idle_timeout
    )
    site.log = lambda request: None
    site.displayTracebacks = False
    return site
