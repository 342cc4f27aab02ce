"""Admission helpers shared by the transports: the strict number rule, the Origin check, CORS.

One rule for every number a client or a peer puts in a URL (docs/protocol.md, "Numbers in
URLs"): ASCII digits only, at most `MAX_ID` (2**53 - 1, the largest integer a JavaScript client
holds exactly; Django applies the same rule in `chat/params.py`). Python's `int()` is not that
rule: it also accepts `" 12"`, `"+12"`, `"1_000"` and non-ASCII digits such as `"١٢"`, and has no
bound, so a `since` of 19 digits used to reach Django, which refused it, and the client was told
to retry forever.
"""

from __future__ import annotations

import re
from typing import Any

MAX_ID = 2**53 - 1
_DIGITS = frozenset(b"0123456789")


def parse_decimal(raw: str | bytes, maximum: int = MAX_ID) -> int:
    """`raw` (ASCII digits only, 1 to 16 of them) as an int in `[0, maximum]`.

    Raises ValueError for anything else: empty, signs, white space, underscores, non-ASCII
    digits, or a value over `maximum`.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if not data or len(data) > len(str(maximum)) or not _DIGITS.issuperset(data):
        raise ValueError("not a decimal number in range")
    value = int(data)
    if value > maximum:
        raise ValueError("not a decimal number in range")
    return value


def parse_since(raw: str | bytes | None) -> int | None:
    """The `since` query parameter: None when absent or empty, else `parse_decimal(raw)`.

    ValueError when present and not a number in range (answered 400 `bad_since` on both
    transports).
    """
    if raw is None or raw in ("", b""):
        return None
    return parse_decimal(raw)


_EVENT_CURSOR = re.compile(r"([0-9a-f]{1,16})\.([0-9]{1,15})")


def parse_event_cursor(raw: str | bytes | None) -> tuple[str, int] | None:
    """The long poll's `event_cursor` query parameter (an answer's `event_cursor` handed back:
    `<1-16 lowercase hex>.<1-15 ASCII digits>`) as (epoch, number); None when absent or empty.

    ValueError for anything else (answered 400 `bad_event_cursor`).
    """
    if raw is None or raw in ("", b""):
        return None
    text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else raw
    match = _EVENT_CURSOR.fullmatch(text)
    if match is None:
        raise ValueError("not an event cursor")
    return match.group(1), int(match.group(2))


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """No Origin (a non-browser client) passes; a browser Origin must be in the allowlist.

    The opaque origin `null` (sandboxed frames, `file:` pages, some redirects) is a browser
    Origin that is never in the allowlist.
    """
    if not origin:
        return True
    return origin.rstrip("/") in allowed


def cors_allowed(request: Any, allowed: tuple[str, ...]) -> bool:
    """Set the CORS headers of a long-poll answer; False when a browser Origin is not allowed
    (answered 403 `bad_origin` by the caller)."""
    request.setHeader(b"Vary", b"Origin")
    origin = request.getHeader(b"origin")
    origin_text = origin.decode("ascii", "replace") if origin else None
    if not origin_allowed(origin_text, allowed):
        return False
    if origin_text:
        request.setHeader(b"Access-Control-Allow-Origin", origin)
    return True
