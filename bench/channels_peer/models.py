"""The one table of the peer: messages, saved when `BENCH_CHANNELS_SAVE=1`."""

from django.db import models


class Message(models.Model):
    """One chat message as seed tutorials store it: room name, text, time."""

    room = models.CharField(max_length=100)
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
