"""Replies: a message may answer another message of its room (`Message.reply_to`).

No database constraint: the parent's id must outlive the parent row, so a reply to a deleted
message still knows it was one (docs/protocol.md, `reply_to`)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0007_message_search"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="reply_to",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="replies",
                to="chat.message",
            ),
        ),
    ]
