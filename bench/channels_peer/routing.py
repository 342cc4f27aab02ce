"""WebSocket routes, as in the Channels tutorial's `chat/routing.py`."""

from django.urls import re_path

from bench.channels_peer import consumers

websocket_urlpatterns = [
    re_path(r"ws/chat/(?P<room_name>\w+)/$", consumers.ChatConsumer.as_asgi()),
]
