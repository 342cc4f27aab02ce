"""Reactions: one row per person and emoji on a message, and the message's reactions version."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0005_message_edit"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="reactions_version",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.CreateModel(
            name="Reaction",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("uid", models.CharField(max_length=40)),
                ("name", models.CharField(max_length=64)),
                ("emoji", models.CharField(max_length=32)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                (
                    "message",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="reactions",
                        to="chat.message",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("message", "uid", "emoji"),
                        name="chat_reaction_message_uid_emoji_uniq",
                    )
                ],
            },
        ),
    ]
