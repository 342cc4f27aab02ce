"""Message formatting: the body rendered to sanitized HTML (chat/markdown.py), stored beside the
source, and rendered now for every existing message (deleted ones too: moderation shows them)."""

from django.db import migrations, models

BATCH = 500


def render_existing(apps, schema_editor):
    from chat import markdown

    Message = apps.get_model("chat", "Message")
    rows = Message.objects.using(schema_editor.connection.alias).order_by("pk")
    last = 0
    while True:
        batch = list(rows.filter(pk__gt=last).only("pk", "body")[:BATCH])
        if not batch:
            return
        for message in batch:
            message.html = markdown.render(message.body)
        Message.objects.using(schema_editor.connection.alias).bulk_update(batch, ["html"])
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0008_message_reply"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="html",
            field=models.TextField(blank=True, default="", editable=False),
        ),
        migrations.RunPython(render_existing, migrations.RunPython.noop),
    ]
