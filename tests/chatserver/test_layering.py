"""The layering docs/architecture.md describes, checked on the source: the transports talk to
the hub only through its verbs (never to its registry, fan-out, metrics, limits, log throttle,
persistence queue, config or clock), and the long-poll transport does not import its sibling."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRANSPORTS = ["chatserver/protocol.py", "chatserver/longpoll.py", "chatserver/feedpoll.py"]
COLLABORATORS = {
    "registry",
    "fanout",
    "metrics",
    "limits",
    "_limits",
    "log_throttle",
    "persistence",
    "config",
    "clock",
    "revocations",
    "django",
    "bus",
}


def reaches(path: str) -> list[str]:
    """`hub.<collaborator>` attribute chains in a module (`self.hub.x`, `self.factory.hub.x`)."""
    found = []
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if (
            isinstance(node, ast.Attribute)
            and node.attr in COLLABORATORS
            and (
                (isinstance(node.value, ast.Attribute) and node.value.attr == "hub")
                or (isinstance(node.value, ast.Name) and node.value.id == "hub")
            )
        ):
            found.append(f"{path}:{node.lineno} hub.{node.attr}")
    return found


@pytest.mark.parametrize("path", TRANSPORTS)
def test_transports_use_only_the_hubs_verbs(path):
    """No `hub.registry`, `hub.fanout`, `hub.config`, ... in a transport."""
    assert reaches(path) == []


def test_the_check_finds_a_reach_through(tmp_path, monkeypatch):
    """The check can fail: a module that reaches through the hub is reported."""
    (tmp_path / "chatserver").mkdir()
    (tmp_path / "chatserver/bad.py").write_text("def f(hub):\n    return hub.registry.online\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert reaches("chatserver/bad.py") == ["chatserver/bad.py:2 hub.registry"]


def test_long_polling_does_not_import_the_socket_transport():
    """Admission helpers live in chatserver/admission.py, not in protocol.py."""
    tree = ast.parse((ROOT / "chatserver/longpoll.py").read_text())
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "chatserver.protocol" not in modules and "chatserver.admission" in modules
