"""``manage.py ensuredemo``: the demo room `lobby` and a superuser `admin` (idempotent)."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from chat.models import Room


class Command(BaseCommand):
    """Make sure `make run` leads to a usable demo: a guest room and an admin account."""

    help = "Ensure the demo room `lobby` (guests allowed) and the superuser `admin` exist."

    def handle(self, *args: Any, **options: Any) -> None:
        """Create or repair the lobby and the admin account, then say how to sign in."""
        room, _ = Room.objects.get_or_create(
            slug="lobby", defaults={"name": "Lobby", "description": "Say hello"}
        )
        if not room.allow_guests:
            room.allow_guests = True
            room.save(update_fields=["allow_guests"])
        self.stdout.write(f"Demo room: /chats/{room.slug}/ (guests welcome)")

        User = get_user_model()
        user, created = User.objects.get_or_create(
            **{User.USERNAME_FIELD: "admin"}, defaults={"is_staff": True, "is_superuser": True}
        )
        if not (user.is_staff and user.is_superuser and user.is_active):
            user.is_staff = user.is_superuser = user.is_active = True
            user.save(update_fields=["is_staff", "is_superuser", "is_active"])
        password = settings.CHAT_DEMO_ADMIN_PASSWORD
        if password:
            # Set on every run so the password in .env is always the one that works.
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(
                "Sign in to /admin/ as admin with the password in .env (CHAT_DEMO_ADMIN_PASSWORD)"
            )
            self.stdout.write(f"Password: {password}")
        elif created:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(
                "Sign in to /admin/ as admin with this generated password "
                "(shown once; set CHAT_DEMO_ADMIN_PASSWORD to choose it):"
            )
            self.stdout.write(f"Password: {password}")
        else:
            self.stdout.write("User admin exists; its password is unchanged.")
