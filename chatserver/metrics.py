"""Prometheus metrics of one chat server, on a dedicated `CollectorRegistry` (no globals)."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ChatMetrics:
    """The metrics docs/protocol.md names; gauges of live sizes are read when scraped."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.connections = Gauge(
            "chat_connections", "Open WebSocket connections.", registry=self.registry
        )
        self.rooms = Gauge("chat_rooms", "Rooms with listeners.", registry=self.registry)
        self.messages_in = Counter(
            "chat_messages_in", "Messages accepted from clients.", registry=self.registry
        )
        self.messages_out = Counter(
            "chat_messages_out",
            "Message frames delivered (members per broadcast).",
            registry=self.registry,
        )
        self.user_events_out = Counter(
            "chat_user_events_out",
            "User (feed) event frames delivered (feed connections per event).",
            registry=self.registry,
        )
        self.persist_batch_size = Histogram(
            "chat_persist_batch_size",
            "Items per batch sent to Django.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=self.registry,
        )
        self.persist_latency = Histogram(
            "chat_persist_latency_seconds",
            "Time Django took to answer a batch.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.persist_queue_depth = Gauge(
            "chat_persist_queue_depth",
            "Items queued or in flight to Django.",
            registry=self.registry,
        )
        self.errors = Counter(
            "chat_errors", "Refusals and failures by kind.", ["kind"], registry=self.registry
        )

    def enable_redis(self) -> None:
        """Register the Redis metrics (only processes configured with CHAT_REDIS_URL have them)."""
        self.redis_up = Gauge(
            "chat_redis_up",
            "1 while subscribed to Redis and able to publish, else 0.",
            registry=self.registry,
        )
        self.gap_fills = Counter(
            "chat_redis_gap_fills",
            "Reads from Django to fill a room's gap in the id sequence.",
            registry=self.registry,
        )

    def watch(self, connections: Callable[[], int], rooms: Callable[[], int]) -> None:
        """Read the live gauges from callables at scrape time (no bookkeeping per event)."""
        self.connections.set_function(connections)
        self.rooms.set_function(rooms)
