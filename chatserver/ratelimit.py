"""Per-sender rate limiting: a token bucket plus a flood counter, driven by an injected clock."""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime

FLOOD_WINDOW_SECONDS = 10.0


class TokenBucket:
    """`rate` tokens per second up to `burst`; `allow()` spends one token when there is one.

    Refusals are counted in a fixed window so a client that keeps hammering past the limit can be
    disconnected (`flooding`). Slots keep it small: there is one per connection.
    """

    __slots__ = ("_clock", "_rate", "_burst", "_tokens", "_last", "_refusals", "_window_start")

    def __init__(self, clock: IReactorTime, rate: float, burst: int) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = clock.seconds()
        self._refusals = 0
        self._window_start = self._last

    def allow(self) -> bool:
        """Spend a token if one is available; count a refusal otherwise."""
        now = self._clock.seconds()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        if now - self._window_start > FLOOD_WINDOW_SECONDS:
            self._window_start = now
            self._refusals = 0
        self._refusals += 1
        return False

    def refusals(self) -> int:
        """Refusals in the current flood window."""
        return self._refusals
