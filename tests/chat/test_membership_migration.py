"""Migration 0010 keeps every existing room's access: a room that allowed guests becomes public,
any other one open to signed-in users (never private), with ``allow_guests`` unchanged."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("chat", "0007_message_search")]
AFTER = [("chat", "0010_membership")]


@pytest.mark.django_db(transaction=True)
def test_existing_rooms_keep_their_access():
    """Rows written before 0010 (through the old schema) read back with the matching
    visibility after it."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_room = executor.loader.project_state(BEFORE).apps.get_model("chat", "Room")
    old_room.objects.create(slug="old-guests", name="Old guests", allow_guests=True)
    old_room.objects.create(slug="old-members", name="Old members", allow_guests=False)
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new_room = executor.loader.project_state(AFTER).apps.get_model("chat", "Room")
    rows = dict(new_room.objects.filter(slug__startswith="old-").values_list("slug", "visibility"))
    assert rows == {"old-guests": "public", "old-members": "signed_in"}
    assert new_room.objects.get(slug="old-guests").allow_guests is True
    # Back to the newest schema for the tests that follow.
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
