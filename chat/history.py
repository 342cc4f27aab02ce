"""Paging through a room's messages in id order; shared by the public and internal APIs."""

from __future__ import annotations

from collections.abc import Mapping

from .models import Message, Room
from .params import MAX_ID, parse_decimal


class BadParameter(ValueError):
    """A query parameter was not a valid value."""


def parse_id(params: Mapping[str, str], name: str) -> int | None:
    """A non-negative integer parameter (``chat/params.py``: ASCII digits, at most 2**53 - 1), or
    None when absent; raises :class:`BadParameter`."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_decimal(raw)
    except ValueError:
        raise BadParameter(
            f"`{name}` must be a whole number from 0 to {MAX_ID} in ASCII digits."
        ) from None


def parse_limit(params: Mapping[str, str], default: int, maximum: int) -> int:
    """``limit`` between 1 and ``maximum``; larger values are clamped, bad values refused."""
    value = parse_id(params, "limit")
    if value is None:
        return default
    if value < 1:
        raise BadParameter("`limit` must be at least 1.")
    return min(value, maximum)


def page(
    room: Room, *, before: int | None = None, after: int | None = None, limit: int
) -> tuple[list[Message], bool]:
    """Visible messages of ``room`` in id order, and whether more exist in the direction asked.

    ``before``: the newest ``limit`` with a smaller id; ``after``: the oldest ``limit`` with a
    larger id; neither: the newest ``limit`` (``has_more`` then means older ones exist).
    """
    if before is not None and after is not None:
        raise BadParameter("Give `before` or `after`, not both.")
    qs = Message.objects.visible().filter(room=room).shaped()
    if after is not None:
        rows = list(qs.filter(id__gt=after).order_by("id")[: limit + 1])
        return rows[:limit], len(rows) > limit
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs.order_by("-id")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return rows, has_more


def around(room: Room, target: int, *, limit: int) -> tuple[list[Message], bool, bool]:
    """Visible messages of ``room`` in id order around id ``target``: the target (when visible)
    and up to ``limit // 2`` before it, the rest after it; whether older, and newer, ones exist.

    For opening a search result in context: the reader sees the message with what led to it.
    """
    qs = Message.objects.visible().filter(room=room).shaped()
    older_count = limit // 2
    older = list(qs.filter(id__lt=target).order_by("-id")[: older_count + 1])
    has_older = len(older) > older_count
    older = older[:older_count]
    older.reverse()
    newer_count = limit - len(older)
    newer = list(qs.filter(id__gte=target).order_by("id")[: newer_count + 1])
    has_newer = len(newer) > newer_count
    return older + newer[:newer_count], has_older, has_newer
