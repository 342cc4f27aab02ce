"""A log throttle for lines that unauthenticated clients can cause (refused tickets, foreign
origins, slow or oversize requests): at most `burst` lines per kind per `interval` seconds.

Without it a client that opens refused connections in a loop writes the log as fast as it can
connect. Past the budget, lines of that kind are counted, not written; the first line of the
kind in a later window is preceded by one line saying how many were suppressed. Windows run on
the injected clock; the table holds one entry per kind (a fixed set named in code).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger, LogLevel


class _Window:
    __slots__ = ("start", "written", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.written = 0
        self.suppressed = 0


class LogThrottle:
    """`burst` lines per kind per `interval` seconds; see the module docstring."""

    def __init__(self, clock: IReactorTime, burst: int = 20, interval: float = 60.0) -> None:
        self._clock = clock
        self._burst = burst
        self._interval = interval
        self._windows: dict[str, _Window] = {}

    def emit(
        self, logger: Logger, kind: str, format: str, level: LogLevel = LogLevel.info, **kw: Any
    ) -> bool:
        """Write `format` (a twisted.logger format string) at `level` unless `kind` is over
        its budget; True when written."""
        now = self._clock.seconds()
        window = self._windows.get(kind)
        if window is None:
            window = self._windows[kind] = _Window(now)
        elif now - window.start >= self._interval:
            if window.suppressed:
                logger.info(
                    "suppressed {count} log lines of kind {kind} in the last {seconds:.0f} s",
                    count=window.suppressed,
                    kind=kind,
                    seconds=now - window.start,
                )
            window.start, window.written, window.suppressed = now, 0, 0
        if window.written >= self._burst:
            window.suppressed += 1
            return False
        window.written += 1
        logger.emit(level, format, **kw)
        return True

    def suppressed(self, kind: str) -> int:
        """Lines of `kind` suppressed in its current window."""
        window = self._windows.get(kind)
        return window.suppressed if window is not None else 0
