"""Rate-limiting primitives on an injected clock: a token bucket and a flood counter.

`TokenBucket` is the budget (shared per identity and per client address by
`chatserver.limits.ClientLimits`); `FloodCounter` counts one connection's refusals in a fixed
window so a client that keeps hammering past its budget can be disconnected (close 1008).
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

FLOOD_WINDOW_SECONDS = 10.0


class TokenBucket:
    """`rate` tokens per second up to `burst`; `allow()` spends one token when there is one.

    Refusals are counted in a fixed window of `FLOOD_WINDOW_SECONDS` (`refusals()`). Slots keep it
    small: there is one per identity and one per client address.
    """

    __slots__ = ("_clock", "_rate", "_burst", "_tokens", "_last", "_flood")

    def __init__(self, clock: IReactorTime, rate: float, burst: int) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = clock.seconds()
        self._flood = FloodCounter(clock)

    def _refill(self) -> None:
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now

    def allow(self) -> bool:
        """Spend a token if one is available; count a refusal otherwise."""
        self._refill()
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self._flood.count()
        return False

    def has_token(self) -> bool:
        """True when `allow()` would succeed now (spends nothing)."""
        self._refill()
        return self._tokens >= 1.0

    def wait(self) -> float:
        """Seconds until the next token (0.0 when one is available now; inf at rate 0)."""
        self._refill()
        if self._tokens >= 1.0:
            return 0.0
        if self._rate <= 0:
            return float("inf")
        return (1.0 - self._tokens) / self._rate

    def full(self) -> bool:
        """True when the bucket has refilled to its burst: forgetting it changes nothing."""
        self._refill()
        return self._tokens >= self._burst

    def refusals(self) -> int:
        """Refusals in the current flood window."""
        return self._flood.refusals()


class FloodCounter:
    """Refusals of one client in a fixed window (`FLOOD_WINDOW_SECONDS`)."""

    __slots__ = ("_clock", "_refusals", "_window_start")

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._refusals = 0
        self._window_start = clock.seconds()

    def count(self) -> int:
        """Count one refusal; returns the refusals in the current window."""
        now = self._clock.seconds()
        if now - self._window_start > FLOOD_WINDOW_SECONDS:
            self._window_start = now
            self._refusals = 0
        self._refusals += 1
        return self._refusals

    def refusals(self) -> int:
        """Refusals in the current window."""
        return self._refusals
