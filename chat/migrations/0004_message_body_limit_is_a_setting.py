"""The body limit is the ``CHAT_MAX_BODY`` setting, not a field argument (no schema change: a
``TextField``'s ``max_length`` never reached the database)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0003_identity"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="body",
            field=models.TextField(),
        ),
    ]
