"""Group commit towards Django: many socket messages, few HTTP requests, fair across rooms.

`PersistenceQueue.enqueue(item)` returns a Deferred that fires with the item's result from Django
(`{"ok": true, "created": ..., "message": ...}` or `{"ok": false, "error": ...}`); it never
errbacks. Each message Django *created* is also handed to `on_stored(message, prev_id)`, to be
published; a repeat of a stored nonce (`created: false`, Django's answer is authoritative) goes
to its sender alone, through the Deferred, and is never published. A batch is sent when
`batch_size` items wait or `batch_delay` after the first one, whichever comes first, with at most
`max_in_flight` requests at once.

Ordering: each room has its own FIFO, and a room's messages are never in two in-flight requests,
so a room's ids are assigned, and published, in the order its messages arrived.

Fairness: a batch takes one item from each ready room in turn, round after round, until it is
full; the rooms it served go to the back of the turn. A room with 10,000 queued messages therefore
delays another room's message by at most the one batch already on its way. The queue holds at most
`queue_limit` items (queued plus in flight) and one room at most `room_queue_limit` of them; past
either limit `QueueFull` tells new senders `busy`, so one flooding room is refused while the
others keep flowing.

Durability: when Django does not answer (connection refused, reset, timeout:
`DjangoUnreachable`) the request's items go back to the front, as they were, and are retried with
exponential backoff and jitter, forever; the nonce makes a retry safe.

Poison items: when Django answers a batch with anything but its results (`DjangoRefused`: a 5xx
because the database rejects one row, a 413, an item that cannot even be encoded), the batch is
split in halves, each half tried on its own (first half first where they share a room), and so on
down to single items: at most 2n - 1 requests for a batch of n, and every item that is not at fault
is stored on the way. A split is retried at once when some other request stored messages while it
was out (Django works, so the failure is about these items), else after the backoff. A single item
that Django keeps refusing is answered `store_failed` (its sender gets an error frame or an error
answer to its POST) when either

- it failed alone at least twice and Django stored other messages since it first failed, or
- it failed alone `ALONE_ATTEMPTS` (5) times and Django's health check then answers ok (Django and
  its database are up, yet this one item cannot be stored).

Otherwise (everything fails: Django or its database is down, every request gets a 5xx) nothing is
refused: the items wait and are retried with backoff like in any outage. A refused `(room, nonce)`
is remembered (the last `REMEMBERED_POISON`): when its sender resends it, it is tried alone
straight away and cannot hold up anyone else's batch again.
"""

from __future__ import annotations

import random
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.djangoclient import DjangoRefused

log = Logger()

BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0
# Failures as a single-item request before the health check may decide the item is poison.
ALONE_ATTEMPTS = 5
REMEMBERED_POISON = 1024
POISON_TEXT = (
    "The message could not be stored: the database refused it while it stored other messages. "
    "Sending it again will fail the same way."
)


class QueueFull(Exception):
    """The queue (or the item's room) holds its limit of items: the sender gets `busy`."""


class _Entry:
    """One queued item, its sender's Deferred, and what its failures have shown so far."""

    __slots__ = ("item", "d", "room", "alone", "alone_failures", "suspect_since")

    def __init__(self, item: dict, d: Deferred) -> None:
        self.item = item
        self.d = d
        self.room: str = item["room"]
        self.alone = False  # refused before: goes in a request of its own
        self.alone_failures = 0  # refused answers to a request holding only this item
        self.suspect_since: int | None = None  # stores counted when it was first refused


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
        room_queue_limit: int = 2000,
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
        self._room_limit = room_queue_limit
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._rooms: dict[str, deque[_Entry]] = {}  # room -> its FIFO (never empty)
        self._turn: deque[str] = deque()  # rooms with queued items, next to serve first
        self._queued = 0  # items in the room FIFOs
        self._probes: deque[list[_Entry]] = deque()  # split groups, tried before new batches
        self._probe_rooms: Counter[str] = Counter()  # rooms with items waiting in `_probes`
        self._room_depth: Counter[str] = Counter()
        self._depth = 0
        self._in_flight = 0
        self._in_flight_rooms: set[str] = set()
        self._stores = 0  # requests Django answered with results, ever
        self._poisoned: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._timer = None
        self._failures = 0
        self._idle_waiters: list[Deferred] = []

    # public --------------------------------------------------------------------------------

    def depth(self) -> int:
        """Items queued or in flight."""
        return self._depth

    def room_depth(self, room: str) -> int:
        """Items of `room` queued or in flight."""
        return self._room_depth.get(room, 0)

    def in_flight(self) -> int:
        """Requests to Django under way."""
        return self._in_flight

    def enqueue(self, item: dict) -> Deferred:
        """Queue one item (`room`, `nonce`, `body`, `name`, `user_id`, `guest`).

        Raises `QueueFull` when `queue_limit` items wait in all, or `room_queue_limit` in the
        item's room.
        """
        room = item["room"]
        if self._depth >= self._queue_limit or self._room_depth[room] >= self._room_limit:
            raise QueueFull()
        d: Deferred = Deferred()
        entry = _Entry(item, d)
        entry.alone = (room, item.get("nonce")) in self._poisoned
        queue = self._rooms.get(room)
        if queue is None:
            queue = self._rooms[room] = deque()
            self._turn.append(room)
        queue.append(entry)
        self._queued += 1
        self._depth += 1
        self._room_depth[room] += 1
        self._gauge()
        if self._queued >= self._batch_size:
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
        waiting = [entry for group in self._probes for entry in group]
        for room in list(self._turn):
            waiting.extend(self._rooms[room])
        self._rooms, self._turn, self._queued = {}, deque(), 0
        self._probes, self._probe_rooms = deque(), Counter()
        for entry in waiting:
            self._settle(
                entry,
                {"ok": False, "nonce": entry.item.get("nonce"), "room": entry.room, "error": code},
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
        """Send as many requests as the in-flight limit allows: split groups first."""
        if self._backing_off():
            return  # the retry timer will flush
        self._cancel_timer()
        while self._in_flight < self._max_in_flight:
            group = self._next_probe()
            probe = group is not None
            if group is None:
                group = self._compose()
            if not group:
                break  # nothing queued, or every queued room is already in flight
            self._send(group, probe)
            if self._backing_off():
                break  # that request failed at once: wait for the retry timer

    def _backing_off(self) -> bool:
        return self._timer is not None and self._failures > 0

    def _next_probe(self) -> list[_Entry] | None:
        """The first split group none of whose rooms is in flight or in an earlier group."""
        blocked = set(self._in_flight_rooms)
        for index, group in enumerate(self._probes):
            rooms = {entry.room for entry in group}
            if blocked.isdisjoint(rooms):
                del self._probes[index]
                self._probe_rooms.subtract(entry.room for entry in group)
                self._probe_rooms += Counter()  # drop rooms that reached zero
                return group
            blocked |= rooms
        return None

    def _hold(self, group: list[_Entry], front: bool = True) -> None:
        """Queue a group to be tried on its own; its rooms wait behind it."""
        if front:
            self._probes.appendleft(group)
        else:
            self._probes.append(group)
        self._probe_rooms.update(entry.room for entry in group)

    def _compose(self) -> list[_Entry]:
        """A batch of up to `batch_size` items, one per ready room per round (round-robin)."""
        busy = self._in_flight_rooms
        skipped: list[str] = []  # rooms that cannot go now keep their place at the front
        chosen: list[str] = []
        while self._turn and len(chosen) < self._batch_size:
            room = self._turn.popleft()
            queue = self._rooms[room]
            if room in busy or room in self._probe_rooms:
                skipped.append(room)
                continue
            if queue[0].alone:
                # A resent poison item: on its own, so it cannot fail anyone else's batch.
                self._queued -= 1
                self._hold([queue.popleft()], front=False)
                if queue:
                    skipped.append(room)
                else:
                    del self._rooms[room]
                continue
            chosen.append(room)
        batch: list[_Entry] = []
        rounds = chosen
        while rounds and len(batch) < self._batch_size:
            later = []
            for room in rounds:
                if len(batch) >= self._batch_size:
                    break
                queue = self._rooms[room]
                batch.append(queue.popleft())
                if queue and not queue[0].alone:
                    later.append(room)
            rounds = later
        self._queued -= len(batch)
        self._turn.extendleft(reversed(skipped))
        for room in chosen:  # served: to the back of the turn
            if self._rooms[room]:
                self._turn.append(room)
            else:
                del self._rooms[room]
        return batch

    def _send(self, group: list[_Entry], probe: bool) -> None:
        self._in_flight += 1
        self._in_flight_rooms |= {entry.room for entry in group}
        started = self._clock.seconds()
        if self._metrics is not None:
            self._metrics.persist_batch_size.observe(len(group))
        d = maybeDeferred(self._client.persist_batch, [entry.item for entry in group])
        d.addCallbacks(
            self._stored,
            self._failed,
            callbackArgs=(group, started),
            errbackArgs=(group, probe, self._stores),
        )
        d.addErrback(lambda failure: log.failure("persistence bookkeeping failed", failure))

    def _release(self, group: list[_Entry]) -> None:
        self._in_flight -= 1
        self._in_flight_rooms -= {entry.room for entry in group}

    def _stored(self, results: list[dict], group: list[_Entry], started: float) -> None:
        self._failures = 0
        self._stores += 1
        if self._metrics is not None:
            self._metrics.persist_latency.observe(self._clock.seconds() - started)
        self._release(group)
        for entry, result in zip(group, results, strict=True):
            if result.get("ok"):
                self._poisoned.pop((entry.room, entry.item.get("nonce")), None)
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
            self._settle(entry, result)
        self._gauge()
        self._flush()
        self._check_idle()

    def _failed(self, failure: Any, group: list[_Entry], probe: bool, stores: int) -> None:
        self._release(group)
        progress = self._stores > stores  # Django stored other messages while this was out
        if not failure.check(DjangoRefused):
            # No answer: an outage. Everything goes back as it was and waits.
            self._requeue(group, probe)
            self._back_off(failure, len(group))
            return
        for entry in group:
            if entry.suspect_since is None:
                entry.suspect_since = stores
        if len(group) > 1:
            half = len(group) // 2
            self._hold(group[half:])
            self._hold(group[:half])
            log.info(
                "Django refused a batch of {count} ({error}); trying it in halves",
                count=len(group),
                error=failure.getErrorMessage(),
            )
            self._next_step(progress, failure, len(group))
            return
        entry = group[0]
        entry.alone_failures += 1
        if entry.alone_failures >= 2 and entry.suspect_since < self._stores:
            self._refuse(entry, "Django stored other messages meanwhile")
            self._flush()
            self._check_idle()
        elif entry.alone_failures >= ALONE_ATTEMPTS:
            self._judge(entry)
        else:
            self._hold(group)
            self._next_step(progress, failure, 1)

    def _next_step(self, progress: bool, failure: Any, count: int) -> None:
        # While other requests store messages the failure is about these items: go on at once.
        # Otherwise it may be an outage that answers 5xx to everything: back off.
        if progress:
            self._flush()
        else:
            self._back_off(failure, count)

    def _judge(self, entry: _Entry) -> None:
        """Ask Django's health check whether it is up; if so, the item is poison."""
        self._in_flight += 1
        self._in_flight_rooms.add(entry.room)

        def judged(healthy: object) -> None:
            self._in_flight -= 1
            self._in_flight_rooms.discard(entry.room)
            if healthy is True:
                self._refuse(entry, f"refused {entry.alone_failures} times alone, Django is up")
                self._flush()
                self._check_idle()
            else:
                self._hold([entry])
                self._back_off(None, 1)

        d = maybeDeferred(self._client.health)
        d.addErrback(lambda _failure: False)
        d.addCallback(judged)
        d.addErrback(lambda failure: log.failure("persistence bookkeeping failed", failure))

    def _refuse(self, entry: _Entry, why: str) -> None:
        key = (entry.room, entry.item.get("nonce"))
        self._poisoned[key] = None
        self._poisoned.move_to_end(key)
        while len(self._poisoned) > REMEMBERED_POISON:
            self._poisoned.popitem(last=False)
        log.warn(
            "refusing one message of room {room} with store_failed: Django cannot store it ({why})",
            room=entry.room,
            why=why,
        )
        if self._metrics is not None:
            self._metrics.errors.labels(kind="store_refused").inc()
        self._settle(
            entry,
            {
                "ok": False,
                "nonce": entry.item.get("nonce"),
                "room": entry.room,
                "error": "store_failed",
                "message": POISON_TEXT,
            },
        )
        self._gauge()

    def _requeue(self, group: list[_Entry], probe: bool) -> None:
        """Put an unanswered request's items back where they came from, first in line."""
        if probe:
            self._hold(group)
            return
        for entry in reversed(group):
            queue = self._rooms.get(entry.room)
            if queue is None:
                queue = self._rooms[entry.room] = deque()
                self._turn.appendleft(entry.room)
            queue.appendleft(entry)
            self._queued += 1

    def _back_off(self, failure: Any, count: int) -> None:
        self._failures += 1
        delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (self._failures - 1))
        delay = delay / 2 + self._rng.uniform(0, delay / 2)
        log.warn(
            "persisting {count} message(s) failed ({kind}); retry #{attempt} in {delay:.2f}s",
            count=count,
            kind=type(failure.value).__name__ if failure is not None else "health check",
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

    def _settle(self, entry: _Entry, result: dict) -> None:
        self._depth -= 1
        self._room_depth[entry.room] -= 1
        if self._room_depth[entry.room] <= 0:
            del self._room_depth[entry.room]
        entry.d.callback(result)

    def _gauge(self) -> None:
        if self._metrics is not None:
            self._metrics.persist_queue_depth.set(self.depth())

    def _check_idle(self) -> None:
        if self.depth() == 0 and self._idle_waiters:
            waiters, self._idle_waiters = self._idle_waiters, []
            for d in waiters:
                d.callback(None)
