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
        username is held as a name no guest may take; the full-text index is checked after
        every migrate."""
        from django.conf import settings
        from django.db.models.signals import post_migrate

        from . import conf, search_index, signals

        conf.apply_defaults(settings)

        signals.connect()
        # A later migration that rebuilds chat_message on SQLite drops the search triggers.
        post_migrate.connect(search_index.ensure, sender=self, dispatch_uid="chat.search_index")
