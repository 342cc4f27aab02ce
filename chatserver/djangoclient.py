"""The only module that calls Django: its signed internal API (docs/protocol.md), through treq.

Every request is signed with `signing.signed_headers` and has a timeout. The HTTP client is
injected (a `treq.client.HTTPClient` over a persistent connection pool in production,
`treq.testing.StubTreq` in tests).

Failures come in two kinds, so that a caller can tell "Django is not there" from "Django
failed this request": `DjangoUnreachable` (no answer: connection refused or reset, timeout) and
`DjangoRefused` (Django answered with a status other than 200, or with a body that breaks the
contract, or the request could not even be encoded as JSON). Both are `DjangoError`s. The
persistence queue retries the first kind as an outage and bisects a batch on the second kind to
find the item Django cannot take (`chatserver.persistence`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import orjson
from hyperlink import EncodedURL
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.config import DJANGO_PAGE_MAX
from chatserver.signing import signed_headers

log = Logger()


class DjangoError(Exception):
    """Django did not answer as the contract says (status, body, or connection)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DjangoUnreachable(DjangoError):
    """No answer from Django: connection refused or reset, or the request timed out."""


class DjangoRefused(DjangoError):
    """Django answered but not with the contract's 200 JSON object (`status` says what it
    answered; 200 when the body broke the contract), or the request could not be encoded:
    something in this very request may be at fault."""


class UnknownRoom(DjangoRefused):
    """Django answered 404 for a room."""


def make_http_client(reactor: Any) -> Any:
    """A treq client over a persistent connection pool (keep-alive towards Django)."""
    from treq.client import HTTPClient
    from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory

    class QuietFactory(_HTTP11ClientFactory):
        # Twisted logs "Starting/Stopping factory" for every new connection to Django; public
        # requests (/healthz) can cause one each, so these lines would be theirs to flood.
        noisy = False

    pool = HTTPConnectionPool(reactor, persistent=True)
    pool._factory = QuietFactory
    pool.maxPersistentPerHost = 8
    pool.cachedConnectionTimeout = 60
    return HTTPClient(Agent(reactor, pool=pool))


BATCH_PATH = "/internal/messages/batch/"


class _PreparedURL(EncodedURL):
    """A URL converted to its URI form once, for a request made over and over.

    treq calls `to_uri()` on every request's URL, and hyperlink's `to_uri` IDNA-encodes each
    host label every time: about 40 µs of CPU, a third of treq's own cost per request, paid
    per stored batch (docs/performance.md). A URI's URI is itself, so this one returns itself.
    """

    def to_uri(self, *args: Any, **kwargs: Any) -> _PreparedURL:  # noqa: ARG002 (same API)
        return self

    @classmethod
    def of(cls, url: str) -> _PreparedURL:
        """`url` (text, any host) in its URI form, prepared."""
        return cls.from_text(EncodedURL.from_text(url).to_uri().to_text())


class DjangoClient:
    """Signed calls to Django's internal API."""

    def __init__(
        self,
        base_url: str,
        secret: str,
        http_client: Any,
        clock: IReactorTime,
        timeout: float = 10.0,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # The request target that gets signed includes any path prefix of the base URL.
        self._prefix = urlsplit(self._base_url).path.rstrip("/")
        self._secret = secret
        self._http = http_client
        self._clock = clock
        self._timeout = timeout
        # The hot path (one request per stored batch) gets its URL prepared once.
        self._prepared = {BATCH_PATH: _PreparedURL.of(self._base_url + BATCH_PATH)}

    @inlineCallbacks
    def _call(self, method: str, path_and_query: str, payload: object | None = None):
        try:
            body = b"" if payload is None else orjson.dumps(payload)
        except TypeError as exc:  # orjson.JSONEncodeError: e.g. a lone surrogate in a string
            raise DjangoRefused(f"the request cannot be encoded as JSON: {exc}") from None
        target = self._prefix + path_and_query
        headers = signed_headers(self._secret, method, target, body, self._clock.seconds())
        headers["Accept"] = "application/json"
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = yield self._http.request(
                method,
                self._prepared.get(path_and_query) or self._base_url + path_and_query,
                headers=headers,
                data=body if payload is not None else None,
                timeout=self._timeout,
            )
            raw = yield response.content()
        except Exception as exc:  # connection refused, timeout, reset: all mean "not now"
            where = path_and_query.split("?")[0]
            raise DjangoUnreachable(f"{method} {where} failed: {exc!r}") from exc
        status = response.code
        if status == 404:
            raise UnknownRoom("unknown room", status=404)
        if status != 200:
            raise DjangoRefused(f"{method} {path_and_query.split('?')[0]} -> {status}", status)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise DjangoRefused("Django answered with a body that is not JSON", status) from None
        if not isinstance(data, dict):
            raise DjangoRefused("Django answered with JSON that is not an object", status)
        return data

    def persist_batch(self, items: list[dict]) -> Deferred:
        """Store a batch; fires with the `results` list (one per item, same order).

        Errbacks with `DjangoUnreachable` when Django did not answer and with `DjangoRefused`
        when it answered anything but one result per item (a 5xx, a 413, a broken answer), or
        when an item cannot be encoded as JSON.
        """
        d = self._call("POST", BATCH_PATH, {"messages": items})

        def results(data: dict) -> list[dict]:
            found = data.get("results")
            if not isinstance(found, list) or len(found) != len(items):
                raise DjangoRefused("batch answer does not hold one result per item", 200)
            return found

        return d.addCallback(results)

    def _messages(self, room: str, params: dict) -> Deferred:
        query = urlencode(params)
        d = self._call("GET", f"/internal/rooms/{quote(room, safe='')}/messages/?{query}")

        def page(data: dict) -> tuple[list[dict], bool]:
            messages = data.get("messages")
            if not isinstance(messages, list):
                raise DjangoError("messages answer has no messages list")
            return messages, bool(data.get("has_more"))

        return d.addCallback(page)

    def messages_after(self, room: str, after: int, limit: int = DJANGO_PAGE_MAX) -> Deferred:
        """Fires with (messages, has_more): the oldest `limit` messages with id > `after`."""
        return self._messages(room, {"after": after, "limit": limit})

    def latest_messages(self, room: str, limit: int) -> Deferred:
        """Fires with (messages, has_more): the newest `limit` messages, oldest first."""
        return self._messages(room, {"limit": limit})

    def room_detail(self, room: str) -> Deferred:
        """Fires with the room's `GET /internal/rooms/<slug>/` object (UnknownRoom on 404)."""
        return self._call("GET", f"/internal/rooms/{quote(room, safe='')}/")

    def health(self) -> Deferred:
        """Fires with True when Django's internal health endpoint answers ok, False otherwise."""
        d = self._call("GET", "/internal/health/")
        d.addCallback(lambda data: data.get("status") == "ok")
        d.addErrback(lambda _failure: False)
        return d
