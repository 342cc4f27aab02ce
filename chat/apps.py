"""App configuration for the chat app."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Rooms, messages, pages, the JSON API and the internal API for the chat server."""

    name = "chat"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Hold every registered username as a name no guest may take (``chat.signals``)."""
        from . import signals

        signals.connect()
