"""The one rule for numbers in URLs and headers on the Django side (docs/protocol.md,
"Numbers in URLs").

ASCII digits only, at most ``MAX_ID`` (2**53 - 1: the largest integer a JavaScript client holds
exactly, and well inside PostgreSQL's and SQLite's bigint). The chat server applies the same rule
(``chatserver/admission.py``), so a value one process accepts is never refused by the other.
Python's ``int()`` and ``str.isdigit()`` are not that rule: they accept ``" 12"``, ``"+12"``,
``"1_000"`` and non-ASCII digits such as ``"١٢"``.
"""

from __future__ import annotations

import re

MAX_ID = 2**53 - 1
_DECIMAL = re.compile(r"[0-9]{1,16}")


def parse_decimal(raw: str, maximum: int = MAX_ID) -> int:
    """``raw`` as an int in ``[0, maximum]``; ValueError for anything else (signs, white space,
    underscores, non-ASCII digits, empty, over ``maximum``)."""
    if not isinstance(raw, str) or _DECIMAL.fullmatch(raw) is None:
        raise ValueError("not a decimal number in range")
    value = int(raw)
    if value > maximum:
        raise ValueError("not a decimal number in range")
    return value
