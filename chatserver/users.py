"""Who listens to which person's feed: the user registry beside the room registry.

A feed connection (a socket on `/ws/@me`, or a long-poll mailbox of `/poll/@me`) follows one
signed-in user, keyed by Django's user id (an int: the ticket's `user_id`). Django addresses
user events with an explicit recipient list (`POST /internal/users/events`, chatserver/control.py);
the fan-out (chatserver/fanout.py, `publish_user_event`) looks each recipient up here and hands
every one of its connections one `UserBroadcast`, encoded at most once however many receive it.

Pure bookkeeping, no I/O. Memory: one set per user with a connection, dropped with its last one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson


class UserBroadcast:
    """One user event (a feed frame `{"type": ...}`), encoded at most once per transport.

    Feed members implement `deliver(broadcast)` as room members do; `prepared()` is the
    WebSocket frame shared by every socket, `cached(key, build)` anything else built once.
    """

    __slots__ = ("frame", "_prepare", "_prepared", "_cached")

    def __init__(self, frame: dict, prepare: Callable[[bytes], Any]) -> None:
        self.frame = frame
        self._prepare = prepare
        self._prepared = None
        self._cached: dict[str, Any] = {}

    def prepared(self) -> Any:
        """The WebSocket frame, framed once for every socket."""
        if self._prepared is None:
            self._prepared = self._prepare(orjson.dumps(self.frame))
        return self._prepared

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """`build()` once per broadcast."""
        if key not in self._cached:
            self._cached[key] = build()
        return self._cached[key]


class UserRegistry:
    """user id -> the feed connections of that user in this process."""

    def __init__(self) -> None:
        self._feeds: dict[int, set[object]] = {}

    def follow(self, user_id: int, member: object) -> None:
        """Start delivering `user_id`'s events to `member`."""
        self._feeds.setdefault(user_id, set()).add(member)

    def unfollow(self, user_id: int, member: object) -> None:
        """Stop delivering to `member` (no error when it was not following)."""
        members = self._feeds.get(user_id)
        if members is None:
            return
        members.discard(member)
        if not members:
            del self._feeds[user_id]

    def members(self, user_id: int) -> set[object]:
        """The feed connections of `user_id` here (empty when none)."""
        return self._feeds.get(user_id, set())

    def deliver(self, users: Iterable[int], broadcast: UserBroadcast) -> int:
        """Hand `broadcast` to every connection of every user in `users`; returns how many.

        A user listed twice is reached once. Copies each set: a delivery may close a member (a
        slow reader) and so change it.
        """
        reached = 0
        for user_id in set(users):
            for member in list(self._feeds.get(user_id, ())):
                member.deliver(broadcast)
                reached += 1
        return reached

    def users(self) -> int:
        """Users with at least one feed connection here."""
        return len(self._feeds)

    def connections(self) -> int:
        """Feed connections here."""
        return sum(len(members) for members in self._feeds.values())

    def all_members(self) -> list[object]:
        """Every feed connection here (for revocations and shutdown)."""
        return [member for members in self._feeds.values() for member in members]
