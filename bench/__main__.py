"""`python -m bench`: run the scenarios against the reference and the real system, side by side.

The fan-out scenarios and the rate sweep also load two peers, the Django Channels chat tutorial on
Daphne (in-memory layer; Redis layer with the message saved in the consumer), under the same load
in the same run (`bench/peers.py`). Prints one JSON document (every figure, the ratios to the
reference, the side-by-side table and each target met or not), logs the table as text, and writes
PNG plots. Every process it starts is stopped on the way out, also on error or Ctrl-C.

    python -m bench                      # everything, default sizes (several minutes)
    python -m bench --quick              # a smoke run with tiny numbers, no peers (under a minute)
    python -m bench --scenarios big-room,idle --repeat 3 --plot docs/performance.png
    python -m bench --scenarios many-rooms,many-rooms-2x   # two chat servers over Redis vs one
    python -m bench --scenarios many-rooms,big-room,sweep --peers channels_memory
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from bench import idle_big, peers, scenarios
from bench.loadgen import LoadGenerator, OutOfStep
from bench.peers import Sweep
from bench.profile import Sampler, merged_summary
from bench.scenarios import FanoutLoad
from bench.targets import ROOT, ChannelsTarget, LiveTarget, ReferenceTarget, baseline_checkout

log = logging.getLogger("bench")
ALL = [
    "idle",
    "idle-big",
    "many-rooms",
    "many-rooms-2x",
    "big-room",
    "persistence",
    "django-cost",
    "longpoll",
    "sweep",
]
DEFAULT = ALL  # what `python -m bench` (and `make bench`) runs without --scenarios
# `--quick` (`make bench-smoke`, under a minute) leaves out the sweep and, unless --peers says
# otherwise, the Channels peers: tests/bench/test_peers.py covers them.
# idle-big too (tens of thousands of connects): `--quick --scenarios idle-big` runs it tiny.
QUICK_DEFAULT = [name for name in ALL if name not in ("sweep", "idle-big")]
RESULTS = ROOT / "bench" / "results"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
FANOUTS = ("many-rooms", "big-room")  # compared with the reference
# Issue 16's bounds on ratios to the reference: whole system (chat server + Django) CPU per
# delivery, chat server alone, p99 latency.
WHOLE_SYSTEM_CPU_BOUND = {"many-rooms": 1.3, "big-room": 1.2}
CHAT_CPU_BOUND = 1.0
P99_BOUND = 1.3
SCALEOUT_BOUND = 1.2  # two instances / one, CPU per delivery, chat servers and Django each
SCALEOUT = ("one_instance", "one_instance_redis", "two_instances_redis")
PEERS = ("channels_memory", "channels_redis")  # bench/channels_peer on Daphne
# Offered deliveries/s of the sweep (the many-rooms shape: 1,000 deliveries/s per message/s per
# sender); each is a whole number of messages per sender in a 5 s phase (0.2 message/s: one).
SWEEP_RATES = (200, 400, 1000, 2000, 5000, 10000, 20000, 40000)
# django-cost: Django as it was before issue 16's lean path (main at this commit: the batch
# through Django's handler and middleware, a new SQLite connection per request, the ORM's five
# queries) beside this checkout's Django, same run, same database (`--django-baseline`).
DJANGO_BASELINE = "d2eceb8"
DJANGO_COST_RATES = (10.0, 100.0, 1000.0)  # stored messages/s, all rooms together
# Django fed directly at each rate with the batches the chat server's 5 ms group commit makes of
# evenly spaced messages: one message per request up to 200/s, 5 per request at 1,000/s.
DJANGO_DIRECT_BATCH = {10.0: 1, 100.0: 1, 1000.0: 5}
DJANGO_COST_BOUND = 3.0  # plain / lean Django CPU per stored message at 100 messages/s
# idle-big: sockets, the big room, its senders (2 x 0.5 messages/s = 10,000 deliveries/s into a
# 10,000-socket room, big-room's delivery rate), sockets per connect call (tickets live 60 s).
IDLE_BIG = {
    "sockets": idle_big.TARGET_SOCKETS,
    "room": idle_big.TARGET_ROOM,
    "senders": 2,
    "rate_per_sender": 0.5,
    "chunk": 2500,
}


def sizes(quick: bool, duration: float | None) -> dict[str, Any]:
    """Scenario sizes: the issue's numbers, or tiny ones for a smoke run."""
    if quick:
        d = duration or 2.0
        return {
            "many-rooms": FanoutLoad(3, 10, 2, 5.0, d),
            "many-rooms-2x": FanoutLoad(3, 10, 2, 5.0, d),
            "many-rooms-2x-by-room": False,  # the smoke run stays under a minute
            "big-room": FanoutLoad(1, 60, 2, 5.0, d),
            "idle": [200, 400],
            "idle-big": {**IDLE_BIG, "sockets": 300, "room": 200, "duration_s": d, "chunk": 150},
            "persistence": {"rooms": 4, "window": 5, "duration_s": d},
            "longpoll": 50,
            # One rate, half a second: proves the scenario runs (two Django restarts dominate).
            "django-cost": {"rates": [100.0], "duration_s": 0.5, "warmup": 5},
            "sweep": Sweep(FanoutLoad(3, 10, 2, 0.0, 1.0), (60.0, 300.0)),
        }
    d = duration or 10.0
    return {
        # 2 senders per room at 5 messages/s each: 10 messages/s per room.
        "many-rooms": FanoutLoad(10, 50, 2, 5.0, d),
        # The same load over two chat servers sharing Redis, beside one with and one without.
        "many-rooms-2x": FanoutLoad(10, 50, 2, 5.0, d),
        # ... and on the same two with each room on one of them.
        "many-rooms-2x-by-room": True,
        # 10 messages/s into one room of 1,000: 10,000 deliveries/s.
        "big-room": FanoutLoad(1, 1000, 2, 5.0, d),
        "idle": [5000, 10000],
        # Issue 16: 100,000 sockets in one process (or as many as RLIMIT_NOFILE allows; see
        # bench/idle_big.py), 10,000 of them in one room that gets 1 message/s.
        "idle-big": {**IDLE_BIG, "duration_s": d},
        "persistence": {"rooms": 20, "window": 50, "duration_s": d},
        # Issue 16: 10,000 held polls in one chat server process (the bench raises the
        # descriptor limit; the product's defaults are untouched).
        "longpoll": 10000,
        "django-cost": {"rates": list(DJANGO_COST_RATES), "duration_s": d},
        # The many-rooms shape at rising rates; 5 s per point keeps the sweep to a few minutes.
        "sweep": Sweep(FanoutLoad(10, 50, 2, 0.0, duration or 5.0), SWEEP_RATES),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def median_tree(values: list[Any]) -> Any:
    """Element-wise median of several runs' results (numbers), first value for anything else."""
    first = values[0]
    if isinstance(first, bool) or not isinstance(first, int | float | dict | list):
        return first
    if isinstance(first, dict):
        return {key: median_tree([v[key] for v in values if key in v]) for key in first}
    if isinstance(first, list):
        if all(isinstance(v, list) and len(v) == len(first) for v in values):
            return [median_tree(list(items)) for items in zip(*values, strict=True)]
        return first
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return first  # e.g. a knee found in one run and not in another (None)
    return statistics.median(values)


# -- one repetition -------------------------------------------------------------------------------


@contextmanager
def profiled(
    enabled: bool, target: Any, label: str, profiles: dict[str, Any], django: bool = False
) -> Iterator[None]:
    """Sample the chat server (or, with `django`, every gunicorn worker, their samples merged)
    with py-spy while the block runs (first repetition only)."""
    if django and target is not None:
        pids = [pid for pid in target.django_pids if pid != target.live.django.pid]
    else:
        pids = target.chat_pids[:1] if target is not None else []
    if not enabled or not pids:
        yield
        return
    samplers = [
        Sampler(pid, RESULTS / f"profile-{label}-{index}.txt") for index, pid in enumerate(pids)
    ]
    try:
        yield
    finally:
        summaries = [sampler.stop() for sampler in samplers]
        if len(samplers) == 1:
            profiles[label] = summaries[0]
        else:
            profiles[label] = merged_summary([s.output for s in samplers], RESULTS, label)


def scale_out(
    load: FanoutLoad,
    lg: LoadGenerator,
    live: LiveTarget,
    prefix: str,
    earlier: dict[str, Any],
    redis_url: str,
    profile: Any,
    by_room: bool = True,
) -> dict[str, Any]:
    """The many-rooms load on one chat server without Redis, on one with Redis, then on two
    sharing Redis (each room's sockets and senders split between them), in this order; with
    `by_room`, then on the same two with each room on one of them.

    The no-Redis figures are those of this repetition's `many-rooms` scenario when it ran (same
    load, same processes); otherwise they are measured here.
    """
    out: dict[str, Any] = {}
    solo = earlier.get("many-rooms", {}).get("chatserver")
    if solo is not None:
        out["one_instance"] = solo
    else:
        out["one_instance"] = scenarios.fanout(live, lg, prefix + "-solo", load)
    with live.over_redis(redis_url) as cluster:

        def measure(key: str, around_run: Any = nullcontext) -> None:
            # Gap fills show whether a message waited for one from the other instance and then
            # had to be read from Django (a slow path) instead of arriving through Redis.
            before = cluster.gap_fills()
            slug_prefix = f"{prefix}-{key.replace('_', '-')}"
            out[key] = scenarios.fanout(cluster, lg, slug_prefix, load, around_run=around_run)
            after = cluster.gap_fills()
            out[key]["gap_fills_per_process"] = [b - a for a, b in zip(before, after, strict=True)]

        measure("one_instance_redis")
        cluster.add_instance()
        # py-spy samples the primary instance only (the two share the load evenly).
        measure("two_instances_redis", lambda: profile(True, "many-rooms-2x"))
        # The same two instances with each room on one of them (5 rooms each): with a Redis
        # channel per room, an instance then hears only its own rooms.
        if by_room:
            cluster.by_room = True
            measure("two_instances_redis_by_room")
    return out


def run_scenario(
    name: str,
    size: dict[str, Any],
    lg: LoadGenerator,
    reference: ReferenceTarget,
    live: LiveTarget | None,
    prefix: str,
    profile: Any,
    earlier: dict[str, Any],
    redis_url: str,
    peer_targets: list[ChannelsTarget] = (),
    baseline: str = "",
) -> dict[str, Any]:
    """One scenario, the reference first, then the chat server, then the peers (each in a Daphne
    started for its measurement) under the same load."""
    if name == "idle":
        # Fresh processes: memory freed by earlier scenarios would hide socket costs.
        out = {}
        for target in (reference, live):
            if target is not None:
                target.restart()
                with profile(target is live, f"{name}"):
                    out[target.name] = scenarios.idle(target, lg, prefix, size["idle"])
        return out
    if name in ("many-rooms", "big-room"):
        out = {"reference": scenarios.fanout(reference, lg, prefix, size[name])}
        if live is not None:
            out["chatserver"] = scenarios.fanout(
                live, lg, prefix, size[name], around_run=lambda: profile(True, name)
            )
        for peer in peer_targets:
            try:
                out[peer.name] = peers.measure(peer, lg, prefix, size[name])
            except OutOfStep:
                raise
            except Exception as exc:  # noqa: BLE001 - reported in the JSON, run goes on
                log.exception("%s: %s failed", name, peer.name)
                out[peer.name] = {"error": f"{type(exc).__name__}: {exc}"}
                lg.close()
        return out
    if name == "idle-big":
        return idle_big.run(reference, live, len(lg.processes), prefix, size[name], profile)
    if name == "sweep":
        systems = [t for t in (reference, live, *peer_targets) if t is not None]
        return peers.sweep(systems, lg, prefix, size["sweep"])
    if name == "many-rooms-2x":
        by_room = size.get("many-rooms-2x-by-room", True)
        return scale_out(size[name], lg, live, prefix, earlier, redis_url, profile, by_room)
    if name == "persistence":
        params = size["persistence"]
        default = scenarios.persistence(
            live, lg, prefix + "-d", **params, around_run=lambda: profile(True, name)
        )
        live.restart({"CHAT_BATCH_SIZE": "1"})
        try:
            one = scenarios.persistence(live, lg, prefix + "-1", **params)
        finally:
            live.restart({"CHAT_BATCH_SIZE": ""})  # back to the default
        return {"default_batch": default, "batch_size_1": one}
    if name == "longpoll":
        return {"chatserver": scenarios.longpoll(live, prefix, size["longpoll"])}
    if name == "django-cost":
        return django_cost(live, lg, prefix, size[name], profile, baseline)
    raise ValueError(name)


def django_cost(
    live: LiveTarget,
    lg: LoadGenerator,
    prefix: str,
    params: dict[str, Any],
    profile: Any,
    baseline: str,
) -> dict[str, Any]:
    """Django's CPU per stored message at each rate: this checkout's Django (the one running),
    then the `baseline` revision's, one after the other on the same database and chat server,
    in one run.

    Django is back to this checkout's afterwards, also on error.
    """
    out: dict[str, Any] = {"baseline_revision": baseline}
    with baseline_checkout(baseline) as old:
        try:
            for label, checkout in (("current", None), ("baseline", old)):
                if checkout is not None:
                    live.restart_django(checkout)
                out[f"{label}_direct"] = [
                    scenarios.django_direct(
                        live,
                        f"{prefix}-{label}-d{int(rate)}",
                        rate,
                        DJANGO_DIRECT_BATCH.get(rate, max(1, int(rate * 0.005))),
                        params["duration_s"],
                        warmup=params.get("warmup", 40),
                    )
                    for rate in params["rates"]
                ]
                out[label] = scenarios.django_cost(
                    live,
                    lg,
                    f"{prefix}-{label}",
                    params["rates"],
                    params["duration_s"],
                    around_run=lambda rate, label=label: profile(
                        rate == 100.0, f"django-cost-{label}", django=True
                    ),
                )
        finally:
            live.restart_django(None)
    out["baseline_vs_current"] = [
        {
            "messages_per_s": old_row["messages_per_s"],
            "ratio": ratio(
                old_row["django_cpu_ms_per_message"], new_row["django_cpu_ms_per_message"]
            ),
        }
        for old_row, new_row in zip(out["baseline"], out["current"], strict=True)
    ]
    out["baseline_vs_current_direct"] = [
        {
            "messages_per_s": old_row["messages_per_s"],
            "batch": old_row["batch"],
            "ratio": ratio(
                old_row["django_cpu_ms_per_message"], new_row["django_cpu_ms_per_message"]
            ),
        }
        for old_row, new_row in zip(out["baseline_direct"], out["current_direct"], strict=True)
    ]
    return out


def run_once(args: argparse.Namespace, size: dict[str, Any], rep: int) -> dict[str, Any]:
    """Every selected scenario once; a failed scenario is reported and the others still run."""
    out: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    reference = live = None
    peer_targets: list[ChannelsTarget] = []
    with LoadGenerator(args.workers) as lg:
        try:
            reference = ReferenceTarget().start()
            if not args.reference_only:
                live = LiveTarget().start()
            # Started only for their own measurements (peers.measure), stopped right after.
            if "channels_memory" in args.peers:
                peer_targets.append(ChannelsTarget("memory"))
            if "channels_redis" in args.peers:
                peer_targets.append(ChannelsTarget("redis", args.redis_url, save=True))

            def profile(on: bool, label: str, django: bool = False) -> Any:
                return profiled(on and args.profile and rep == 0, live, label, profiles, django)

            for name in args.scenarios:
                if live is None and name in (
                    "persistence",
                    "longpoll",
                    "many-rooms-2x",
                    "django-cost",
                ):
                    continue
                log.info("repetition %d: %s", rep + 1, name)
                prefix = f"{name}-{rep}-{int(time.time())}"
                try:
                    out[name] = run_scenario(
                        name,
                        size,
                        lg,
                        reference,
                        live,
                        prefix,
                        profile,
                        out,
                        args.redis_url,
                        peer_targets,
                        args.django_baseline,
                    )
                except OutOfStep:
                    raise  # interrupted, or the load processes are lost: nothing more to run
                except Exception as exc:  # noqa: BLE001 - reported in the JSON, run goes on
                    log.exception("scenario %s failed", name)
                    tail = live.live.chatserver.log_tail(15) if live is not None else ""
                    out[name] = {"error": f"{type(exc).__name__}: {exc}", "chat_log": tail}
                    lg.close()
                    if live is not None and not live.live.chatserver.running():
                        live.restart()
        finally:
            for peer in peer_targets:
                try:
                    peer.close()
                except Exception:  # noqa: BLE001 - the others must still be stopped
                    log.exception("closing %s failed", peer.name)
            for target in (live, reference):
                if target is not None:
                    target.stop()
    if profiles:
        out["profile"] = profiles
    return out


# -- ratios and targets ---------------------------------------------------------------------------


def ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Every figure the targets speak of, as a ratio to the reference in the same run."""
    out: dict[str, Any] = {}

    def measured(name: str, *keys: str) -> bool:
        # Present, not failed, and (for a comparison) both sides measured.
        found = result.get(name)
        return bool(found) and "error" not in found and all(key in found for key in keys)

    for name in FANOUTS:
        if measured(name, "reference", "chatserver"):
            ref, real = result[name]["reference"], result[name]["chatserver"]
            out[name] = {
                "chat_cpu_per_delivery": ratio(real["chat_cpu_s_per_1k"], ref["chat_cpu_s_per_1k"]),
                "chat_plus_django_cpu_per_delivery": ratio(
                    real["chat_cpu_s_per_1k"] + real["django_cpu_s_per_1k"],
                    ref["chat_cpu_s_per_1k"],
                ),
                "p50_latency": ratio(real["p50_ms"], ref["p50_ms"]),
                "p99_latency": ratio(real["p99_ms"], ref["p99_ms"]),
                "deliveries_per_s": ratio(real["deliveries_per_s"], ref["deliveries_per_s"]),
            }
    if measured("many-rooms-2x", *SCALEOUT):
        solo, one, two = (result["many-rooms-2x"][key] for key in SCALEOUT)

        def versus(real: dict[str, Any], base: dict[str, Any]) -> dict[str, float]:
            return {
                "chat_cpu_per_delivery": ratio(
                    real["chat_cpu_s_per_1k"], base["chat_cpu_s_per_1k"]
                ),
                "django_cpu_per_delivery": ratio(
                    real["django_cpu_s_per_1k"], base["django_cpu_s_per_1k"]
                ),
                "p50_latency": ratio(real["p50_ms"], base["p50_ms"]),
                "p99_latency": ratio(real["p99_ms"], base["p99_ms"]),
                "deliveries_per_s": ratio(real["deliveries_per_s"], base["deliveries_per_s"]),
            }

        out["many-rooms-2x"] = {
            "two_instances_vs_one_redis": versus(two, one),
            "two_instances_vs_one_no_redis": versus(two, solo),
            "one_redis_vs_one_no_redis": versus(one, solo),
        }
        by_room = result["many-rooms-2x"].get("two_instances_redis_by_room")
        if by_room is not None:
            out["many-rooms-2x"]["two_instances_by_room_vs_one_redis"] = versus(by_room, one)
    if measured("idle", "reference", "chatserver"):
        ref_steps = result["idle"]["reference"]["steps"]
        real_steps = result["idle"]["chatserver"]["steps"]
        out["idle"] = {
            str(real["sockets"]): {
                "rss_per_socket": ratio(real["rss_per_socket_kb"], ref["rss_per_socket_kb"]),
                "connect_rate": ratio(real["connect_per_s"], ref["connect_per_s"]),
            }
            for ref, real in zip(ref_steps, real_steps, strict=False)
        }
    if measured("idle-big", "reference", "chatserver"):
        out["idle-big"] = idle_big.ratios(result["idle-big"])
    if measured("django-cost", "baseline", "current"):
        out["django-cost"] = {
            # The baseline's Django CPU per stored message / this checkout's, at each rate,
            # through the chat server (batch sizes as they formed) and fed directly (same batches).
            "through_chat_server": {
                f"{row['messages_per_s']:g}": row["ratio"]
                for row in result["django-cost"]["baseline_vs_current"]
            },
            "direct": {
                f"{row['messages_per_s']:g}": row["ratio"]
                for row in result["django-cost"]["baseline_vs_current_direct"]
            },
        }
    if measured("longpoll", "chatserver") and measured("big-room", "chatserver"):
        # CPU per answered poll / CPU per socket delivery (big room: one message, many sockets).
        per_delivery_ms = result["big-room"]["chatserver"]["chat_cpu_s_per_1k"]
        out["longpoll"] = {
            "cpu_per_answer_vs_socket_delivery": ratio(
                result["longpoll"]["chatserver"]["chat_cpu_ms_per_answer"], per_delivery_ms
            )
        }
    if measured("persistence"):
        p = result["persistence"]
        out["persistence"] = {
            "default_vs_batch_size_1": ratio(
                p["default_batch"]["stored_per_s"], p["batch_size_1"]["stored_per_s"]
            )
        }
    return out


def judge(result: dict[str, Any], rat: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue: what was measured, the bound, met or not."""
    checks: list[dict[str, Any]] = []

    def check(what: str, measured: float, bound: float, at_most: bool) -> None:
        met = measured <= bound if at_most else measured >= bound
        sign = "<=" if at_most else ">="
        checks.append({"target": f"{what} {sign} {bound:g}", "measured": measured, "met": met})

    for name in FANOUTS:
        if name in rat:
            real = result[name]["chatserver"]
            check(
                f"{name}: whole system (chat + Django) CPU/delivery ratio",
                rat[name]["chat_plus_django_cpu_per_delivery"],
                WHOLE_SYSTEM_CPU_BOUND[name],
                True,
            )
            check(
                f"{name}: chat CPU/delivery ratio",
                rat[name]["chat_cpu_per_delivery"],
                CHAT_CPU_BOUND,
                True,
            )
            check(f"{name}: p99 latency ratio", rat[name]["p99_latency"], P99_BOUND, True)
            check(f"{name}: lost deliveries", real["lost"], 0, True)
            check(f"{name}: duplicated deliveries", real["duplicated"], 0, True)
            check(f"{name}: out-of-order deliveries", real["out_of_order"], 0, True)
    if "many-rooms-2x" in rat:
        two_vs_one = rat["many-rooms-2x"]["two_instances_vs_one_redis"]
        for who in ("chat", "django"):
            check(
                f"many-rooms-2x: two instances / one (Redis), {who} CPU/delivery ratio",
                two_vs_one[f"{who}_cpu_per_delivery"],
                SCALEOUT_BOUND,
                True,
            )
        for key in (*SCALEOUT[1:], "two_instances_redis_by_room"):
            real = result["many-rooms-2x"].get(key)
            if real is None:
                continue
            for figure in ("lost", "duplicated", "out_of_order"):
                check(
                    f"many-rooms-2x {key}: {figure.replace('_', '-')} deliveries",
                    real[figure],
                    0,
                    True,
                )
    if "idle" in rat and rat["idle"]:
        top = max(rat["idle"], key=int)
        check(f"idle {top}: RSS per socket ratio", rat["idle"][top]["rss_per_socket"], 1.25, True)
        check(f"idle {top}: connect rate ratio", rat["idle"][top]["connect_rate"], 0.5, False)
        failed = result["idle"]["chatserver"]["steps"][-1]["failed"]
        check(f"idle {top}: failed connects", failed, 0, True)
    if "idle-big" in rat:
        checks.extend(idle_big.judge(result["idle-big"], rat["idle-big"]))
    if "persistence" in rat:
        default = result["persistence"]["default_batch"]
        check("persistence: stored messages/s", default["stored_per_s"], 2000, False)
        check("persistence: lost messages", default["lost"], 0, True)
        check(
            "persistence: default vs batch size 1",
            rat["persistence"]["default_vs_batch_size_1"],
            10,
            False,
        )
    if "django-cost" in rat and "100" in rat["django-cost"]["direct"]:
        check(
            "django-cost: baseline / current Django CPU per stored message at 100 messages/s "
            "(same batches)",
            rat["django-cost"]["direct"]["100"],
            DJANGO_COST_BOUND,
            False,
        )
    if "django-cost" in result and "current" in result["django-cost"]:
        for row in result["django-cost"]["current"]:
            for figure in ("lost", "duplicated", "out_of_order"):
                check(
                    f"django-cost {row['messages_per_s']:g}/s: {figure.replace('_', '-')}",
                    row[figure],
                    0,
                    True,
                )
    if "longpoll" in result and "error" not in result["longpoll"]:
        lp = result["longpoll"]["chatserver"]
        check("longpoll: held requests reached", lp["reached"], lp["held"], False)
    return checks


def django_cost_table(result: dict[str, Any]) -> str:
    """The django-cost figures as a text table: baseline and current side by side per rate."""
    lines = [
        "  messages/s  feed            batch  baseline ms/msg  current ms/msg  baseline/current"
    ]
    feeds = (("direct", "_direct", "batch"), ("chat server", "", "messages_per_batch"))
    for feed, suffix, batch_key in feeds:
        old_rows = result.get(f"baseline{suffix}", [])
        new_rows = result.get(f"current{suffix}", [])
        for old, new in zip(old_rows, new_rows, strict=False):
            batches = f"{old[batch_key]:.1f}/{new[batch_key]:.1f}"
            before, after = old["django_cpu_ms_per_message"], new["django_cpu_ms_per_message"]
            lines.append(
                f"  {old['messages_per_s']:>10g}  {feed:<14}  {batches:>9}  {before:>15.2f}  "
                f"{after:>14.2f}  {ratio(before, after):>16.2f}"
            )
    return "\n".join(lines)


# -- plot ---------------------------------------------------------------------------------------


def plot(report: dict[str, Any], path: Path) -> None:
    """Ratios to the reference with their bounds, and persistence throughput."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rat, res = report["ratios"], report["results"]
    bars: list[tuple[str, float, float]] = []
    for name in ("many-rooms", "big-room"):
        if name in rat:
            bars.append((f"{name}\nCPU/delivery", rat[name]["chat_cpu_per_delivery"], 1.0))
            bars.append((f"{name}\np99 latency", rat[name]["p99_latency"], P99_BOUND))
    if rat.get("idle"):
        top = max(rat["idle"], key=int)
        bars.append((f"idle {top}\nRSS/socket", rat["idle"][top]["rss_per_socket"], 1.25))
        bars.append((f"idle {top}\nconnect rate", rat["idle"][top]["connect_rate"], 0.5))
    has_persistence = "persistence" in rat
    has_scaleout = "many-rooms-2x" in rat
    panels = 1 + has_persistence + has_scaleout
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels + 2, 4.5), squeeze=False)
    ax = axes[0][0]
    if bars:
        labels = [b[0] for b in bars]
        xs = range(len(bars))
        ax.bar(xs, [b[1] for b in bars], color="#4c72b0", label="chat server / reference")
        ax.scatter(
            xs,
            [b[2] for b in bars],
            marker="_",
            s=900,
            color="#c44e52",
            zorder=3,
            label="target bound",
        )
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("ratio to the reference broadcaster")
    ax.set_title("Chat server vs bare Autobahn (same load, same run)")
    if bars:
        ax.legend(fontsize=8)
    if has_persistence:
        ax = axes[0][1]
        p = res["persistence"]
        values = [p["batch_size_1"]["stored_per_s"], p["default_batch"]["stored_per_s"]]
        ax.bar(["CHAT_BATCH_SIZE=1", "default batching"], values, color=["#dd8452", "#55a868"])
        ax.axhline(2000, color="#c44e52", linestyle="--", label="target 2,000/s")
        ax.set_ylabel("messages stored per second")
        ax.set_title("Persistence throughput (zero loss checked)")
        ax.legend(fontsize=8)
    if has_scaleout:
        plot_scaleout(axes[0][panels - 1], res["many-rooms-2x"])
    fig.suptitle(f"python -m bench {' '.join(report['argv'])}".strip(), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_scaleout(ax: Any, res: dict[str, Any]) -> None:
    """Chat server CPU per 1,000 deliveries (stacked per process) and p99, one vs two instances."""
    labels = ["1 instance\nno Redis", "1 instance\nRedis", "2 instances\nRedis"]
    colors = ["#4c72b0", "#8172b3", "#64b5cd"]
    for x, key in enumerate(SCALEOUT):
        bottom = 0.0
        for index, share in enumerate(res[key]["chat_cpu_s_per_1k_per_process"]):
            ms = share * 1000
            ax.bar(x, ms, bottom=bottom, color=colors[index % len(colors)], edgecolor="white")
            bottom += ms
        ax.annotate(
            f"p99 {res[key]['p99_ms']:.0f} ms\nlost {res[key]['lost']}, dup "
            f"{res[key]['duplicated']}, order {res[key]['out_of_order']}",
            (x, bottom),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylabel("chat server CPU ms per 1,000 deliveries (all instances)")
    ax.set_title("many-rooms-2x: one vs two chat servers (stacked per process)")
    ax.margins(y=0.25)


# -- entry ----------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenarios",
        help=f"comma list of {ALL} (default {DEFAULT}; with --quick {QUICK_DEFAULT})",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run with tiny numbers")
    parser.add_argument("--repeat", type=int, default=1, help="runs; figures are medians")
    parser.add_argument("--duration", type=float, help="seconds per measured phase")
    parser.add_argument("--workers", type=int, default=3, help="load generator processes")
    parser.add_argument(
        "--idle-big-sockets",
        type=int,
        help=f"idle-big's socket count (default {idle_big.TARGET_SOCKETS:,}, capped by "
        "RLIMIT_NOFILE; the big room is at most this many)",
    )
    parser.add_argument("--plot", type=Path, default=RESULTS / "bench.png", help="PNG to write")
    parser.add_argument("--json", type=Path, default=RESULTS / "bench.json", help="JSON to write")
    parser.add_argument("--profile", action="store_true", help="py-spy the chat server (big room)")
    parser.add_argument(
        "--redis-url", default=REDIS_URL, help="Redis for many-rooms-2x (env BENCH_REDIS_URL)"
    )
    parser.add_argument(
        "--reference-only", action="store_true", help="load only the reference (no Django/twistd)"
    )
    parser.add_argument(
        "--peers",
        help=f"comma list of {list(PEERS)} or 'none' (default: both; none with --quick)",
    )
    parser.add_argument(
        "--sweep-rates",
        help="offered deliveries/s of the sweep, comma list (default: "
        f"{','.join(map(str, SWEEP_RATES))})",
    )
    parser.add_argument(
        "--django-baseline",
        default=DJANGO_BASELINE,
        help="git revision whose Django django-cost runs beside this checkout's "
        f"(default {DJANGO_BASELINE}: before issue 16's lean path)",
    )
    parser.add_argument(
        "--sweep-plot", type=Path, default=RESULTS / "bench-sweep.png", help="sweep PNG to write"
    )
    args = parser.parse_args(argv)
    if args.scenarios is None:
        args.scenarios = ",".join(QUICK_DEFAULT if args.quick else DEFAULT)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(ALL)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    if args.peers is None:
        args.peers = "none" if args.quick or args.reference_only else ",".join(PEERS)
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
    if set(args.peers) - set(PEERS):
        parser.error(f"unknown peers: {sorted(set(args.peers) - set(PEERS))}")
    if args.sweep_rates:
        try:
            args.sweep_rates = tuple(float(r) for r in args.sweep_rates.split(",") if r.strip())
        except ValueError:
            parser.error("--sweep-rates takes numbers, e.g. 500,1000,5000")
        if not args.sweep_rates or min(args.sweep_rates) <= 0:
            parser.error("--sweep-rates takes positive numbers")
    return args


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run, print JSON, write the plot; exit status 0 even when targets are missed."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(message)s")
    # SIGTERM unwinds like Ctrl-C, so every `finally` stops what it started.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    # Servers and load processes inherit the raised descriptor limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    size = sizes(args.quick, args.duration)
    if args.sweep_rates:
        size["sweep"] = Sweep(size["sweep"].shape, args.sweep_rates)
    if args.idle_big_sockets:
        size["idle-big"]["sockets"] = args.idle_big_sockets
    started = time.monotonic()
    runs = [run_once(args, size, rep) for rep in range(args.repeat)]
    results = median_tree(runs)
    if isinstance(results.get("sweep"), dict) and "systems" in results["sweep"]:
        peers.rejudge(results["sweep"], [run["sweep"] for run in runs if "systems" in run["sweep"]])
    rats = median_tree([ratios(run) for run in runs])
    side_by_side = peers.table(results) + idle_big.table(results)
    report = {
        "argv": argv,
        "repeat": args.repeat,
        "seconds": round(time.monotonic() - started, 1),
        "side_by_side": side_by_side,
        "ratios": rats,
        "ratios_per_run": [ratios(run) for run in runs],
        "targets": judge(results, rats),
        "results": results,
    }
    text = json.dumps(report, indent=2, default=str)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(text)
    plot(report, args.plot)
    written = [args.json, args.plot]
    sweep_result = results.get("sweep") or {}
    if sweep_result.get("systems"):
        peers.plot_sweep(sweep_result, args.sweep_plot, f"python -m bench {' '.join(argv)}")
        written.append(args.sweep_plot)
    sys.stdout.write(text + "\n")
    if side_by_side or sweep_result.get("systems"):
        log.info("side by side:\n%s", peers.summary(side_by_side, sweep_result.get("systems")))
    if isinstance(results.get("idle-big"), dict) and "plan" in results["idle-big"]:
        log.info("%s", idle_big.summary(results["idle-big"]))
    if isinstance(results.get("django-cost"), dict) and "current" in results["django-cost"]:
        log.info("Django CPU per stored message:\n%s", django_cost_table(results["django-cost"]))
    log.info(
        "targets:\n%s",
        "\n".join(
            f"  {'met   ' if c['met'] else 'MISSED'} {c['target']}: {c['measured']:.3g}"
            for c in report["targets"]
        ),
    )
    log.info("wrote %s", ", ".join(map(str, written)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
