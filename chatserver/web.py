"""HTTP plumbing shared by every resource on the chat server's port, and the root resource.

`/ws/<slug>` (WebSocket), `/poll/<slug>` (long polling), `/healthz`, `/metrics` and
`/internal/...` (signed control API) share one twisted.web `Site`. The front door
(`chatserver/frontdoor.py`) sends a connection that opens with `GET /ws/...` straight to Autobahn;
`/ws/` stays here for an upgrade that comes later on a keep-alive HTTP connection.

Request bodies are bounded before they are buffered: `DeadlineHTTPChannel` refuses a request
whose `Content-Length` is over its path's limit (`body_limit`: 1 MiB for the signed control API,
`CHAT_MAX_PAYLOAD` elsewhere) as soon as its head is read, and a body (chunked or not) as soon as
the running count passes the limit: 413 JSON and the connection is closed, so the request's
content buffer never holds more than the limit. Heads are capped by twisted.web's own limits,
set to the front door's (`CHAT_MAX_HEAD_BYTES`, `CHAT_MAX_HEAD_LINES`).
"""

from __future__ import annotations

from typing import Any

import orjson
from autobahn.twisted.resource import WebSocketResource
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from chatserver.logthrottle import LogThrottle
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


def body_limit(path: bytes, max_payload: int) -> int:
    """The largest request body, in bytes, accepted for a request target (`path` as sent)."""
    if path.startswith(b"/internal/"):
        return MAX_SIGNED_BODY
    return max_payload


def _too_large_response(limit: int) -> bytes:
    body = orjson.dumps(
        {"error": "too_large", "message": f"The request body is over {limit} bytes."}
    )
    return (
        b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nCache-Control: no-store\r\n"
        b"Content-Length: " + str(len(body)).encode("ascii") + b"\r\n\r\n" + body
    )


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


class LimitedRequest(Request):
    """A request whose body stops at `body_limit` bytes: past it the channel refuses it (413)."""

    body_limit: int | None = None
    _received = 0

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 (twisted API)
        channel = self.channel
        if channel is None or channel.body_refused:
            return
        self._received += len(data)
        if self.body_limit is not None and self._received > self.body_limit:
            channel.refuse_body(self.body_limit)
            return
        super().handleContentChunk(data)


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
    body_refused = False

    def connectionMade(self) -> None:  # noqa: N802 (twisted API)
        super().connectionMade()
        self._arm()

    def dataReceived(self, data: bytes) -> None:  # noqa: N802 (twisted API)
        if self.body_refused:
            return  # refused with 413: nothing more is read
        if self._between_requests:
            self._between_requests = False
            self._arm()
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:  # noqa: N802 (twisted API)
        """Refuse a declared body over the path's limit before any of it is buffered."""
        limit = body_limit(self._path, self.site.max_payload)
        if self.length is not None and self.length > limit:
            self.refuse_body(limit)
            return
        self.requests[-1].body_limit = limit
        super().allHeadersReceived()

    def rawDataReceived(self, data: bytes) -> None:  # noqa: N802 (twisted API)
        if self.body_refused:
            return
        super().rawDataReceived(data)

    def allContentReceived(self) -> None:  # noqa: N802 (twisted API)
        if self.body_refused:
            return
        self._disarm()
        super().allContentReceived()

    def refuse_body(self, limit: int) -> None:
        """Answer 413 and close: the body is over `limit` bytes (declared or counted)."""
        if self.body_refused:
            return
        self.body_refused = True
        self._disarm()
        self.site.log_throttle.emit(
            log, "body_refused", "refusing a request body over {limit} bytes", limit=limit
        )
        if self.transport is not None:
            self.transport.write(_too_large_response(limit))
            self.loseConnection()

    def requestDone(self, request: Any) -> None:  # noqa: N802 (twisted API)
        super().requestDone(request)
        self._between_requests = True  # the next deadline starts with the next request's bytes

    def connectionLost(self, reason: Any) -> None:  # noqa: N802 (twisted API)
        self._disarm()
        super().connectionLost(reason)

    def timeoutConnection(self) -> None:  # noqa: N802 (twisted API)
        """twisted.web's idle timeout, with its per-connection log line throttled (as in
        `HTTPChannel.timeoutConnection`: close now, abort after `abortTimeout`)."""
        self.site.log_throttle.emit(log, "idle_timeout", "closing an idle HTTP connection")
        if self.abortTimeout is not None:
            self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

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
        self.site.log_throttle.emit(
            log, "slow_request", "closing a connection whose request did not arrive in time"
        )
        if self.transport is not None:
            self.transport.abortConnection()


class ChatSite(Site):
    """The chat server's Site: plain HTTP/1.1 channels (no TLS, so no HTTP/2 negotiation
    wrapper) with a per-request deadline; only JSON bodies, so form uploads are never parsed."""

    protocol = DeadlineHTTPChannel
    requestFactory = LimitedRequest

    def __init__(
        self,
        resource: Resource,
        *,
        reactor: Any,
        request_timeout: float,
        idle_timeout: float,
        on_request_timeout: Any = None,
        max_payload: int = 65536,
        max_head_bytes: int = 16 * 1024,
        max_head_lines: int = 100,
        log_throttle: LogThrottle | None = None,
    ) -> None:
        super().__init__(
            resource, reactor=reactor, timeout=idle_timeout, parsePOSTFormSubmission=False
        )
        self.request_timeout = request_timeout
        self.on_request_timeout = on_request_timeout
        self.max_payload = max_payload
        self.max_head_bytes = max_head_bytes
        self.max_head_lines = max_head_lines
        self.log_throttle = log_throttle if log_throttle is not None else LogThrottle(reactor)

    def buildProtocol(self, addr: Any) -> Any:  # noqa: N802 (twisted API)
        """A channel with twisted.web's head limits set to the front door's."""
        channel = super().buildProtocol(addr)
        channel.totalHeadersSize = self.max_head_bytes
        channel.MAX_LENGTH = self.max_head_bytes
        channel.maxHeaders = self.max_head_lines
        return channel


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
    max_payload: int = 65536,
    max_head_bytes: int = 16 * 1024,
    max_head_lines: int = 100,
    log_throttle: LogThrottle | None = None,
) -> ChatSite:
    """Compose the root resource and its Site (access logging off: URLs carry tickets).

    `request_timeout` bounds the arrival of each whole request (slowloris); `idle_timeout` is
    twisted.web's idle timeout for a quiet keep-alive connection; `max_payload` the body limit
    outside the control API; `max_head_*` the head caps; `log_throttle` bounds the log lines
    that unauthenticated clients cause.
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
        max_payload=max_payload,
        max_head_bytes=max_head_bytes,
        max_head_lines=max_head_lines,
        log_throttle=log_throttle,
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
