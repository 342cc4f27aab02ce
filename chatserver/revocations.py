"""Revoked tickets, as data: "tickets for X minted at or before T are refused".

Django tells the chat server (docs/protocol.md, "Control API") when a right that admitted a
connection is gone: a user signed out, was deactivated or deleted (scope: the uid, every room), a
room's access rules changed (scope: the room's guest tickets, or all of its tickets), a room was
deleted (scope: all of the room's tickets), a member was removed from a private room (scope: that
uid's tickets for that room, key `<room>/<uid>`: a slug never holds a slash). Each such change is
stored here as one entry per scope holding the latest cut-off; a ticket is refused when its scope
has an entry whose cut-off is at or after the ticket's issue time (`Identity.issued_ms`,
milliseconds).

Memory stays bounded: an entry is kept for `keep` seconds (`CHAT_MAX_TICKET_TTL` plus the
signature window) and forgotten afterwards; by then every ticket it could refuse has expired,
because a ticket that lives longer than `CHAT_MAX_TICKET_TTL` is refused on its own
(`tickets.verify_ticket`, reason `too_long`). The number of entries is bounded by the rate of
signed control calls times `keep`. Standard library only; times come from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass

# Scopes of a revocation (docs/protocol.md): one uid everywhere; one room's guest tickets; all
# tickets of one room; one uid's tickets for one room.
USER = "user"
ROOM_GUESTS = "room_guests"
ROOM = "room"
MEMBER = "member"
SCOPES = (USER, ROOM_GUESTS, ROOM, MEMBER)


def member_key(room: str, uid: str) -> str:
    """The key of a MEMBER revocation: `<room>/<uid>`."""
    return f"{room}/{uid}"


def room_of(revocation: Revocation) -> str | None:
    """The room a revocation is about (None for USER: every room)."""
    if revocation.scope == USER:
        return None
    if revocation.scope == MEMBER:
        return revocation.key.partition("/")[0]
    return revocation.key


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revocation: `scope` (USER, ROOM_GUESTS or ROOM), its `key` (uid or room slug), and
    `before_ms`, Django's Unix time in milliseconds at or before which tickets are refused."""

    scope: str
    key: str
    before_ms: int

    def covers(self, room: str, uid: str, guest: bool) -> bool:
        """True when a connection of `uid` (a guest or not) in `room` is in this scope."""
        if self.scope == USER:
            return uid == self.key
        if self.scope == ROOM_GUESTS:
            return room == self.key and guest
        if self.scope == MEMBER:
            return self.key == member_key(room, uid)
        return room == self.key


class RevocationList:
    """The revocations still relevant, by scope and key; each forgotten `keep` seconds after it
    was last raised."""

    def __init__(self, keep: float) -> None:
        self._keep = keep
        # (scope, key) -> (before_ms, expires at [clock seconds]). Insertion order is expiry
        # order because every entry lives exactly `keep` and a raised entry is re-inserted.
        self._entries: dict[tuple[str, str], tuple[int, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, revocation: Revocation, now: float) -> None:
        """Remember `revocation` (a later cut-off for the same scope and key wins)."""
        self.sweep(now)
        key = (revocation.scope, revocation.key)
        previous = self._entries.pop(key, None)
        before_ms = revocation.before_ms
        if previous is not None:
            before_ms = max(before_ms, previous[0])
        self._entries[key] = (before_ms, now + self._keep)

    def refuses(self, room: str, uid: str, guest: bool, issued_ms: int, now: float) -> bool:
        """True when a ticket of `uid` for `room`, issued at `issued_ms`, was revoked."""
        self.sweep(now)
        if not self._entries:
            return False
        keys = [(USER, uid), (ROOM, room), (MEMBER, member_key(room, uid))]
        if guest:
            keys.append((ROOM_GUESTS, room))
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and issued_ms <= entry[0]:
                return True
        return False

    def sweep(self, now: float) -> None:
        """Forget entries past their expiry."""
        while self._entries:
            key, (_before, expires) = next(iter(self._entries.items()))
            if expires > now:
                return
            del self._entries[key]
