"""`idle-big`: as many idle sockets as one server process may hold, then fan-out to a big room.

Issue 16 asks for 100,000 idle sockets in one chat server process, with RSS per socket at most
1.1x the reference broadcaster's, a connect rate (ticket included) at least 0.9x, every socket's
ticket verified, and fan-out to a 10,000-socket room with p99 at most 1.3x the reference's. This
scenario measures exactly that, side by side, for the reference then the chat server (one after
the other, each a fresh process):

1. **Limits, in the bench only.** A process holds one descriptor per socket, so the socket count
   is bounded by `RLIMIT_NOFILE`. `plan` raises this process's soft limit to the hard limit (the
   servers and load processes it starts inherit it) and, if the hard limit is below what the
   requested count needs, tries to raise the hard limit too (that needs CAP_SYS_RESOURCE,
   setrlimit(2)). When it cannot, the scenario measures at the largest count one server process
   can hold (the hard limit minus `SERVER_FD_RESERVE` descriptors for its listeners, log, Django
   pool and Redis) and says so in the result (`plan.capped_by`), with the limit read at run time.
   The product's own limits are untouched.
2. **Connect.** The sockets are opened by several load processes (each under its own descriptor
   limit: `plan.workers`), bound before connecting to several loopback source addresses
   (127.0.0.2, 127.0.0.3, ...: one source address has only the ephemeral port range, about 28,000
   ports, towards one server port). They open in chunks of `chunk` sockets whose URLs carry a
   ticket with at least 30 s left (tickets live 60 s), so a long connect never presents an
   expired ticket. A socket counts as open when its `hello` frame arrived, which the chat server
   sends only after it verified the socket's ticket (docs/protocol.md); the chat server's own
   count of open sockets (`chat_connections` on its internal /metrics) and of refused tickets
   (`chat_errors_total{kind="bad_ticket"}`) are read afterwards as a second witness.
3. **Memory and connect rate.** RSS per socket = (VmRSS with every socket open - VmRSS of the
   fresh process, with its rooms created) / sockets; connect rate = sockets / the wall time of
   the chunks; CPU per connect from /proc (utime + stime).
4. **Fan-out to the big room.** `room` of the sockets are in one room (the others in rooms of
   `IDLE_ROOM_SIZE`), `senders` of them send at `rate_per_sender` messages/s each for the
   phase's duration while every other socket stays open and idle; latency, loss, duplicates and
   order are measured at the receivers as in the other fan-out scenarios (bench/loadgen.py).
"""

from __future__ import annotations

import ipaddress
import math
import random
import resource
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import requests

from bench.loadgen import CHAT, ClientSpec, LoadGenerator
from bench.procstats import cpu_seconds
from bench.scenarios import latency_summary
from tests.support.live import rss_bytes

# Issue 16's count and bounds (ratios chat server / reference, same run).
TARGET_SOCKETS = 100_000
TARGET_ROOM = 10_000
RSS_BOUND = 1.1
CONNECT_BOUND = 0.9
P99_BOUND = 1.3
# Descriptors a server process keeps for everything but the load's sockets: listening ports,
# log file, the HTTP pool to Django, Redis, epoll, pipes, files Python opens. The chat server
# uses a few dozen; the rest is headroom so that it never hits EMFILE in accept().
SERVER_FD_RESERVE = 1_000
LOAD_FD_RESERVE = 200  # the same for a load process (its pipe, Python's own files)
IDLE_ROOM_SIZE = 1_000  # the sockets outside the big room, per room
FIRST_SOURCE = ipaddress.IPv4Address("127.0.0.2")
# Use at most half of a source address's ephemeral ports, so that bind() never has to hunt.
PORTS_PER_SOURCE_SHARE = 0.5
MIN_SOURCES = 4
QUIET_S = 3.0  # the fan-out phase ends after this long without a delivery (at most 15 s)


def _ephemeral_ports() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ports:
            low, high = (int(x) for x in ports.read().split())
        return high - low + 1
    except (OSError, ValueError):
        return 28_232  # Linux's default range, 32768-60999


def plan(requested: int, room: int, workers: int) -> dict[str, Any]:
    """How many sockets this machine lets one server process hold, and how to open them.

    Raises this process's `RLIMIT_NOFILE` soft limit to the hard limit, and the hard limit to
    `requested + SERVER_FD_RESERVE` when it is lower (allowed only with CAP_SYS_RESOURCE;
    setrlimit(2)). Returns the plan as plain data: `sockets` (min(requested, hard limit -
    reserve)), `room` (the big room, at most `sockets`), `workers` (load processes, each under
    the limit), `sources` (loopback addresses to bind), `rlimit_nofile` [soft, hard] after the
    attempt, and `capped_by` (None, or why fewer than `requested` sockets are measured).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = requested + SERVER_FD_RESERVE
    raise_error = None
    if hard != resource.RLIM_INFINITY and hard < needed:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
        except (ValueError, OSError) as exc:
            raise_error = f"{type(exc).__name__}: {exc}"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    limit = needed if hard == resource.RLIM_INFINITY else hard
    sockets = max(1, min(requested, limit - SERVER_FD_RESERVE))
    capped_by = None
    if sockets < requested:
        capped_by = (
            f"RLIMIT_NOFILE hard limit is {hard:,} descriptors per process (read with "
            f"resource.getrlimit at run time); one process cannot hold {requested:,} sockets, "
            f"so {sockets:,} were measured ({SERVER_FD_RESERVE:,} kept for the server's own "
            f"files). Raising the hard limit to {needed:,} failed ({raise_error}): it needs "
            "CAP_SYS_RESOURCE, which this sandbox lacks."
        )
    per_load_process = max(1, limit - LOAD_FD_RESERVE)
    per_source = max(1, int(_ephemeral_ports() * PORTS_PER_SOURCE_SHARE))
    n_sources = max(MIN_SOURCES, math.ceil(sockets / per_source))
    return {
        "requested": requested,
        "sockets": sockets,
        "room": min(room, sockets),
        "workers": max(workers, math.ceil(sockets / per_load_process)),
        "sources": [str(FIRST_SOURCE + i) for i in range(n_sources)],
        "rlimit_nofile": [soft, hard],
        "raise_hard_limit_error": raise_error,
        "capped_by": capped_by,
    }


def _layout(prefix: str, sockets: int, room: int, senders: int) -> tuple[list[str], list[tuple]]:
    """Room slugs, and (slug, sender id or None) per socket in connect order: the big room's
    sockets and the idle rooms' sockets shuffled together (fixed seed), so that every chunk of
    the connect is alike; the big room's first `senders` sockets are its senders."""
    big = f"{prefix}-big"
    rest = sockets - room
    idle_rooms = [f"{prefix}-{i}" for i in range(math.ceil(rest / IDLE_ROOM_SIZE))]
    rooms = [big] * room + [idle_rooms[i % len(idle_rooms)] for i in range(rest)]
    random.Random(0).shuffle(rooms)
    layout, sender_id = [], 0
    for slug in rooms:
        sender = None
        if slug == big and sender_id < senders:
            sender, sender_id = sender_id, sender_id + 1
        layout.append((slug, sender))
    return [big, *idle_rooms], layout


def _meminfo_available_mb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _chat_metrics(target: Any) -> dict[str, float] | None:
    """The chat server's open sockets and refused tickets, from its internal /metrics (None for
    a target without one, the reference)."""
    live = getattr(target, "live", None)
    if live is None:
        return None
    text = requests.get(live.chat_internal_url + "/metrics", timeout=30).text
    out = {"chat_connections": float("nan"), "bad_tickets": 0.0}
    for line in text.splitlines():
        if line.startswith("chat_connections "):
            out["chat_connections"] = float(line.split()[1])
        elif line.startswith('chat_errors_total{kind="bad_ticket"}'):
            out["bad_tickets"] = float(line.split()[1])
    return out


def measure(
    target: Any,
    lg: LoadGenerator,
    prefix: str,
    the_plan: dict[str, Any],
    params: dict[str, Any],
    around_connect: Callable[[], AbstractContextManager] = nullcontext,
    around_run: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, Any]:
    """Open `the_plan["sockets"]` sockets on a fresh `target`, then the big room's fan-out.

    `params`: `senders`, `rate_per_sender` (messages/s each), `duration_s`, `chunk` (sockets per
    connect call). Returns the connect figures (`sockets`, `failed`, `connect_per_s`,
    `chat_cpu_ms_per_connect`, `rss_per_socket_kb`, `steps` per chunk, `tickets_verified`) and
    the fan-out's (`fanout`: deliveries, latency, lost / duplicated / out of order, CPU per
    1,000 deliveries).
    """
    rooms, layout = _layout(prefix, the_plan["sockets"], the_plan["room"], params["senders"])
    target.create_rooms(rooms)
    sources = the_plan["sources"]
    dialect, origin = getattr(target, "dialect", CHAT), getattr(target, "origin", None)
    (pid,) = target.chat_pids
    rss0 = rss_bytes(pid)
    out: dict[str, Any] = {
        "rss_before_mb": rss0 / 2**20,
        "mem_available_before_mb": _meminfo_available_mb(),
        "steps": [],
    }
    opened = failed = 0
    seconds = 0.0
    failures: Counter = Counter()
    try:
        cpu0 = cpu_seconds(pid)
        with around_connect():
            for first in range(0, len(layout), params["chunk"]):
                # URLs built per chunk: each carries a ticket with at least 30 s left.
                specs = [
                    ClientSpec(
                        target.ws_url(slug),
                        slug,
                        sender,
                        dialect,
                        origin,
                        source=sources[(first + i) % len(sources)],
                    )
                    for i, (slug, sender) in enumerate(layout[first : first + params["chunk"]])
                ]
                connected = lg.connect(specs)
                opened += connected["opened"]
                failed += connected["failed"]
                failures.update(connected["failures"])
                seconds += connected["seconds"]
                out["steps"].append(
                    {
                        "sockets": opened,
                        "connect_per_s": connected["per_second"],
                        "rss_mb": rss_bytes(pid) / 2**20,
                    }
                )
        cpu1 = cpu_seconds(pid)
        rss = rss_bytes(pid)
        server = _chat_metrics(target)
        out.update(
            {
                "sockets": opened,
                "failed": failed,
                "failures": dict(failures.most_common(5)),
                "connect_s": seconds,
                "connect_per_s": opened / seconds if seconds else 0.0,
                "chat_cpu_ms_per_connect": 1000 * (cpu1 - cpu0) / max(1, opened),
                "rss_mb": rss / 2**20,
                "rss_per_socket_kb": (rss - rss0) / max(1, opened) / 1024,
                "mem_available_open_mb": _meminfo_available_mb(),
                # Each counted socket received `hello`, sent only after its ticket verified.
                "hellos": opened,
                "server": server,
                "tickets_verified": (
                    min(opened, int(server["chat_connections"])) if server else None
                ),
            }
        )
        # The fan-out: only the big room has senders; every other socket stays open and idle.
        cpu0 = cpu_seconds(pid)
        with around_run():
            result = lg.run(
                params["duration_s"],
                mode="rate",
                rate=params["rate_per_sender"],
                # One broadcast to the big room takes about a second on a busy 2-core machine:
                # a 1 s quiet gap is not yet the end of the phase.
                quiet_s=QUIET_S,
            )
        cpu1 = cpu_seconds(pid)
    finally:
        lg.close()
    per_k = 1000 / result.deliveries if result.deliveries else float("nan")
    out["fanout"] = {
        "room": the_plan["room"],
        "senders": params["senders"],
        "messages_sent": result.sent,
        "offered_per_s": params["senders"] * params["rate_per_sender"] * the_plan["room"],
        "deliveries": result.deliveries,
        "deliveries_per_s": result.deliveries / params["duration_s"],
        "delivered": result.unique,
        "expected": result.expected,
        **latency_summary(result),
        "lost": result.lost,
        "duplicated": result.duplicates,
        "out_of_order": result.out_of_order,
        "refused": result.refused,
        "errors": dict(result.errors),
        "chat_cpu_s_per_1k": (cpu1 - cpu0) * per_k,
        # The load processes' CPU per 1,000 deliveries: the same receivers decode each
        # system's frames, so this shows how much of the latency is theirs.
        "client_cpu_s_per_1k": result.client_cpu_s * per_k,
    }
    return out


def run(
    reference: Any,
    live: Any | None,
    workers: int,
    prefix: str,
    params: dict[str, Any],
    profile: Callable[[bool, str], AbstractContextManager],
) -> dict[str, Any]:
    """The scenario: the plan, then the reference and the chat server (each restarted first so
    memory freed by earlier scenarios does not hide what sockets cost), one after the other,
    with a load generator of the plan's size (started after the limits were raised)."""
    the_plan = plan(params["sockets"], params["room"], workers)
    out: dict[str, Any] = {"plan": the_plan}
    with LoadGenerator(the_plan["workers"]) as lg:
        lg.connect([])  # the load processes import their client now, not in the first chunk
        for target in (reference, live):
            if target is None:
                continue
            target.restart()  # inherits the raised limit
            is_live = target is live
            out[target.name] = measure(
                target,
                lg,
                f"{prefix}-{target.name}",
                the_plan,
                params,
                around_connect=lambda is_live=is_live: profile(is_live, "idle-big-connect"),
                around_run=lambda is_live=is_live: profile(is_live, "idle-big-fanout"),
            )
    return out


# -- figures for `python -m bench` ------------------------------------------------------------


def _ratio(a: float | None, b: float | None) -> float:
    return a / b if a is not None and b else float("nan")


def ratios(result: dict[str, Any]) -> dict[str, float]:
    """Chat server / reference: RSS per socket, connect rate, CPU per connect, fan-out p50/p99
    and CPU per delivery."""
    ref, real = result["reference"], result["chatserver"]
    return {
        "rss_per_socket": _ratio(real["rss_per_socket_kb"], ref["rss_per_socket_kb"]),
        "connect_rate": _ratio(real["connect_per_s"], ref["connect_per_s"]),
        "cpu_per_connect": _ratio(real["chat_cpu_ms_per_connect"], ref["chat_cpu_ms_per_connect"]),
        "fanout_p50_latency": _ratio(real["fanout"]["p50_ms"], ref["fanout"]["p50_ms"]),
        "fanout_p99_latency": _ratio(real["fanout"]["p99_ms"], ref["fanout"]["p99_ms"]),
        "fanout_chat_cpu_per_delivery": _ratio(
            real["fanout"]["chat_cpu_s_per_1k"], ref["fanout"]["chat_cpu_s_per_1k"]
        ),
    }


def judge(result: dict[str, Any], rat: dict[str, float]) -> list[dict[str, Any]]:
    """Issue 16's idle-sockets targets, each {"target", "measured", "met"} like bench's."""
    real, the_plan = result["chatserver"], result["plan"]
    n, room = real["sockets"], the_plan["room"]
    checks = []

    def check(what: str, measured: float, bound: float, at_most: bool) -> None:
        met = measured <= bound if at_most else measured >= bound
        sign = "<=" if at_most else ">="
        checks.append({"target": f"{what} {sign} {bound:g}", "measured": measured, "met": met})

    check("idle-big: sockets in one chat server process", n, TARGET_SOCKETS, False)
    check(f"idle-big {n}: RSS per socket ratio", rat["rss_per_socket"], RSS_BOUND, True)
    check(
        f"idle-big {n}: connect rate ratio (ticket included)",
        rat["connect_rate"],
        CONNECT_BOUND,
        False,
    )
    check(f"idle-big {n}: failed connects", real["failed"], 0, True)
    verified = real["tickets_verified"]
    check(
        f"idle-big {n}: sockets with a verified ticket (hello and chat_connections)",
        verified if verified is not None else float("nan"),
        the_plan["sockets"],
        False,
    )
    fan = real["fanout"]
    check(f"idle-big fan-out {room}: p99 latency ratio", rat["fanout_p99_latency"], P99_BOUND, True)
    for figure in ("lost", "duplicated", "out_of_order"):
        check(f"idle-big fan-out {room}: {figure.replace('_', '-')}", fan[figure], 0, True)
    return checks


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for bench's side-by-side table (the fan-out figures under the table's keys, the
    idle figures beside them)."""
    found = result.get("idle-big") or {}
    if not found:
        return []
    if "error" in found:
        return [{"scenario": "idle-big", "error": found["error"]}]
    ref_cpu = (found.get("reference") or {}).get("fanout", {}).get("chat_cpu_s_per_1k")
    rows = []
    for system in ("reference", "chatserver"):
        real = found.get(system)
        if not real:
            continue
        fan = real["fanout"]
        cpu = 1000 * fan["chat_cpu_s_per_1k"]
        rows.append(
            {
                "scenario": "idle-big",
                "system": system,
                "offered_per_s": fan["offered_per_s"],
                "deliveries_per_s": fan["deliveries_per_s"],
                "cpu_ms_per_1k": cpu,
                "cpu_ratio_to_reference": cpu / (1000 * ref_cpu) if ref_cpu else float("nan"),
                "django_cpu_ms_per_1k": 0.0,
                "redis_cpu_ms_per_1k": None,
                "p50_ms": fan["p50_ms"],
                "p99_ms": fan["p99_ms"],
                "delivered": fan["delivered"],
                "expected": fan["expected"],
                "lost": fan["lost"],
                "duplicated": fan["duplicated"],
                "out_of_order": fan["out_of_order"],
                "knee_first_failing_per_s": None,
                "knee_last_good_per_s": None,
                "sockets": real["sockets"],
                "connect_per_s": real["connect_per_s"],
                "rss_per_socket_kb": real["rss_per_socket_kb"],
                "tickets_verified": real["tickets_verified"],
            }
        )
    return rows


def summary(result: dict[str, Any]) -> str:
    """The idle figures as text, with the limit finding first."""
    the_plan = result["plan"]
    lines = [
        f"idle-big: {the_plan['sockets']:,} sockets measured of {the_plan['requested']:,} "
        f"requested; RLIMIT_NOFILE [soft, hard] = {the_plan['rlimit_nofile']}; "
        f"{the_plan['workers']} load processes, sources {the_plan['sources'][0]}.."
        f"{the_plan['sources'][-1]}",
    ]
    if the_plan["capped_by"]:
        lines.append(f"  NOT {the_plan['requested']:,}: {the_plan['capped_by']}")
    lines.append(
        f"  {'system':<12}{'sockets':>9}{'failed':>7}{'connect/s':>10}{'CPU ms/conn':>12}"
        f"{'RSS KB/sock':>12}{'verified':>10}{'fan p50':>9}{'fan p99':>9}{'lost':>6}{'dup':>5}"
        f"{'ooo':>5}"
    )
    for system in ("reference", "chatserver"):
        real = result.get(system)
        if not real:
            continue
        fan = real["fanout"]
        verified = real["tickets_verified"]
        lines.append(
            f"  {system:<12}{real['sockets']:>9,}{real['failed']:>7}{real['connect_per_s']:>10.0f}"
            f"{real['chat_cpu_ms_per_connect']:>12.2f}{real['rss_per_socket_kb']:>12.2f}"
            f"{'-' if verified is None else f'{verified:,}':>10}{fan['p50_ms']:>9.0f}"
            f"{fan['p99_ms']:>9.0f}{fan['lost']:>6}{fan['duplicated']:>5}{fan['out_of_order']:>5}"
        )
    return "\n".join(lines)
