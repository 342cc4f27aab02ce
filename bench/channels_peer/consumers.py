"""The tutorial's asynchronous `ChatConsumer`, plus the save step of seed tutorials.

A socket joins the group `chat_<room>` on connect and leaves it on disconnect; a received
`{"message": ...}` goes to the whole group through the channel layer (`group_send`), and each
member's `chat_message` handler writes `{"message": ...}` to its socket. With
`settings.SAVE_MESSAGES`, the message is first stored as a row through
`database_sync_to_async`, the way tutorials that add history to this chat do it.
"""

from __future__ import annotations

import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from bench.channels_peer.models import Message


class ChatConsumer(AsyncWebsocketConsumer):
    """One socket of one room (the tutorial's consumer, unchanged but for the save step)."""

    async def connect(self) -> None:
        self.room_name = self.scope["url_route"]["kwargs"]["room_name"]
        self.room_group_name = f"chat_{self.room_name}"
        await self.channel_layer.group_add(self.room_group_name, self.channel_name)
        await self.accept()

    async def disconnect(self, close_code: int) -> None:
        await self.channel_layer.group_discard(self.room_group_name, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        message = json.loads(text_data)["message"]
        if settings.SAVE_MESSAGES:
            await self.save_message(message)
        await self.channel_layer.group_send(
            self.room_group_name, {"type": "chat.message", "message": message}
        )

    async def chat_message(self, event: dict) -> None:
        await self.send(text_data=json.dumps({"message": event["message"]}))

    @database_sync_to_async
    def save_message(self, message: str) -> None:
        Message.objects.create(room=self.room_name, content=message)
