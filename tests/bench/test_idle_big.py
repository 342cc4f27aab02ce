"""The `idle-big` scenario's plumbing (bench/idle_big.py): the descriptor plan, source addresses.

The plan runs in a child process (it raises RLIMIT_NOFILE, which must not leak into the test
runner) against this machine's real limit; the load generator opens real sockets to the real
reference broadcaster. Nothing here times anything: the benchmark itself is never a test.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import psutil

from bench import idle_big
from bench.loadgen import ClientSpec, LoadGenerator
from bench.targets import ROOT, ReferenceTarget


def plan_in_child(requested: int, room: int, workers: int) -> dict:
    code = (
        "import json, sys\n"
        "from bench.idle_big import plan\n"
        f"sys.stdout.write(json.dumps(plan({requested}, {room}, {workers})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_plan_caps_at_the_hard_limit_and_says_why() -> None:
    """Asking for more sockets than the hard descriptor limit allows: either the limit was
    raised (a privileged machine) and the full count is planned, or the count is the hard limit
    minus the server's reserve and `capped_by` names the limit read at run time."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    requested = hard + 5_000
    found = plan_in_child(requested, 10_000, 3)
    soft_after, hard_after = found["rlimit_nofile"]
    assert soft_after == hard_after  # the soft limit is always raised to the hard limit
    if found["raise_hard_limit_error"] is None:
        assert found["sockets"] == requested
        assert found["capped_by"] is None
    else:
        assert found["sockets"] == hard - idle_big.SERVER_FD_RESERVE
        assert f"{hard:,}" in found["capped_by"]
        assert "CAP_SYS_RESOURCE" in found["capped_by"]
    assert found["room"] == 10_000


def test_plan_within_the_limit_spreads_sockets_over_sources_and_processes() -> None:
    """A count the limit allows is planned whole: several distinct loopback sources, enough
    load processes that none holds more than its limit, a big room no larger than the count."""
    found = plan_in_child(500, 10_000, 3)
    assert found["sockets"] == 500
    assert found["capped_by"] is None
    assert found["room"] == 500
    assert found["workers"] == 3
    sources = found["sources"]
    assert len(set(sources)) == len(sources) >= idle_big.MIN_SOURCES
    assert all(s.startswith("127.0.0.") and s != "127.0.0.1" for s in sources)


def test_layout_puts_the_big_room_and_its_senders_among_the_idle_sockets() -> None:
    """Every socket has a room; the big room has exactly `room` sockets, two of them senders
    with distinct ids; the other sockets fill rooms of at most IDLE_ROOM_SIZE."""
    rooms, layout = idle_big._layout("p", 2_500, 1_200, 2)
    assert len(layout) == 2_500
    big = [entry for entry in layout if entry[0] == "p-big"]
    assert len(big) == 1_200
    assert sorted(sender for _slug, sender in layout if sender is not None) == [0, 1]
    assert all(slug == "p-big" for slug, sender in layout if sender is not None)
    idle_counts = {slug: sum(1 for s, _ in layout if s == slug) for slug in rooms[1:]}
    assert sum(idle_counts.values()) == 1_300
    assert max(idle_counts.values()) <= idle_big.IDLE_ROOM_SIZE


def test_sockets_bind_their_source_address_and_the_fan_out_is_measured() -> None:
    """Against the real reference broadcaster: sockets opened over three source addresses come
    from those addresses (the server's side of each connection says so), and the scenario's
    measurement opens every socket and delivers every message to the big room exactly once."""
    reference = ReferenceTarget().start()
    try:
        with LoadGenerator(2) as lg:
            sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
            url = reference.ws_url("r")
            specs = [ClientSpec(url, "r", source=sources[i % 3]) for i in range(30)]
            assert lg.connect(specs)["opened"] == 30
            peers = [
                c.raddr.ip
                for c in psutil.Process(reference.process.pid).net_connections("tcp")
                if c.status == psutil.CONN_ESTABLISHED and c.raddr
            ]
            assert sorted(set(peers)) == sources
            assert len(peers) == 30
            lg.close()

            the_plan = {"sockets": 60, "room": 40, "sources": sources}
            params = {"senders": 2, "rate_per_sender": 4.0, "duration_s": 1.0, "chunk": 25}
            out = idle_big.measure(reference, lg, "t", the_plan, params)
    finally:
        reference.stop()
    assert out["sockets"] == 60
    assert out["failed"] == 0
    assert [step["sockets"] for step in out["steps"]] == [25, 50, 60]
    fan = out["fanout"]
    assert fan["messages_sent"] == 8
    assert fan["expected"] == 8 * 40
    assert fan["delivered"] == 8 * 40
    assert (fan["lost"], fan["duplicated"], fan["out_of_order"]) == (0, 0, 0)
