"""Create the demo room `lobby`, which allows guests, so a fresh install has somewhere to chat."""

from django.db import migrations


def create_lobby(apps, schema_editor):
    """Create `lobby` unless a room with that slug exists already."""
    Room = apps.get_model("chat", "Room")
    Room.objects.get_or_create(
        slug="lobby",
        defaults={"name": "Lobby", "description": "Say hello", "allow_guests": True},
    )


class Migration(migrations.Migration):
    dependencies = [("chat", "0001_initial")]

    operations = [migrations.RunPython(create_lobby, migrations.RunPython.noop)]
