"""Full-text search of message bodies (chat/search.py): a stored tsvector column with a GIN index
on PostgreSQL, an FTS5 table kept in step by triggers on SQLite; each a no-op on the other back
end (chat/search_index.py)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from chat import search_index

    search_index.install(schema_editor.connection)


def backwards(apps, schema_editor):
    from chat import search_index

    search_index.uninstall(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0006_reactions"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
