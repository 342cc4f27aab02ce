"""A lean WSGI path for the chat server's busiest internal call, ``POST .../messages/batch/``.

At a steady trickle of chat messages the chat server's group commit sends Django batches of one
or two messages, so Django's per-request work, not the storing, is most of its CPU per message
(docs/performance.md, "Django's CPU per stored message": Django's handler, the middleware chain,
URL resolving, the request/response objects and the request signals). This WSGI application sits
in front of Django's own (``django_twisted_chat/wsgi.py``) and answers that one URL itself with
exactly the checks of the view (``chat.internal_api.message_batch`` under
``chat.signing.internal_endpoint``): the 1 MiB body cap, the HMAC signature and its time window
over the same ``ts\\nMETHOD\\npath_and_query\\nbody``, the JSON shape and the 1,000-item cap, then
the same ``store_batch``. It never reads cookies, a session or a user, which is why skipping the
session, CSRF, auth and message middleware changes nothing for it. Every other request, and any
method other than POST on that URL (Django answers 405), goes to Django unchanged.

Database connections are handled as Django's handler does: ``request_started`` and
``request_finished`` are sent around each request (their ``close_old_connections`` keeps a
connection for ``CONN_MAX_AGE`` and drops a broken one). An
exception while storing is logged and answered 500 with the protocol's error body, as Django and
``chat.middleware.JsonErrorsMiddleware`` would answer it, so the chat server's bisection on 5xx
behaves the same.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from django.conf import settings
from django.core import signals
from django.urls import reverse
from django.utils.encoding import escape_uri_path, iri_to_uri

from .internal_api import MAX_BATCH_ITEMS, store_batch
from .signing import (
    MAX_BODY_BYTES,
    SignatureError,
    accepted_secrets,
    verify_signature,
)

log = logging.getLogger("chat.signing")  # the refusals log where the view's decorator logs them
error_log = logging.getLogger("django.request")  # where Django logs a 500

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

STATUS_TEXT = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    413: "413 Payload Too Large",
    500: "500 Internal Server Error",
}


def _answer(
    start_response: StartResponse, status: int, payload: Any, fast: bool = True
) -> list[bytes]:
    # orjson only for what orjson parsed: a body only the standard library reads (NaN, integers
    # past 64 bits, unpaired surrogates) may be echoed in an item's error, and only the standard
    # library writes those back as the view would.
    body = orjson.dumps(payload) if fast else json.dumps(payload).encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        # What Django's SecurityMiddleware and XFrameOptionsMiddleware add to the view's answer.
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Cache-Control", "no-store"),
    ]
    start_response(STATUS_TEXT[status], headers)
    return [body]


def _error(start_response: StartResponse, status: int, code: str, message: str) -> list[bytes]:
    return _answer(start_response, status, {"error": code, "message": message})


def _read_body(environ: dict[str, Any], length: int) -> bytes:
    stream = environ["wsgi.input"]
    chunks, left = [], length
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class InternalFastPath:
    """WSGI middleware: ``POST <batch URL>`` answered here, everything else by ``app``.

    ``app`` is Django's WSGI handler; the batch URL is found by reversing
    ``chat:internal_batch`` once, on the first request (the URLconf is loaded by then).
    """

    def __init__(self, app: WSGIApp) -> None:
        self.app = app
        self._path: str | None = None

    def batch_path(self) -> str:
        """The batch URL's path as the chat server signs it (script prefix included)."""
        if self._path is None:
            self._path = reverse("chat:internal_batch")
        return self._path

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if path != self.batch_path():
            return self.app(environ, start_response)
        # Django's handler sends these around every request; their receivers keep database
        # connections healthy (close_old_connections) and reset per-request state.
        signals.request_started.send(sender=self.__class__, environ=environ)
        try:
            return self._batch(environ, start_response, path)
        finally:
            signals.request_finished.send(sender=self.__class__)

    def _batch(
        self, environ: dict[str, Any], start_response: StartResponse, path: str
    ) -> list[bytes]:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(start_response, 400, "bad_request", "Malformed Content-Length.")
        # Refuse before reading, so a huge body is never buffered.
        if length > MAX_BODY_BYTES:
            return _error(start_response, 413, "payload_too_large", "Bodies are limited to 1 MiB.")
        body = _read_body(environ, length)
        full_path = escape_uri_path(path)
        query = environ.get("QUERY_STRING", "")
        if query:
            full_path += "?" + iri_to_uri(query)
        try:
            verify_signature(
                environ.get("HTTP_X_CHAT_TIMESTAMP"),
                environ.get("HTTP_X_CHAT_SIGNATURE"),
                "POST",
                full_path,
                body,
                accepted_secrets(),
                settings.CHAT_SIGNATURE_WINDOW,
            )
        except SignatureError as exc:
            log.warning("refused internal call to %s: %s", path, exc.code)
            return _error(start_response, 403, exc.code, exc.message)
        fast = True
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            # orjson is stricter than the view's json.loads (NaN, huge integers, unpaired
            # surrogates): what the standard library reads is answered as the view answers it.
            fast = False
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return _error(start_response, 400, "bad_json", "The body is not JSON.")
        items = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return _error(
                start_response, 400, "bad_request", "Expected an object with a `messages` list."
            )
        if len(items) > MAX_BATCH_ITEMS:
            return _error(
                start_response, 400, "batch_too_large", f"At most {MAX_BATCH_ITEMS} messages."
            )
        try:
            results = store_batch(items)
        except Exception:
            error_log.exception("Internal Server Error: %s", path)
            return _error(
                start_response, 500, "server_error", "The server failed; try again later."
            )
        return _answer(start_response, 200, {"results": results}, fast)
