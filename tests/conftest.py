"""Shared fixtures: the real Django + chat server processes for integration and browser tests."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.live import LiveSystem


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """One real Django (gunicorn) and one real `twistd -n -y chatserver.tac` for the session.

    Tests that stop or restart a process start it again before they finish.
    """
    with LiveSystem(tmp_path_factory.mktemp("live")) as system:
        yield system


@pytest.fixture
def live_room(live: LiveSystem, request: pytest.FixtureRequest) -> str:
    """A fresh guest room named after the test, so tests never see each other's messages."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40] + "-room"
    live.create_room(slug, guests=True)
    return slug
