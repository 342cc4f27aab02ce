"""Signed service-to-service calls (docs/protocol.md, "Signed service-to-service calls").

    X-Chat-Signature = hex HMAC-SHA256(secret,
                                       ts + "\\n" + METHOD + "\\n" + path_and_query + "\\n" + body)

Used both to sign calls to Django and to check Django's calls to the control API.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from chatserver.admission import parse_decimal

TIMESTAMP_HEADER = "X-Chat-Timestamp"
SIGNATURE_HEADER = "X-Chat-Signature"
WINDOW_SECONDS = 60


class SignatureError(Exception):
    """A signed request was refused; `code` is `bad_signature` or `stale_request`."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def signature(secret: str, timestamp: str, method: str, path_and_query: str, body: bytes) -> str:
    """Hex signature of one request."""
    message = b"\n".join(
        [
            timestamp.encode("ascii"),
            method.upper().encode("ascii"),
            path_and_query.encode("utf-8"),
            body,
        ]
    )
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(
    secret: str, method: str, path_and_query: str, body: bytes, now: float
) -> dict[str, str]:
    """The two headers that sign a request sent at `now`."""
    timestamp = str(int(now))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, method, path_and_query, body),
    }


def verify_request(
    secrets: Iterable[str],
    *,
    timestamp: str | None,
    sig: str | None,
    method: str,
    path_and_query: str,
    body: bytes,
    now: float,
    window: float = WINDOW_SECONDS,
) -> None:
    """Raise `SignatureError` unless the headers sign this request with an accepted secret."""
    if not timestamp or not sig:
        raise SignatureError("bad_signature")
    try:
        ts_value = parse_decimal(timestamp)
    except ValueError:
        raise SignatureError("bad_signature") from None
    matched = False
    for secret in secrets:
        expected = signature(secret, timestamp, method, path_and_query, body)
        matched |= hmac.compare_digest(expected.encode("ascii"), sig.encode("utf-8", "replace"))
    if not matched:
        raise SignatureError("bad_signature")
    if abs(now - ts_value) > window:
        raise SignatureError("stale_request")
