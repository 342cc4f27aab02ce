"""Full-text search over messages: who may read what, the query on each back end, and snippets.

PostgreSQL matches ``body_tsv @@ plainto_tsquery('simple', q)``, ``body_tsv`` being the stored
``to_tsvector('simple', body)`` with a GIN index (chat/search_index.py, migration 0005); SQLite
matches the FTS5 table ``chat_message_fts``, which triggers keep in step with ``chat_message``.
Both use no stemming: a term matches a whole word, case- and (on SQLite) accent-insensitively;
every term must occur (AND). The query is always data: PostgreSQL's ``plainto_tsquery`` ignores
operators, and each FTS5 term is sent as a double-quoted string, so ``"``, ``*``, ``NEAR``,
``OR`` and ``-`` are text, not syntax.

Snippets are built here, in Python, for both back ends (not with ``ts_headline``, whose output
is the raw body with markers around hits): the text is HTML-escaped and only our own ``<mark>``
tags are added, so a body can never put markup on the results page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest
from django.utils.html import escape

from . import access
from .models import Message, Room

MAX_QUERY_LENGTH = 200
MAX_TERMS = 16
SEARCH_PAGE = 20
SNIPPET_CHARS = 160
# The text search configuration of the PostgreSQL index; the query must use the same one.
PG_CONFIG = "simple"
# Words as the snippet marker sees them: runs of letters and digits (both back ends' tokenizers
# split on the same kind of boundary for ordinary text).
_WORD = re.compile(r"\w+", re.UNICODE)


class BadQuery(ValueError):
    """The search text is empty (no word in it) or too long; ``code`` is the protocol error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def readable_rooms(request: HttpRequest) -> QuerySet[Room]:
    """The rooms this request may read: the one rule the room page, the history API and the ticket
    apply (``chat.access``), as a query. Archived rooms are never searched.
    """
    return access.readable_rooms(request.user).filter(is_archived=False)


def query_terms(text: str) -> list[str]:
    """The words of the search text, lower-cased (both tokenizers fold case), without repeats;
    raises :class:`BadQuery`."""
    if len(text) > MAX_QUERY_LENGTH:
        raise BadQuery("query_too_long", f"A search has at most {MAX_QUERY_LENGTH} characters.")
    terms: list[str] = []
    for word in _WORD.findall(text.lower()):
        if word not in terms:
            terms.append(word)
    if not terms:
        raise BadQuery("empty_query", "Type a word to search for.")
    return terms[:MAX_TERMS]


def fts5_match(terms: list[str]) -> str:
    """An FTS5 MATCH expression requiring every term, each a quoted string (never syntax)."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


@dataclass(frozen=True)
class Hit:
    """One search result: the message and its snippet (safe HTML)."""

    message: Message
    snippet: str


def search(
    rooms: QuerySet[Room], text: str, *, before: int | None = None, limit: int = SEARCH_PAGE
) -> tuple[list[Hit], bool]:
    """Visible messages of ``rooms`` matching ``text``, newest first, at most ``limit``, with
    ids below ``before`` when given; and whether more match further back."""
    terms = query_terms(text)
    matched = matching(rooms, terms, before=before, limit=limit + 1)
    rows = list(matched.shaped().select_related("room").order_by("-id")[: limit + 1])
    hits = [Hit(message=m, snippet=snippet(m.body, terms)) for m in rows[:limit]]
    return hits, len(rows) > limit


def matching(
    rooms: QuerySet[Room], terms: list[str], *, before: int | None = None, limit: int = SEARCH_PAGE
) -> QuerySet[Message]:
    """The query: visible messages of ``rooms`` (ids below ``before``) holding every term; on
    SQLite only the newest ``limit`` of them (found in the FTS5 table's own rowid order)."""
    if connection.vendor == "sqlite":
        return Message.objects.filter(id__in=_fts5_ids(rooms, terms, before, limit))
    candidates = Message.objects.visible().filter(room__in=rooms)
    if before is not None:
        candidates = candidates.filter(id__lt=before)
    if connection.vendor == "postgresql":
        # The stored column of chat/search_index.py (PG_COLUMN; not a model field: PostgreSQL
        # fills it).
        tsv = RawSQL('"chat_message"."body_tsv"', [], SearchVectorField())  # noqa: S611 - constant
        return candidates.annotate(tsv=tsv).filter(
            tsv=SearchQuery(" ".join(terms), config=PG_CONFIG, search_type="plain")
        )
    raise NotImplementedError(f"no full-text search on {connection.vendor}")


def _fts5_ids(rooms: QuerySet[Room], terms: list[str], before: int | None, limit: int) -> list[int]:
    """Ids of the newest ``limit`` matches, walking the FTS5 index newest first and stopping
    there: ``id IN (all matches)`` made a common word cost ~0.6 s at 10^6 messages."""
    room_sql, room_params = rooms.values("pk").query.sql_with_params()
    # room_sql is Django's own SQL for the rooms query (its values are in room_params).
    sql = (
        "SELECT chat_message_fts.rowid FROM chat_message_fts "  # noqa: S608
        "JOIN chat_message ON chat_message.id = chat_message_fts.rowid "
        "WHERE chat_message_fts MATCH %s AND NOT chat_message.is_deleted "
        "AND chat_message.room_id IN (" + room_sql + ")"
    )
    params: list[object] = [fts5_match(terms), *room_params]
    if before is not None:
        sql += " AND chat_message_fts.rowid < %s"
        params.append(before)
    sql += " ORDER BY chat_message_fts.rowid DESC LIMIT %s"
    params.append(limit)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def snippet(body: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """About ``width`` characters of ``body`` around its first hit, HTML-escaped, with every
    whole-word hit of ``terms`` wrapped in ``<mark>``; "…" where text was cut."""
    wanted = set(terms)
    spans = [m.span() for m in _WORD.finditer(body) if m.group().lower() in wanted]
    first = spans[0][0] if spans else 0
    start = max(0, min(first - width // 3, len(body) - width))
    end = min(len(body), start + width)
    parts = ["…" if start > 0 else ""]
    cursor = start
    for hit_start, hit_end in spans:
        if hit_start < start or hit_end > end:
            continue
        parts.append(escape(body[cursor:hit_start]))
        parts.append("<mark>" + escape(body[hit_start:hit_end]) + "</mark>")
        cursor = hit_end
    parts.append(escape(body[cursor:end]))
    parts.append("…" if end < len(body) else "")
    return "".join(parts)
