"""CHAT_LOG_LEVEL and CHAT_LOG_FORMAT: what the chat server's log observer writes, and how."""

from __future__ import annotations

import io
import json

import pytest
from twisted.logger import Logger

from chatserver import logobserver
from chatserver.config import ChatServerConfig, ConfigError
from chatserver.logobserver import make_log_observer


def written(env: dict[str, str]) -> str:
    """Emit one event per level through the observer built from `env`; return what it wrote."""
    config = ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s", **env})
    out = io.StringIO()
    log = Logger(namespace="chatserver.protocol", observer=make_log_observer(config, out))
    log.debug("socket opened in {room}", room="lobby")
    log.info("room {room} archived: closed {closed}", room="lobby", closed=2)
    log.warn("persisting {count} message(s) failed", count=3)
    return out.getvalue()


def test_debug_lines_are_off_by_default():
    """At the default level, socket open/close (debug) is dropped; info and up are written."""
    text = written({})
    assert "socket opened" not in text
    assert "room lobby archived: closed 2" in text
    assert "persisting 3 message(s) failed" in text


def test_log_level_turns_debug_on_and_info_off():
    """CHAT_LOG_LEVEL=debug shows socket lines; =warning (or warn) keeps warnings alone."""
    assert "socket opened in lobby" in written({"CHAT_LOG_LEVEL": "debug"})
    for level in ("warning", "WARN"):
        text = written({"CHAT_LOG_LEVEL": level})
        assert "archived" not in text and "persisting 3 message(s) failed" in text


def test_json_format_is_one_object_per_line():
    """CHAT_LOG_FORMAT=json: every line is a JSON object with the level, namespace and text."""
    lines = written({"CHAT_LOG_FORMAT": "json", "CHAT_LOG_LEVEL": "debug"}).splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["text"] for e in events] == [
        "socket opened in lobby",
        "room lobby archived: closed 2",
        "persisting 3 message(s) failed",
    ]
    assert [e["log_level"]["name"] for e in events] == ["debug", "info", "warn"]
    assert {e["log_namespace"] for e in events} == {"chatserver.protocol"}
    assert all(isinstance(e["log_time"], float) for e in events)


@pytest.mark.parametrize(
    "env, name",
    [({"CHAT_LOG_LEVEL": "verbose"}, "CHAT_LOG_LEVEL"), ({"CHAT_LOG_FORMAT": "xml"}, "FORMAT")],
)
def test_bad_values_are_refused_by_name(env: dict[str, str], name: str):
    """An unknown level or format stops the start with the variable's name."""
    with pytest.raises(ConfigError, match=name):
        ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s", **env})


def test_the_logger_factory_for_plugin_runs_reads_the_environment(monkeypatch, capsys):
    """`twistd --logger chatserver.logobserver.from_environ`: the same level and format rules."""
    monkeypatch.setenv("CHAT_SHARED_SECRET", "s")
    monkeypatch.setenv("CHAT_LOG_FORMAT", "json")
    monkeypatch.setenv("CHAT_LOG_LEVEL", "warn")
    log = Logger(namespace="chatserver.hub", observer=logobserver.from_environ())
    log.info("dropped below the level")
    log.warn("kept {n}", n=1)
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["text"] for line in lines] == ["kept 1"]
