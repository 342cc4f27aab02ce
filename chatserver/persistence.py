"""Group commit towards Django: many socket messages, few HTTP requests.

`PersistenceQueue.enqueue(item)` returns a Deferred that fires with the item's result from Django
(`{"ok": true, "created": ..., "message": ...}` or `{"ok": false, "error": ...}`); it never
errbacks. Each message Django *created* is also handed to `on_stored(message, prev_id)`, to be
published; a repeat of a stored nonce (`created: false`, Django's answer is authoritative) goes
to its sender alone, through the Deferred, and is never published. A batch is sent when
`batch_size` items wait or `batch_delay` after the first one, whichever comes first, with at most
`max_in_flight` requests at once.

Ordering: a room's messages are never in two in-flight batches, so a room's ids are published
in the order Django assigned them. Durability: when Django is slow or down the batch goes back to
the front of the queue and is retried with exponential backoff and jitter, forever; the nonce
makes a retry safe. The queue is bounded: `QueueFull` tells new senders `busy`.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

log = Logger()

BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0


class QueueFull(Exception):
    """The queue holds `queue_limit` items: the sender should retry later (error `busy`)."""


class PersistenceQueue:
    """Batches items to `client.persist_batch` and routes each result back to its sender."""

    def __init__(
        self,
        client: Any,
        clock: IReactorTime,
        *,
        on_stored: Callable[[dict, int | None], None],
        batch_size: int = 200,
        batch_delay: float = 0.005,
        max_in_flight: int = 2,
        queue_limit: int = 10000,
        metrics: Any = None,
        rng: random.Random | None = None,
    ) -> None:
        self._client = client
        self._clock = clock
        self._on_stored = on_stored
        self._batch_size = batch_size
        self._batch_delay = batch_delay
        self._max_in_flight = max_in_flight
        self._queue_limit = queue_limit
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._queue: deque[tuple[dict, Deferred]] = deque()
        self._in_flight = 0
        self._in_flight_items = 0
        self._in_flight_rooms: set[str] = set()
        self._timer = None
        self._failures = 0
        self._idle_waiters: list[Deferred] = []

    # public --------------------------------------------------------------------------------

    def depth(self) -> int:
        """Items queued or in flight."""
        return len(self._queue) + self._in_flight_items

    def in_flight(self) -> int:
        """Requests to Django under way."""
        return self._in_flight

    def enqueue(self, item: dict) -> Deferred:
        """Queue one item (`room`, `nonce`, `body`, `name`, `user_id`, `guest`)."""
        if self.depth() >= self._queue_limit:
            raise QueueFull()
        d: Deferred = Deferred()
        self._queue.append((item, d))
        self._gauge()
        if len(self._queue) >= self._batch_size:
            self._flush()
        elif self._timer is None:
            self._timer = self._clock.callLater(self._batch_delay, self._on_timer)
        return d

    def when_idle(self) -> Deferred:
        """Fires once nothing is queued or in flight (used to drain at shutdown)."""
        d: Deferred = Deferred()
        if self.depth() == 0:
            d.callback(None)
        else:
            self._idle_waiters.append(d)
        return d

    def fail_all(self, code: str = "store_failed") -> None:
        """Answer every queued (not in-flight) item with an error: used when giving up."""
        self._cancel_timer()
        queued, self._queue = self._queue, deque()
        for item, d in queued:
            d.callback(
                {"ok": False, "nonce": item.get("nonce"), "room": item.get("room"), "error": code}
            )
        self._gauge()
        self._check_idle()

    # batching ------------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        """Send as many batches as the in-flight limit allows."""
        if self._backing_off():
            return  # the retry timer will flush
        self._cancel_timer()
        while self._in_flight < self._max_in_flight and self._queue:
            batch = self._compose()
            if not batch:
                break  # every queued room is already in flight
            self._send(batch)
            if self._backing_off():
                break  # that request failed at once: wait for the retry timer

    def _backing_off(self) -> bool:
        return self._timer is not None and self._failures > 0

    def _compose(self) -> list[tuple[dict, Deferred]]:
        batch: list[tuple[dict, Deferred]] = []
        left: deque[tuple[dict, Deferred]] = deque()
        busy = self._in_flight_rooms
        for entry in self._queue:
            if len(batch) < self._batch_size and entry[0]["room"] not in busy:
                batch.append(entry)
            else:
                left.append(entry)
        if not batch:
            return batch
        # A room's later items may share this batch (one request keeps their order) but never
        # a concurrent one: the rooms stay busy until the answer is handled.
        rooms = {item["room"] for item, _ in batch}
        self._queue = left
        self._in_flight_rooms |= rooms
        return batch

    def _send(self, batch: list[tuple[dict, Deferred]]) -> None:
        self._in_flight += 1
        self._in_flight_items += len(batch)
        started = self._clock.seconds()
        if self._metrics is not None:
            self._metrics.persist_batch_size.observe(len(batch))
        d = self._client.persist_batch([item for item, _ in batch])
        d.addCallbacks(
            self._stored,
            self._failed,
            callbackArgs=(batch, started),
            errbackArgs=(batch,),
        )
        d.addErrback(lambda failure: log.failure("persistence bookkeeping failed", failure))

    def _release(self, batch: list[tuple[dict, Deferred]]) -> None:
        self._in_flight -= 1
        self._in_flight_items -= len(batch)
        self._in_flight_rooms -= {item["room"] for item, _ in batch}

    def _stored(self, results: list[dict], batch: list[tuple[dict, Deferred]], started) -> None:
        self._failures = 0
        if self._metrics is not None:
            self._metrics.persist_latency.observe(self._clock.seconds() - started)
        self._release(batch)
        for (_item, d), result in zip(batch, results, strict=True):
            if result.get("ok"):
                # Only a new row is published: a repeat (whatever the recent buffer holds, and
                # across restarts) must never reach the room again, nor revive a deleted message.
                if result.get("created") is True and isinstance(result.get("message"), dict):
                    prev_id = result.get("prev_id")
                    try:
                        self._on_stored(
                            result["message"], prev_id if isinstance(prev_id, int) else None
                        )
                    except Exception:
                        log.failure("publishing a stored message failed")
            elif self._metrics is not None:
                self._metrics.errors.labels(kind=str(result.get("error", "item"))).inc()
            d.callback(result)
        self._gauge()
        self._flush()
        self._check_idle()

    def _failed(self, failure, batch: list[tuple[dict, Deferred]]) -> None:
        self._release(batch)
        # Back to the front, in their original order, ahead of anything newer from the same rooms.
        self._queue.extendleft(reversed(batch))
        self._failures += 1
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (self._failures - 1))
        delay = delay / 2 + self._rng.uniform(0, delay / 2)
        log.warn(
            "persisting a batch of {count} failed ({kind}); retry #{attempt} in {delay:.2f}s",
            count=len(batch),
            kind=type(failure.value).__name__,
            attempt=self._failures,
            delay=delay,
        )
        if self._metrics is not None:
            self._metrics.errors.labels(kind="persist_failed").inc()
        self._cancel_timer()
        self._timer = self._clock.callLater(delay, self._retry)

    def _retry(self) -> None:
        # The backoff exponent (`_failures`) stays until a request succeeds.
        self._timer = None
        self._flush()

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.persist_queue_depth.set(self.depth())

    def _check_idle(self) -> None:
        if self.depth() == 0 and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)
