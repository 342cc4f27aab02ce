"""No HTTP pages: the peer is measured on its WebSocket route only."""

urlpatterns: list = []
