"""HMAC signatures on service-to-service calls, exactly as docs/protocol.md describes.

``X-Chat-Timestamp`` carries the Unix time; ``X-Chat-Signature`` the hex HMAC-SHA256 over
``ts\\nMETHOD\\npath_and_query\\nbody``. :func:`internal_endpoint` guards Django's internal views.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .params import parse_decimal

TIMESTAMP_HEADER = "X-Chat-Timestamp"
SIGNATURE_HEADER = "X-Chat-Signature"
MAX_BODY_BYTES = 1024 * 1024

log = logging.getLogger(__name__)


class SignatureError(Exception):
    """A signed call was refused; ``code`` is ``bad_signature`` or ``stale_request``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def compute_signature(secret: str, ts: str, method: str, path_and_query: str, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``ts\\nMETHOD\\npath_and_query\\nbody`` with ``secret``."""
    message = f"{ts}\n{method.upper()}\n{path_and_query}\n".encode() + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(
    method: str,
    path_and_query: str,
    body: bytes = b"",
    secret: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """The two headers that sign a request; signs with CHAT_SHARED_SECRET by default."""
    ts = str(int(time.time() if now is None else now))
    key = settings.CHAT_SHARED_SECRET if secret is None else secret
    return {
        TIMESTAMP_HEADER: ts,
        SIGNATURE_HEADER: compute_signature(key, ts, method, path_and_query, body),
    }


def accepted_secrets() -> list[str]:
    """The current secret and, during a rotation, the previous one."""
    return [s for s in (settings.CHAT_SHARED_SECRET, settings.CHAT_PREVIOUS_SHARED_SECRET) if s]


def verify_signature(
    ts: str | None,
    signature: str | None,
    method: str,
    path_and_query: str,
    body: bytes,
    secrets: Iterable[str],
    window: int,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless the headers sign this request with a known secret."""
    if not ts or not signature:
        raise SignatureError("bad_signature", "Missing signature headers.")
    try:
        ts_value = parse_decimal(ts)  # chat/params.py: `isdigit()` also passes "١٢"
    except ValueError:
        raise SignatureError("bad_signature", "Malformed timestamp.") from None
    matched = False
    for secret in secrets:
        expected = compute_signature(secret, ts, method, path_and_query, body)
        # Compare every secret so timing does not reveal which one matched.
        if hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
            matched = True
    if not matched:
        raise SignatureError("bad_signature", "The signature does not match.")
    current = time.time() if now is None else now
    if abs(current - ts_value) > window:
        raise SignatureError("stale_request", "The timestamp is outside the accepted window.")


def error_response(status: int, code: str, message: str) -> JsonResponse:
    """The protocol's error body."""
    return JsonResponse({"error": code, "message": message}, status=status)


def internal_endpoint(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Guard a view called only by the chat server.

    ``csrf_exempt`` is safe here because the HMAC replaces the CSRF check and the view never reads
    cookies, the session or ``request.user``.
    """

    @csrf_exempt
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "Malformed Content-Length.")
        # Refuse before reading, so a huge body is never buffered.
        if length > MAX_BODY_BYTES:
            return error_response(413, "payload_too_large", "Bodies are limited to 1 MiB.")
        try:
            verify_signature(
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                request.method or "GET",
                request.get_full_path(),
                request.body,
                accepted_secrets(),
                settings.CHAT_SIGNATURE_WINDOW,
            )
        except SignatureError as exc:
            log.warning("refused internal call to %s: %s", request.path, exc.code)
            return error_response(403, exc.code, exc.message)
        return view(request, *args, **kwargs)

    return wrapper
