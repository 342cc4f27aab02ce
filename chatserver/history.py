"""Reading history for hello, `history` requests and long polls: bounded pages, shared reads.

`HistoryReader` answers from the recent buffer (`RoomRegistry`) when it provably holds the page,
else with one Django read per (room, since) at a time, which seeds the buffer for the next
caller (docs/protocol.md, "Catching up").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred, inlineCallbacks, succeed

from chatserver.config import ChatServerConfig
from chatserver.frames import encode
from chatserver.rooms import RoomRegistry


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """One bounded page of a room's messages, oldest first (see `ChatHub.history`).

    `has_more`: more messages follow the page (ask again after its last id); always false for a
    page of the newest messages.
    """

    messages: list[dict]
    has_more: bool

    @property
    def last_id(self) -> int | None:
        """Id of the page's newest message, None for an empty page."""
        return self.messages[-1]["id"] if self.messages else None


class HistoryReader:
    """Bounded pages of a room's messages, from memory or from Django."""

    def __init__(
        self,
        config: ChatServerConfig,
        registry: RoomRegistry,
        django: Any,
        trusted: Callable[[str], bool],
        ready: Callable[[str], Deferred] | None = None,
    ) -> None:
        self._config = config
        self._registry = registry
        self._django = django
        # `Fanout.buffer_trusted`: False while the buffer may lack a message (a gap elsewhere).
        self._trusted = trusted
        # `Fanout.ready`: a Django read waits until the room's live events reach this process
        # (with Redis, its channel is subscribed), so nothing stored after the read is missed.
        self._ready = ready
        # Callers waiting for a history read of the same (room, since) that is under way.
        self._history_waiting: dict[tuple[str, int | None], list[Deferred]] = {}

    def page(self, room: str, since: int | None) -> Deferred:
        """Fires with one bounded `HistoryPage` for `hello`, a history request or a long poll.

        Without `since`: the newest `history_size` messages (never more than a page),
        `has_more` false (older ones are Django's public `before` pages). With `since`: the
        oldest page after that id, `has_more` true when the room holds more after the page.
        A page is at most `catchup_page` messages and about `catchup_bytes` encoded (always
        at least one message), so one request never holds a room's whole history.

        Answered from the recent buffer when it provably holds the page, else with one Django
        read; a read that reaches the room's end seeds the buffer for the next caller.
        """
        page = self._config.catchup_page
        cached = None
        if self._trusted(room):
            limit = min(self._config.history_size, page)
            cached = self._registry.history(room, since, limit)
        if cached is not None:
            if since is None:
                return succeed(self._bounded(cached, newest=True, has_more=False))
            return succeed(self._bounded(cached[:page], newest=False, has_more=len(cached) > page))
        return self._coalesced_fetch(room, since)

    def _bounded(self, messages: list[dict], newest: bool, has_more: bool) -> HistoryPage:
        """Cut a page to `catchup_bytes` (keeping the newest or the oldest end, at least one)."""
        budget = self._config.catchup_bytes
        ordered = reversed(messages) if newest else iter(messages)
        kept = 0
        size = 0
        for message in ordered:
            size += len(encode(message))
            if kept and size > budget:
                break
            kept += 1
        if kept == len(messages):
            return HistoryPage(messages, has_more)
        if newest:
            return HistoryPage(messages[len(messages) - kept :], has_more)
        return HistoryPage(messages[:kept], True)

    def _coalesced_fetch(self, room: str, since: int | None) -> Deferred:
        """One Django read per (room, since) at a time.

        After a restart every client of a room reconnects at once with the same `since`; without
        this each would read the same history from Django. A page that does not reach the room's
        end is final (a room's ids commit in order), so callers that arrived during the read
        share it. Otherwise they ask again when it ends: the read has seeded the recent buffer,
        merged with what was broadcast meanwhile (they were already members, buffering), so they
        are usually answered from memory, never from a read that started before they joined.
        """
        key = (room, since)
        waiting = self._history_waiting.get(key)
        if waiting is not None:
            d: Deferred = Deferred()
            waiting.append(d)
            return d
        self._history_waiting[key] = []

        def settle(result: Any) -> Any:
            for d in self._history_waiting.pop(key):
                if isinstance(result, HistoryPage) and result.has_more:
                    d.callback(result)
                else:
                    self.page(room, since).chainDeferred(d)
            return result

        d = self._ready(room) if self._ready is not None else succeed(None)
        d.addCallback(lambda _: self._fetch_history(room, since))
        return d.addBoth(settle)

    @inlineCallbacks
    def _fetch_history(self, room: str, since: int | None):
        page = self._config.catchup_page
        if since is None:
            limit = min(self._config.history_size, page)
            messages, older = yield self._django.latest_messages(room, limit)
            # The newest page is every message from its first id on; a short page is the room.
            complete_after = messages[0]["id"] - 1 if (messages and older) else 0
            self._registry.seed(room, messages, complete_after)
            return self._bounded(messages, newest=True, has_more=False)
        # One page, never the whole room: Django's `has_more` says whether more follow.
        messages, has_more = yield self._django.messages_after(room, since, page)
        if not has_more:
            # The page reaches the room's end: with what was broadcast meanwhile the buffer
            # holds everything after `since`. A page with more after it proves nothing there.
            self._registry.seed(room, messages, since)
        return self._bounded(messages, newest=False, has_more=has_more)
