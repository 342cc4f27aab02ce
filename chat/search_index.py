"""The full-text index structures behind chat/search.py, installed by migration 0005 and checked
after every ``migrate``.

PostgreSQL: a stored generated column ``body_tsv`` = ``to_tsvector('simple', COALESCE(body, ''))``
(computed by PostgreSQL on every insert and body update) with a GIN index on it.

SQLite: an FTS5 table with ``chat_message`` as its external content, kept in step by triggers
(insert, body update, delete), so an edit or a removal is searchable at once. Django's SQLite
schema editor rebuilds a table to alter some columns (copy, drop, rename), and dropping the table
drops its triggers: :func:`ensure` (connected to ``post_migrate``) puts missing triggers back and
rebuilds the index from the table, so a later migration of ``chat_message`` cannot silently stop
search from seeing new messages.
"""

from __future__ import annotations

from typing import Any

PG_COLUMN = "body_tsv"
PG_INDEX = "chat_message_body_tsv"
PG_CREATE = [
    # A stored generated column, not an index on the expression: a search that matches many rows
    # rechecks them, and recomputing to_tsvector for each made common words take ~1 s at 10^6
    # messages (docs/performance.md, "Search"). Unknown to the model: PostgreSQL fills it.
    "ALTER TABLE chat_message ADD COLUMN IF NOT EXISTS body_tsv tsvector GENERATED ALWAYS AS "
    "(to_tsvector('simple'::regconfig, COALESCE(body, ''))) STORED",
    f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON chat_message USING gin (body_tsv)",
]
PG_DROP = [
    f"DROP INDEX IF EXISTS {PG_INDEX}",
    "ALTER TABLE chat_message DROP COLUMN IF EXISTS body_tsv",
]

SQLITE_TABLE = "chat_message_fts"
SQLITE_TRIGGERS = {
    "chat_message_fts_ai": "AFTER INSERT ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(rowid, body) VALUES (new.id, new.body); END",
    "chat_message_fts_ad": "AFTER DELETE ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, body) "
    "VALUES ('delete', old.id, old.body); END",
    "chat_message_fts_au": "AFTER UPDATE OF body ON chat_message BEGIN "
    "INSERT INTO chat_message_fts(chat_message_fts, rowid, body) "
    "VALUES ('delete', old.id, old.body); "
    "INSERT INTO chat_message_fts(rowid, body) VALUES (new.id, new.body); END",
}
SQLITE_CREATE_TABLE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {SQLITE_TABLE} USING fts5(body, content='chat_message', "
    "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
)
SQLITE_REBUILD = "INSERT INTO chat_message_fts(chat_message_fts) VALUES ('rebuild')"


def _sqlite_install(cursor: Any) -> None:
    cursor.execute(SQLITE_CREATE_TABLE)
    for name, body in SQLITE_TRIGGERS.items():
        cursor.execute(f"CREATE TRIGGER IF NOT EXISTS {name} {body}")
    cursor.execute(SQLITE_REBUILD)


def install(connection: Any) -> None:
    """Create the index of ``connection``'s back end (nothing on any other back end)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in PG_CREATE:
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            _sqlite_install(cursor)


def uninstall(connection: Any) -> None:
    """Remove what :func:`install` created."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in PG_DROP:
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            for name in SQLITE_TRIGGERS:
                cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
            cursor.execute(f"DROP TABLE IF EXISTS {SQLITE_TABLE}")


def missing(connection: Any) -> list[str]:
    """Names of the structures :func:`install` creates that the database lacks."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname = %s", [PG_INDEX])
            return [] if cursor.fetchone() else [PG_INDEX]
        if connection.vendor == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")
            present = {row[0] for row in cursor.fetchall()}
            wanted = [SQLITE_TABLE, *SQLITE_TRIGGERS]
            return [name for name in wanted if name not in present]
    return []


def ensure(sender: Any = None, using: str = "default", **kwargs: Any) -> None:
    """``post_migrate`` handler: reinstall (and on SQLite rebuild) when something is missing,
    but only once the chat tables and migration 0005 exist."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[using]
    if "chat_message" not in connection.introspection.table_names():
        return
    applied = MigrationRecorder(connection).applied_migrations()
    if not any(app == "chat" and name.startswith("0005_") for app, name in applied):
        return
    if missing(connection):
        install(connection)
