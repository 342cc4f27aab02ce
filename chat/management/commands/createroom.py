"""``manage.py createroom SLUG``: create a room; an existing slug is reported and left alone."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_slug

from chat.models import Room


class Command(BaseCommand):
    """Create a chat room. Idempotent: running it twice leaves one unchanged room."""

    help = "Create a chat room (an existing slug is reported and left unchanged)."

    def add_arguments(self, parser: CommandParser) -> None:
        """SLUG plus optional name, description and whether guests may join."""
        parser.add_argument("slug")
        parser.add_argument("--name", default="")
        parser.add_argument("--description", default="")
        parser.add_argument("--guests", action="store_true", help="Let guests join the room.")

    def handle(self, *args: Any, **options: Any) -> None:
        """Create the room or say that it exists."""
        slug = options["slug"]
        try:
            validate_slug(slug)
        except ValidationError as exc:
            raise CommandError(f"{slug!r} is not a valid slug (letters, digits, _ and -).") from exc
        if len(slug) > Room._meta.get_field("slug").max_length:
            raise CommandError("The slug is too long.")
        fields = {
            "name": options["name"] or slug.replace("-", " ").title(),
            "description": options["description"],
            "allow_guests": options["guests"],
        }
        try:
            # The model's own rules (lengths, text the database cannot store: an argument that is
            # not UTF-8 arrives as lone surrogates), before anything is written.
            Room(slug=slug, **fields).full_clean(validate_unique=False)
        except ValidationError as exc:
            problems = "; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
            )
            raise CommandError(f"The room is not valid: {problems}") from exc
        room, created = Room.objects.get_or_create(slug=slug, defaults=fields)
        if created:
            self.stdout.write(self.style.SUCCESS(f"Created room {room.slug!r}."))
        else:
            self.stdout.write(f"Room {room.slug!r} already exists; nothing changed.")
