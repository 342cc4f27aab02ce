"""The benchmark's Channels peer and its rate sweep analysis.

The peer (bench/channels_peer, the Channels tutorial chat on Daphne) is started the way
`python -m bench` starts it (`bench.targets.ChannelsTarget`, a free port) and must relay a message
between real websocket clients; the load generator must drive it in the tutorial's dialect; and the
sweep's knee (the first offered rate at which a system loses or delays messages) is checked on
synthetic numbers. No test here times anything: the benchmark itself is never a test.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.peers import Sweep, failures, knee
from bench.scenarios import FanoutLoad
from bench.targets import ROOT, ChannelsTarget
from tests.support.live import RedisServer


def point(offered: float, p99: float = 20.0, lost: int = 0, **extra: object) -> dict:
    return {
        "offered_per_s": offered,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "lost": lost,
        "duplicated": 0,
        "out_of_order": 0,
        **extra,
    }


# -- the knee, on synthetic numbers -------------------------------------------------------------


def test_knee_is_the_first_rate_that_loses_messages() -> None:
    """Loss at 5,000/s after clean points below it: the knee is 5,000, the last good 2,000,
    whatever order the points come in."""
    points = [point(5000, lost=3), point(500), point(10000, lost=90), point(2000)]
    assert knee(points) == {
        "first_failing_per_s": 5000,
        "last_good_per_s": 2000,
        "why": ["3 lost"],
        "isolated_failures": [],
    }


def test_an_isolated_failure_below_a_held_rate_is_not_the_knee() -> None:
    """A latency spike at 1,000/s with 2,000/s holding again: the knee is where failing starts
    for good (10,000/s), and the spike is reported as isolated."""
    points = [point(500), point(1000, p99=1200), point(2000), point(10000, lost=5), point(20000)]
    points[-1]["lost"] = 40
    found = knee(points)
    assert found["first_failing_per_s"] == 10000
    assert found["last_good_per_s"] == 2000
    assert found["isolated_failures"] == [1000]


def test_knee_is_the_first_rate_whose_p99_is_over_the_limit() -> None:
    """Delaying counts like losing: p99 over 1 s (the default limit) is a failing point, exactly
    1 s is not; a custom limit moves the knee."""
    points = [point(500, p99=300), point(1000, p99=1000), point(2000, p99=1001)]
    assert knee(points)["first_failing_per_s"] == 2000
    assert knee(points)["last_good_per_s"] == 1000
    assert knee(points)["why"] == ["p99 1001 ms > 1000 ms"]
    assert knee(points, p99_limit_ms=200)["first_failing_per_s"] == 500
    assert knee(points, p99_limit_ms=200)["last_good_per_s"] is None


def test_knee_counts_nothing_delivered_duplicates_order_and_errors_as_failing() -> None:
    """A point with no latency at all (nothing arrived: NaN), a duplicate, a reordering, or a
    measurement that failed is past the knee."""
    assert failures(point(1, p99=math.nan)) == ["p99 nan ms > 1000 ms"]
    assert failures(point(1, duplicated=2)) == ["2 duplicated"]
    assert failures(point(1, out_of_order=1)) == ["1 out of order"]
    assert failures({"offered_per_s": 1, "error": "RuntimeError: boom"}) == [
        "error: RuntimeError: boom"
    ]
    assert failures(point(1, lost=1, p99=5000)) == ["1 lost", "p99 5000 ms > 1000 ms"]


def test_knee_not_reached_when_every_rate_holds() -> None:
    """No failing point: no knee, and the highest rate tried is reported as held."""
    assert knee([point(500), point(40000)]) == {
        "first_failing_per_s": None,
        "last_good_per_s": 40000,
        "why": [],
        "isolated_failures": [],
    }


def test_sweep_drops_a_system_after_two_failing_rates_in_a_row(monkeypatch) -> None:
    """The sweep loop (its measurements replaced by synthetic points): a system failing at two
    rates in a row is not loaded at higher rates; one with a single spike goes on; each gets
    its knee."""
    from types import SimpleNamespace

    from bench import peers

    verdicts = {
        "steady": {1000: point(1000, p99=1500), 2000: point(2000, lost=9)},
        "spiky": {1000: point(1000, p99=1500)},
    }
    measured: list[tuple[str, float]] = []

    def fake_measure(target, lg, prefix, load) -> dict:
        offered = load.rate_per_sender * 1000  # 10 rooms x 2 senders x 50 sockets
        measured.append((target.name, offered))
        return verdicts[target.name].get(offered, point(offered))

    monkeypatch.setattr(peers, "measure", fake_measure)
    systems = [SimpleNamespace(name=n, chat_pids=[], django_pids=[]) for n in verdicts]
    plan = Sweep(FanoutLoad(10, 50, 2, 0.0, 5.0), (500, 1000, 2000, 5000))
    out = peers.sweep(systems, lg=None, prefix="p", plan=plan)
    assert [rate for name, rate in measured if name == "steady"] == [500, 1000, 2000]
    assert [rate for name, rate in measured if name == "spiky"] == [500, 1000, 2000, 5000]
    assert out["systems"]["steady"]["knee"]["first_failing_per_s"] == 1000
    assert out["systems"]["spiky"]["knee"]["first_failing_per_s"] is None
    assert out["systems"]["spiky"]["knee"]["isolated_failures"] == [1000]
    assert out["load"]["offered_per_s"] == [500, 1000, 2000, 5000]


def test_sweep_offers_the_same_deliveries_per_second_to_every_shape() -> None:
    """The offered rate is in deliveries/s: rooms x senders x messages/s x sockets per room."""
    load = Sweep(FanoutLoad(10, 50, 2, 0.0, 5.0), (5000,)).load_at(5000)
    assert load.rate_per_sender == 5.0
    assert (load.rooms, load.clients_per_room, load.senders_per_room) == (10, 50, 2)


# -- the Channels peer under Daphne -------------------------------------------------------------


async def _relay(target: ChannelsTarget, text: str) -> list[dict]:
    """Two clients in one room: the first sends, both must receive the tutorial's frame."""
    from websockets.asyncio.client import connect

    url = target.ws_url("bench-peer-room")
    async with (
        connect(url, origin=target.origin, open_timeout=30) as first,
        connect(url, origin=target.origin, open_timeout=30) as second,
    ):
        await first.send(json.dumps({"message": text}))
        return [json.loads(await asyncio.wait_for(ws.recv(), 30)) for ws in (first, second)]


def _closed(target: ChannelsTarget) -> Iterator[ChannelsTarget]:
    try:
        yield target
    finally:
        target.close()


@pytest.fixture
def memory_peer() -> Iterator[ChannelsTarget]:
    yield from _closed(ChannelsTarget("memory"))


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if not Path(RedisServer.BINARY).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{RedisServer.BINARY} is required in CI")
        pytest.skip(f"{RedisServer.BINARY} is not installed")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.integration
def test_channels_peer_relays_a_message_between_two_clients(memory_peer: ChannelsTarget) -> None:
    """The tutorial chat (in-memory layer) starts under Daphne on a free port, relays one
    message to both sockets of the room as `{"message": ...}`, and its process is gone after."""
    with memory_peer.running():
        (pid,) = memory_peer.chat_pids
        frames = asyncio.run(_relay(memory_peer, "hello from one socket"))
        assert memory_peer.saved_messages() == 0  # the in-memory variant saves nothing
    assert frames == [{"message": "hello from one socket"}] * 2
    assert memory_peer.chat_pids == []
    assert not Path(f"/proc/{pid}").exists()  # stopped and reaped


@pytest.mark.integration
@pytest.mark.redis
def test_channels_peer_on_redis_saves_then_relays(private_redis: RedisServer) -> None:
    """The Redis variant (channels-redis, message saved in the consumer) relays the message,
    stores exactly one row for it, and leaves no key of its prefix in Redis once closed."""
    import redis

    peer = ChannelsTarget("redis", private_redis.url, save=True)
    try:
        with peer.running():
            frames = asyncio.run(_relay(peer, "saved then sent"))
            assert peer.saved_messages() == 1
            assert peer.redis_pids == [private_redis.process.pid]
    finally:
        peer.close()
    assert frames == [{"message": "saved then sent"}] * 2
    client = redis.Redis.from_url(private_redis.url)
    try:
        assert list(client.scan_iter(match=f"{peer.prefix}*")) == []
    finally:
        client.close()


@pytest.mark.integration
def test_load_generator_drives_the_peer_in_the_tutorial_dialect(
    memory_peer: ChannelsTarget,
) -> None:
    """The benchmark's own measurement (bench.peers.measure: load processes, tutorial frames)
    sees every message of a tiny load delivered exactly once to every socket of its room."""
    from bench.loadgen import LoadGenerator
    from bench.peers import measure

    load = FanoutLoad(
        rooms=2, clients_per_room=3, senders_per_room=1, rate_per_sender=5.0, duration_s=1.0
    )
    with LoadGenerator(workers=1) as lg:
        result = measure(memory_peer, lg, "bench-peer-test", load)
    assert result["messages_sent"] > 0
    assert result["expected"] == 3 * result["messages_sent"]
    assert result["delivered"] == result["expected"]
    assert (result["lost"], result["duplicated"], result["out_of_order"]) == (0, 0, 0)
    assert memory_peer.chat_pids == []  # measure() stopped the Daphne it started


def test_channels_peer_imports_neither_chat_nor_chatserver() -> None:
    """The peer stands for what a tutorial reader builds: loading its ASGI application (settings,
    routing, consumer, model) must not import this project's `chat` or `chatserver`."""
    code = (
        "import sys, django\n"
        "import bench.channels_peer.asgi\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('chat', 'chatserver'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.channels_peer.settings"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert shutil.which("daphne", path=str(Path(sys.executable).parent))  # installed by [bench]


def test_an_interrupted_phase_leaves_the_load_generator_refusing_further_phases() -> None:
    """A phase cut short (here: the coordinator stops waiting at once) leaves a reply owed; the
    generator must refuse every later request (OutOfStep) rather than read that stale reply as
    the answer to the next one, which is how an interrupted sweep used to go on measuring."""
    import time

    from bench.loadgen import LoadGenerator, OutOfStep

    with LoadGenerator(workers=1) as lg:
        start = time.monotonic_ns() + 10**9
        run = ("run", start, start + 10**9, "t", "rate", 1.0, 1, 1.0, 1.0)
        with pytest.raises(TimeoutError):
            lg._ask_all([run], timeout=0)
        with pytest.raises(OutOfStep):
            lg.close()


def test_knee_of_several_runs_is_taken_from_their_merged_points() -> None:
    """Two runs merged point by point (medians): the knee is recomputed from the merged points,
    so its first failing and last held rates come from one sweep, and each run's own knee is
    kept beside it."""
    from bench.peers import rejudge

    runs = [
        {"systems": {"s": {"points": [point(500), point(1000, p99=1500)]}}},
        {"systems": {"s": {"points": [point(500), point(1000)]}}},
    ]
    for run in runs:
        run["systems"]["s"]["knee"] = knee(run["systems"]["s"]["points"])
    merged = {"systems": {"s": {"points": [point(500), point(1000, p99=1200)]}}}
    rejudge(merged, runs)
    assert merged["systems"]["s"]["knee"]["first_failing_per_s"] == 1000
    assert merged["systems"]["s"]["knee"]["last_good_per_s"] == 500
    assert [k["first_failing_per_s"] for k in merged["systems"]["s"]["knee_per_run"]] == [
        1000,
        None,
    ]
