"""Id order across chat server instances: deliver a room's messages in order, exactly once.

With several instances, a room's messages reach this process from its own persistence queue and
from Redis, in any interleaving. Ids are global across rooms, so a gap cannot be seen from ids
alone: Django answers each stored message with `prev_id`, the id of the room's previous message
(docs/protocol.md). `RoomSequencer` delivers a message when its `prev_id` is at most the last id
it delivered for the room, holds it otherwise, and after `gap_wait` (at once when Redis is down)
fills the gap from Django's `messages after` endpoint. A fill is authoritative: a held message
that Django does not list was deleted, so after a fill the last id is the highest one known.

State exists only for rooms this process has listeners in; it is dropped with the room.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from chatserver.config import DJANGO_PAGE_MAX
from chatserver.rooms import RoomRegistry

log = Logger()

# A gap is read from Django in pages as large as its internal API answers.
FILL_PAGE = DJANGO_PAGE_MAX
RETRY_BASE = 0.2
RETRY_CAP = 5.0


class _RoomOrder:
    __slots__ = ("generation", "last", "waiting", "timer", "filling", "again", "failures")

    def __init__(self, generation: object, last: int | None) -> None:
        self.generation = generation
        # Every message of the room with an id <= last has been delivered (or was deleted).
        self.last = last
        self.waiting: dict[int, tuple[dict, int | None]] = {}
        self.timer: Any = None
        self.filling = False
        self.again = False  # fill once more when the fill under way ends
        self.failures = 0


class RoomSequencer:
    """Per-room ordering of stored messages before they go to the local members."""

    def __init__(
        self,
        registry: RoomRegistry,
        deliver: Callable[[str, dict], Any],
        django: Any,
        clock: IReactorTime,
        *,
        gap_wait: float = 0.2,
        wait_for_peers: Callable[[], bool] = lambda: True,
        metrics: Any = None,
    ) -> None:
        self._registry = registry
        self._deliver = deliver
        self._django = django
        self._clock = clock
        self._gap_wait = gap_wait
        self._wait_for_peers = wait_for_peers
        self._metrics = metrics
        self._rooms: dict[str, _RoomOrder] = {}

    # public --------------------------------------------------------------------------------

    def accept(self, room: str, message: dict, prev_id: int | None) -> None:
        """A stored message (ours or another instance's); `prev_id` None when unknown."""
        state = self._state(room)
        if state is None:
            return  # nobody here listens to the room
        message_id = message["id"]
        if state.last is None:
            state.last = self._registry.known_last(room)
        if state.last is None:
            # Nothing known about the room yet (its first listener is still reading history,
            # which is complete up to where it ends): this message starts the sequence.
            self._send(room, state, message)
            return
        if message_id <= state.last:
            return  # delivered already, by a fill or by the other path
        if prev_id is not None and prev_id <= state.last:
            # No message of the room lies between the last delivered one and this one.
            self._send(room, state, message)
            self._drain(room, state)
            return
        state.waiting[message_id] = (message, prev_id)
        log.debug(
            "holding {id} in {room}: its predecessor {prev} is not delivered (last {last})",
            id=message_id,
            room=room,
            prev=prev_id,
            last=state.last,
        )
        self._arm(room, state)

    def trusted(self, room: str) -> bool:
        """False while the room waits on a gap or a fill (its recent buffer may lack messages)."""
        state = self._rooms.get(room)
        return state is None or (not state.waiting and not state.filling)

    def pending(self, room: str, message_id: int) -> bool:
        """True while `message_id` is held here for a gap (or a fill that may deliver it is
        under way): an event about it must wait (chatserver/events.py, `after_message`)."""
        state = self._rooms.get(room)
        if state is None or state.last is None or message_id <= state.last:
            return False
        return message_id in state.waiting or state.filling

    def resync(self) -> None:
        """Fill every room with listeners from Django now (Redis came back after an outage)."""
        for room in self._registry.rooms():
            state = self._state(room)
            if state is None:
                continue
            if state.last is None:
                state.last = self._registry.known_last(room)
                if state.last is None:
                    continue  # no known position: the next message starts the sequence
            self._cancel(state)
            if state.filling:
                state.again = True  # that fill may have read Django before the last messages
            else:
                self._fill(room)

    def sweep(self) -> None:
        """Drop the state of rooms this process no longer has listeners in."""
        for room, state in list(self._rooms.items()):
            if self._registry.generation(room) is not state.generation:
                self._cancel(state)
                del self._rooms[room]

    def rooms(self) -> int:
        """Rooms with ordering state (for tests and stats)."""
        return len(self._rooms)

    # internals -----------------------------------------------------------------------------

    def _state(self, room: str) -> _RoomOrder | None:
        generation = self._registry.generation(room)
        state = self._rooms.get(room)
        if generation is None:
            if state is not None:
                self._cancel(state)
                del self._rooms[room]
            return None
        if state is None or state.generation is not generation:
            if state is not None:
                self._cancel(state)
            # The recent buffer holds real ids only (never a client's `since`), and what it
            # holds was read from Django or delivered in order: a safe starting point.
            state = self._rooms[room] = _RoomOrder(generation, self._registry.known_last(room))
        return state

    def _send(self, room: str, state: _RoomOrder, message: dict) -> None:
        state.last = message["id"]
        try:
            self._deliver(room, message)
        except Exception:
            log.failure("delivering a message to the room failed")

    def _drain(self, room: str, state: _RoomOrder) -> None:
        """Deliver held messages that became next in line; forget those already covered."""
        for message_id in sorted(state.waiting):
            message, prev_id = state.waiting[message_id]
            if message_id <= state.last:
                del state.waiting[message_id]
            elif prev_id is not None and prev_id <= state.last:
                del state.waiting[message_id]
                self._send(room, state, message)
            else:
                break  # a gap before this one: later ones wait behind it
        if state.waiting:
            self._arm(room, state)
        else:
            self._cancel(state)

    def _arm(self, room: str, state: _RoomOrder, delay: float | None = None) -> None:
        if state.timer is not None or state.filling:
            return
        if delay is None:
            # The missing message is probably on its way through Redis: give it a moment,
            # unless Redis is down, when only Django can fill the gap.
            delay = self._gap_wait if self._wait_for_peers() else 0.0
        state.timer = self._clock.callLater(delay, self._fill, room)

    def _cancel(self, state: _RoomOrder) -> None:
        if state.timer is not None and state.timer.active():
            state.timer.cancel()
        state.timer = None

    def _fill(self, room: str) -> None:
        state = self._rooms.get(room)
        if state is None:
            return
        state.timer = None
        if self._registry.generation(room) is not state.generation:
            self.sweep()
            return
        state.filling = True
        # Every held message was stored before we ask: Django's answer covers it.
        known = max(state.waiting, default=state.last or 0)
        if self._metrics is not None:
            self._metrics.gap_fills.inc()
        log.debug("filling {room} from Django after {last}", room=room, last=state.last)
        d = self._read_after(room, state.last or 0)
        d.addCallbacks(
            self._filled,
            self._fill_failed,
            callbackArgs=(room, state, known),
            errbackArgs=(room, state),
        )
        d.addErrback(lambda failure: log.failure("filling a gap failed", failure))

    @inlineCallbacks
    def _read_after(self, room: str, after: int):
        messages: list[dict] = []
        while True:
            page, has_more = yield self._django.messages_after(room, after, FILL_PAGE)
            messages.extend(page)
            if not has_more or not page:
                return messages
            after = page[-1]["id"]

    def _filled(self, messages: list[dict], room: str, state: _RoomOrder, known: int) -> None:
        state.filling = False
        state.failures = 0
        log.debug(
            "filled {room}: {ids} (known {known})",
            room=room,
            ids=[m["id"] for m in messages],
            known=known,
        )
        if self._rooms.get(room) is not state:
            return  # the room was dropped meanwhile
        for message in messages:
            if state.last is None or message["id"] > state.last:
                self._send(room, state, message)
        state.last = max(state.last or 0, known)
        if state.again:
            state.again = False
            self._fill(room)
            return
        self._drain(room, state)

    def _fill_failed(self, failure: Any, room: str, state: _RoomOrder) -> None:
        state.filling = False
        if self._rooms.get(room) is not state:
            return
        state.failures += 1
        delay = min(RETRY_CAP, RETRY_BASE * 2 ** (state.failures - 1))
        log.warn(
            "filling a gap in {room} from Django failed ({error}); retry in {delay:.1f}s",
            room=room,
            error=failure.getErrorMessage(),
            delay=delay,
        )
        self._arm(room, state, delay)
