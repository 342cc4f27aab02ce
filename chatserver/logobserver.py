"""The chat server's log observer: `CHAT_LOG_LEVEL` and `CHAT_LOG_FORMAT` applied to twisted.logger.

`chatserver.tac` sets it as the application's `ILogObserver`, which twistd uses instead of its own
(twistd's `--logger` option still takes precedence). Lines go to standard output, as with
`twistd -n` and no `--logfile`: the service manager (or `make run`'s terminal) collects them.

- Events below the configured level are dropped before they are formatted, so the per-socket
  `debug` lines cost nothing at the default `info`.
- `text` is twistd's own line format; `json` is Twisted's `jsonFileLogObserver` with one JSON
  object per line (no RFC 7464 record separator), each carrying the formatted line as `text`.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    jsonFileLogObserver,
    textFileLogObserver,
)
from zope.interface import implementer

from chatserver.config import ChatServerConfig


@implementer(ILogObserver)
class _WithText:
    """Adds the formatted message as `text`, so a log reader needs no Twisted to show it."""

    def __init__(self, observer: ILogObserver):
        self._observer = observer

    def __call__(self, event: dict[str, Any]) -> None:
        self._observer({**event, "text": formatEvent(event)})


def make_log_observer(config: ChatServerConfig, out: IO[str] | None = None) -> ILogObserver:
    """The observer twistd logs through: `config.log_level` and up, in `config.log_format`."""
    stream = out if out is not None else sys.stdout
    if config.log_format == "json":
        observer: ILogObserver = _WithText(jsonFileLogObserver(stream, recordSeparator=""))
    else:
        observer = textFileLogObserver(stream)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.levelWithName(config.log_level))
    return FilteringLogObserver(observer, [predicate])


def from_environ() -> ILogObserver:
    """The observer of `CHAT_LOG_LEVEL` / `CHAT_LOG_FORMAT`, for twistd's `--logger` option.

    A plugin run (`twistd chatserver`) has no tac to install the observer, and twistd builds the
    application after the plugin's service, so it is named on the command line instead:
    `twistd --logger chatserver.logobserver.from_environ -n chatserver ...` (twistd calls the
    named callable with no arguments). Raises `ConfigError` like the service itself would.
    """
    return make_log_observer(ChatServerConfig.from_environ(os.environ))
