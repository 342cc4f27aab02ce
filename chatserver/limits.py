"""Budgets per identity and per client address, shared by both transports (docs/protocol.md,
"Limits").

One client is one identity (the ticket's uid) whatever number of sockets and long polls it
opens, and one address whatever number of identities it mints. `ClientLimits` keeps, per uid and
per address, a token bucket that every client frame and long-poll POST spends from, and the
number of open connections (sockets and held long polls) against a cap. Both tables stay bounded:
an entry with no open connection whose bucket has refilled is forgotten (checked at most every
`SWEEP_SECONDS` of clock time, amortised over the calls), so an entry outlives its last use by at
most `burst / rate + SWEEP_SECONDS`.

`client_address` names the address: the peer's, or behind a trusted proxy the last
`X-Forwarded-For` entry (the same rule as Django's `chat/ratelimits.py`: the proxy appends the
address it saw; anything before it was sent by the client and can be forged).
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any

from twisted.internet.interfaces import IReactorTime

from chatserver.ratelimit import TokenBucket

SWEEP_SECONDS = 10.0
UNKNOWN_ADDRESS = "0.0.0.0"  # noqa: S104 - a bucket name for "no usable address", never bound


def client_address(peer: str | None, forwarded_for: str | None, trust_proxy: bool) -> str:
    """The client's address as a normalised IP string.

    `peer` is the TCP peer's host; `forwarded_for` the raw `X-Forwarded-For` header (or None).
    Only with `trust_proxy` (`CHAT_BEHIND_PROXY`) is the header's last entry used. Without a
    usable address every such client shares one bucket (`0.0.0.0`), which errs on the side of
    limiting.
    """
    candidates = [peer or ""]
    if trust_proxy and forwarded_for:
        candidates.insert(0, forwarded_for.split(",")[-1].strip())
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return UNKNOWN_ADDRESS


def retry_after_header(seconds: float) -> bytes:
    """`Retry-After` header value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds))).encode("ascii")


def retry_after_value(seconds: float) -> float:
    """The `retry_after` field: seconds rounded up to milliseconds (never 0)."""
    return max(0.001, math.ceil(seconds * 1000) / 1000)


class _Entry:
    __slots__ = ("bucket", "connections")

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.connections = 0


class _Table:
    """Entries by key with one (rate, burst) and one connection cap."""

    def __init__(self, clock: IReactorTime, rate: float, burst: int, cap: int) -> None:
        self.clock = clock
        self.rate = rate
        self.burst = burst
        self.cap = cap
        self.entries: dict[str, _Entry] = {}

    def get(self, key: str) -> _Entry:
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = _Entry(TokenBucket(self.clock, self.rate, self.burst))
        return entry

    def sweep(self) -> None:
        for key, entry in list(self.entries.items()):
            if entry.connections <= 0 and entry.bucket.full():
                del self.entries[key]


class ClientLimits:
    """Token buckets and connection counts per uid and per client address.

    `rate`/`burst` (frames per second, tokens) apply per identity, `address_rate`/`address_burst`
    per address; `max_connections` caps one identity's open sockets plus held long polls,
    `max_address_connections` one address's.
    """

    def __init__(
        self,
        clock: IReactorTime,
        *,
        rate: float,
        burst: int,
        address_rate: float,
        address_burst: int,
        max_connections: int,
        max_address_connections: int,
    ) -> None:
        self._clock = clock
        self._identities = _Table(clock, rate, burst, max_connections)
        self._addresses = _Table(clock, address_rate, address_burst, max_address_connections)
        self._last_sweep = clock.seconds()

    @classmethod
    def from_config(cls, config: Any, clock: IReactorTime) -> ClientLimits:
        """The limits a `ChatServerConfig` names."""
        return cls(
            clock,
            rate=config.rate,
            burst=config.burst,
            address_rate=config.address_rate,
            address_burst=config.address_burst,
            max_connections=config.max_connections,
            max_address_connections=config.max_address_connections,
        )

    def _maybe_sweep(self) -> None:
        now = self._clock.seconds()
        if now - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = now
            self._identities.sweep()
            self._addresses.sweep()

    def connect(self, uid: str, address: str) -> bool:
        """Count one more open connection; False (nothing counted) when either cap is reached."""
        self._maybe_sweep()
        identity = self._identities.get(uid)
        origin = self._addresses.get(address)
        if identity.connections >= self._identities.cap:
            return False
        if origin.connections >= self._addresses.cap:
            return False
        identity.connections += 1
        origin.connections += 1
        return True

    def disconnect(self, uid: str, address: str) -> None:
        """Count one open connection less (after a `connect` that returned True)."""
        for table, key in ((self._identities, uid), (self._addresses, address)):
            entry = table.entries.get(key)
            if entry is not None and entry.connections > 0:
                entry.connections -= 1

    def spend(self, uid: str, address: str) -> float | None:
        """Spend one token of the identity and one of the address.

        None when both had one; otherwise nothing is spent and the answer is the seconds until
        both have one again (the `retry_after` of the refusal).
        """
        self._maybe_sweep()
        identity = self._identities.get(uid).bucket
        origin = self._addresses.get(address).bucket
        if identity.has_token() and origin.has_token():
            identity.allow()
            origin.allow()
            return None
        return max(identity.wait(), origin.wait())

    def connections(self, uid: str) -> int:
        """Open connections of an identity."""
        entry = self._identities.entries.get(uid)
        return entry.connections if entry is not None else 0

    def size(self) -> int:
        """Entries kept (identities plus addresses): bounded by the sweep."""
        return len(self._identities.entries) + len(self._addresses.entries)
