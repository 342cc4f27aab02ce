"""App configuration for the chat app."""

from django.apps import AppConfig


class ChatConfig(AppConfig):
    """Rooms, messages, pages, the JSON API and the internal API for the chat server."""

    name = "chat"
    verbose_name = "Chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Fill in the chat settings the project left out (``chat.conf``), then connect the signal
        handlers (``chat.signals``): access changes reach the chat server, and every registered
        username is held as a name no guest may take."""
        from django.conf import settings

        from . import conf, signals

        conf.apply_defaults(settings)

        signals.connect()
