"""Fixtures of the fault drills: a LiveSystem of their own, never the session's shared `live`.

Drills stop, kill and restart processes, so each drill module gets its own Django and chat
server (module scope keeps the start-up cost to one per module) and every drill leaves both
running again for the next one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.support.live import LiveSystem

_rooms = itertools.count(1)


@pytest.fixture(scope="module")
def drill_system(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveSystem]:
    """A real Django (gunicorn) and chat server (twistd) for one drill module.

    A module may set `DRILL_ENV` (a dict) to tune the processes, e.g. a lower outgoing bound.
    """
    extra_env = getattr(request.module, "DRILL_ENV", None)
    with LiveSystem(tmp_path_factory.mktemp("drill"), extra_env=extra_env) as system:
        yield system


@pytest.fixture
def drill_room(drill_system: LiveSystem) -> str:
    """A fresh guest room for one drill."""
    slug = f"drill-{next(_rooms)}"
    drill_system.create_room(slug, guests=True)
    return slug


@pytest.fixture
def restore(drill_system: LiveSystem) -> Iterator[LiveSystem]:
    """The drill system; whatever a drill stopped is started again afterwards."""
    yield drill_system
    if not drill_system.django.running():
        drill_system.start_django()
    if not drill_system.chatserver.running():
        drill_system.start_chatserver()
