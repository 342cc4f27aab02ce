"""Fault drills on the processes: Django killed, the chat server killed, a graceful restart.

Real Django and chat server processes, real reconnecting clients (`tests/support/load.py`) under
steady load. The drills judge what the clients saw and what Django stored afterwards: every
message exactly once in the history, delivered once to every client, never echoed before it
was stored.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.live import LiveSystem, wait_until
from tests.support.load import Backoff, RoomClient, SessionTickets, metric_value

# The graceful-stop drill restarts Django while the chat server drains: give the drain time
# for a slow gunicorn start on a loaded machine (the default is 10 s).
DRILL_ENV = {"CHAT_SHUTDOWN_TIMEOUT": "40"}


class SteadyLoad(threading.Thread):
    """Each client sends one message every `interval` seconds (below the rate limit)."""

    def __init__(self, clients: list[RoomClient], interval: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.clients = clients
        self.interval = interval
        self.sent: list[tuple[float, str]] = []  # (time, nonce)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            for client in self.clients:
                self.sent.append((time.monotonic(), client.send()))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


@pytest.fixture
def clients(restore: LiveSystem, drill_room: str) -> Iterator[list[RoomClient]]:
    """Started clients are stopped after the drill, whatever happened."""
    started: list[RoomClient] = []
    yield started
    for client in started:
        client.stop()


def start_clients(
    system: LiveSystem, slug: str, count: int, into: list[RoomClient], **kw
) -> list[RoomClient]:
    for i in range(count):
        client = RoomClient(f"c{i}", SessionTickets(system.django_url, slug), **kw)
        client.start()
        into.append(client)
    for client in into:
        client.wait_connected()
    return into


def wait_all_acknowledged(clients: list[RoomClient], timeout: float = 40.0) -> None:
    wait_until(lambda: all(not c.pending() for c in clients), timeout=timeout, interval=0.1)


def assert_exactly_once(system: LiveSystem, slug: str, clients: list[RoomClient], sent: set[str]):
    """Stored once per nonce, every client saw every stored message, live at most once."""
    stored = system.stored_messages(slug)
    nonces = [m["nonce"] for m in stored]
    assert len(nonces) == len(set(nonces)), "a nonce was stored twice"
    assert set(nonces) == sent
    ids = {m["id"] for m in stored}
    for client in clients:
        # History plus live: every client ends up with every message (catch-up included).
        assert set(client.messages) >= ids, f"{client.label} misses messages"
        duplicates = {i: n for i, n in client.live_counts.items() if n > 1}
        assert not duplicates, f"{client.label} got live duplicates {duplicates}"


def django_outage(system: LiveSystem, slug: str, clients: list[RoomClient], outage: float):
    start_clients(system, slug, 4, clients)
    load = SteadyLoad(clients)
    load.start()
    try:
        wait_until(lambda: len(load.sent) >= 8 and all(c.echo_at for c in clients))
        system.django.stop(signal.SIGKILL)  # the whole gunicorn group, no goodbye
        killed = time.monotonic()
        time.sleep(outage)  # the outage itself is what is being drilled, not a wait
        during = [nonce for at, nonce in load.sent if at > killed]
        restarting = time.monotonic()
        system.start_django()
        wait_until(lambda: len(load.sent) > len(during) + 8)
    finally:
        load.stop()
    wait_all_acknowledged(clients)
    assert during, "no message was sent during the outage"
    for client in clients:
        # Pending while Django was down, echoed (sent) only after it came back.
        for nonce in during:
            if nonce in client.echo_at:
                assert client.echo_at[nonce] > restarting, f"{nonce} echoed before storage"
        assert len(client.opened) == 1, f"{client.label} was disconnected"
    assert_exactly_once(system, slug, clients, {nonce for _, nonce in load.sent})


def test_django_killed_for_5s_loses_nothing(restore, drill_room, clients):
    """Django SIGKILLed for ~5 s under load: every message stored and delivered exactly once."""
    django_outage(restore, drill_room, clients, outage=5.0)


@pytest.mark.slow
def test_django_killed_for_20s_loses_nothing(restore, drill_room, clients):
    """Django SIGKILLed for 20 s under load: stored once, delivered once, pending until stored."""
    django_outage(restore, drill_room, clients, outage=20.0)


def test_chatserver_killed_clients_reconnect_spread_out_and_resend(restore, drill_room, clients):
    """The chat server SIGKILLed under load: jittered reconnects, catch-up, resends, no loss."""
    system = restore
    start_clients(system, drill_room, 8, clients, backoff=Backoff(base=0.5, cap=4.0))
    load = SteadyLoad(clients, interval=0.4)
    load.start()
    try:
        wait_until(lambda: all(c.echo_at for c in clients))
        system.kill_chatserver()
        killed = time.monotonic()
        wait_until(lambda: not any(c.is_connected() for c in clients), timeout=10)
        system.start_chatserver()
        wait_until(lambda: all(len(c.opened) >= 2 for c in clients), timeout=30)
        wait_until(lambda: len([1 for at, _ in load.sent if at > time.monotonic() - 1]) > 8)
    finally:
        load.stop()
    wait_all_acknowledged(clients)
    assert_exactly_once(system, drill_room, clients, {nonce for _, nonce in load.sent})
    # Reconnects are spread out: the first attempt of each client after the kill.
    # Full jitter draws each first delay from [0, 0.5 s): a synchronized stampede would put all
    # eight within a few milliseconds. The bounds are loose enough that honest jitter fails them
    # with a probability around 1e-4 (a range under 0.1 s, or 7 of 8 inside one 50 ms window).
    first = sorted(min(t for t in c.attempts if t > killed) - killed for c in clients)
    assert first[-1] - first[0] > 0.1, f"reconnects not spread: {first}"
    bunched = max(sum(1 for t in first if s <= t < s + 0.05) for s in first)
    assert bunched < len(first) - 1, f"a stampede: {first}"


def test_sigterm_with_queued_messages_stores_them_all_and_closes_1001(restore, drill_room, clients):
    """SIGTERM while messages wait for a dead Django: each is stored before exit; 1001 closes."""
    system = restore
    start_clients(system, drill_room, 3, clients, stop_on=frozenset({1001, 1008, 4004}))
    system.django.stop(signal.SIGKILL)
    sent = [c.send() for c in clients for _ in range(5)]
    # Every message is in the chat server's persistence queue, waiting for Django.
    wait_until(
        lambda: metric_value(system.chat_internal_url, "chat_persist_queue_depth") == len(sent)
    )
    chatserver = system.chatserver.proc
    os.killpg(chatserver.pid, signal.SIGTERM)
    system.start_django()  # while the chat server drains its queue
    status = chatserver.wait(timeout=40)
    # twistd re-raises the signal once it has shut down cleanly, so the status says SIGTERM.
    assert status in (0, -signal.SIGTERM)
    wait_until(lambda: all(c.final_close is not None for c in clients), timeout=10)
    assert {c.final_close for c in clients} == {1001}
    stored = [m["nonce"] for m in system.stored_messages(drill_room)]
    assert sorted(stored) == sorted(sent)
    for client in clients:
        # What was stored during the drain was delivered before the 1001 close.
        assert not client.pending(), f"{client.label} did not get its messages"
