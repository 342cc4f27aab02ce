"""App config of the Channels peer (label `channels_peer`)."""

from django.apps import AppConfig


class ChannelsPeerConfig(AppConfig):
    """The peer's only app: its `Message` model and migration."""

    name = "bench.channels_peer"
    label = "channels_peer"
