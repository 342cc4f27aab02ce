"""The peers side by side: the rate sweep, its knee, the table `python -m bench` prints, the plot.

Systems: the reference broadcaster, this project (chat server + Django), and the Django Channels
tutorial on Daphne in two variants (`ChannelsTarget`: in-memory layer; Redis layer with the message
saved in the consumer). Every one gets the same many-rooms load shape; the sweep raises the offered
rate (deliveries/s = rooms x senders per room x messages/s per sender x sockets per room, the
sender's own copy included) step by step, every system at one rate before any goes to the next.
A point fails when a delivery was lost, duplicated or out of order, or when p99 latency is over
`p99_limit_ms` (1 s by default). A system's knee is the lowest failing rate above which no tried
rate held: on a shared machine one point can fail by a latency spike and the next hold, so a
system leaves the sweep only after `STOP_AFTER` failing rates in a row, and an isolated failure
below the knee is reported as such, not taken for the knee.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.loadgen import LoadGenerator, OutOfStep
from bench.procstats import total_cpu_seconds
from bench.scenarios import FanoutLoad

log = logging.getLogger("bench")
P99_LIMIT_MS = 1000.0
STOP_AFTER = 2  # failing rates in a row after which a system leaves the sweep
SYSTEMS = ("reference", "chatserver", "channels_memory", "channels_redis")
LABELS = {
    "reference": "reference (bare Autobahn)",
    "chatserver": "this project (chat server + Django)",
    "channels_memory": "Channels tutorial on Daphne, in-memory layer",
    "channels_redis": "Channels tutorial on Daphne, Redis layer + save",
}


@dataclass(frozen=True)
class Sweep:
    """The load shape (its `rate_per_sender` is ignored) and the offered deliveries/s to try."""

    shape: FanoutLoad
    offered: tuple[float, ...]
    p99_limit_ms: float = P99_LIMIT_MS

    def load_at(self, offered: float) -> FanoutLoad:
        shape = self.shape
        per_sender = offered / (shape.rooms * shape.senders_per_room * shape.clients_per_room)
        return replace(shape, rate_per_sender=per_sender)


def failures(point: dict[str, Any], p99_limit_ms: float = P99_LIMIT_MS) -> list[str]:
    """Why a sweep point counts as losing or delaying messages (empty: it does not)."""
    if "error" in point:
        return [f"error: {point['error']}"]
    why = [
        f"{point[key]} {key.replace('_', ' ')}"
        for key in ("lost", "duplicated", "out_of_order")
        if point.get(key, 0) > 0
    ]
    p99 = point.get("p99_ms", float("nan"))
    if not p99 <= p99_limit_ms:  # NaN (nothing delivered) fails too
        why.append(f"p99 {p99:.0f} ms > {p99_limit_ms:.0f} ms")
    return why


def knee(points: list[dict[str, Any]], p99_limit_ms: float = P99_LIMIT_MS) -> dict[str, Any]:
    """The offered rate from which on a system loses or delays messages, and the last it held.

    `first_failing_per_s` is the lowest failing rate with no held rate above it, None when the
    highest rate tried held (the knee is then above `last_good_per_s`); `last_good_per_s` is the
    highest held rate, None when every rate failed. `isolated_failures` are failing rates below a
    held one (noise, or a real dip: look at the points).
    """
    ordered = sorted(points, key=lambda p: p["offered_per_s"])
    verdicts = [(p["offered_per_s"], failures(p, p99_limit_ms)) for p in ordered]
    held = [rate for rate, why in verdicts if not why]
    last_good = held[-1] if held else None
    failing = [(rate, why) for rate, why in verdicts if why]
    above = [(rate, why) for rate, why in failing if last_good is None or rate > last_good]
    return {
        "first_failing_per_s": above[0][0] if above else None,
        "last_good_per_s": last_good,
        "why": above[0][1] if above else [],
        "isolated_failures": [rate for rate, _why in failing if last_good and rate < last_good],
    }


def settle(pids: list[int], timeout: float = 30.0, busy: float = 0.1) -> float:
    """Wait (up to `timeout`) until `pids` use under `busy` of a core over 0.5 s; return the wait.

    A system that fell behind may still be working off its backlog after the load stopped; the
    next measurement must not share the cores with it.
    """
    if not pids:
        return 0.0
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = total_cpu_seconds(pids)
        time.sleep(0.5)
        if total_cpu_seconds(pids) - before < busy * 0.5:
            break
    return time.monotonic() - started


@contextmanager
def lifetime(target: Any) -> Iterator[Any]:
    """A peer (it has `running()`) gets a fresh process for the block; others are already up."""
    with target.running() if hasattr(target, "running") else nullcontext(target):
        yield target


def measure(
    target: Any,
    lg: LoadGenerator,
    prefix: str,
    load: FanoutLoad,
    around_run: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, Any]:
    """One fan-out measurement of `target`; a peer runs in a Daphne started for it alone."""
    with lifetime(target):
        return scenarios.fanout(target, lg, prefix, load, around_run=around_run)


def sweep(targets: list[Any], lg: LoadGenerator, prefix: str, plan: Sweep) -> dict[str, Any]:
    """Every target at each offered rate in turn; a target leaves the sweep at its knee.

    Returns `{"load": the shape, "systems": {name: {"points", "knee", ...}}}`.
    """
    out: dict[str, dict[str, Any]] = {t.name: {"points": []} for t in targets}
    active = list(targets)
    failed_in_a_row = dict.fromkeys(out, 0)
    for step, offered in enumerate(sorted(plan.offered)):
        load = plan.load_at(offered)
        for target in list(active):
            log.info("sweep: %s at %g deliveries/s offered", target.name, offered)
            try:
                point = measure(target, lg, f"{prefix}-{step}", load)
            except OutOfStep:
                raise  # interrupted (Ctrl-C, SIGTERM) or the load processes are lost
            except Exception as exc:  # noqa: BLE001 - a failed point is the knee, run goes on
                log.exception("sweep point failed")
                point = {"offered_per_s": offered, "error": f"{type(exc).__name__}: {exc}"}
                try:
                    lg.close()
                except Exception:  # noqa: BLE001 - the workers may already have no sockets
                    log.exception("closing the load sockets failed")
            out[target.name]["points"].append(point)
            if failures(point, plan.p99_limit_ms):
                failed_in_a_row[target.name] += 1
                # A system that fell behind may still be busy: not during the next measurement.
                waited = settle(target.chat_pids + target.django_pids)
                out[target.name]["settle_s"] = out[target.name].get("settle_s", 0.0) + waited
                if failed_in_a_row[target.name] >= STOP_AFTER:
                    active.remove(target)
            else:
                failed_in_a_row[target.name] = 0
    for name, found in out.items():
        found["knee"] = knee(found["points"], plan.p99_limit_ms)
        found["p99_limit_ms"] = plan.p99_limit_ms
        log.info("sweep: %s knee %s", name, found["knee"])
    shape = plan.shape
    load = {
        "rooms": shape.rooms,
        "clients_per_room": shape.clients_per_room,
        "senders_per_room": shape.senders_per_room,
        "duration_s": shape.duration_s,
        "offered_per_s": sorted(plan.offered),
    }
    return {"load": load, "systems": out}


def rejudge(merged: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """After several runs were merged point by point (medians), give each system the knee of its
    merged points (those of the first run when the runs tried different rates) and keep each
    run's own knee in `knee_per_run`: medians of knees taken one figure at a time would pair a
    last held rate of one run with a knee of another."""
    for name, found in merged.get("systems", {}).items():
        found["knee"] = knee(found["points"], found.get("p99_limit_ms", P99_LIMIT_MS))
        found["knee_per_run"] = [
            run["systems"][name]["knee"] for run in runs if name in run.get("systems", {})
        ]


# -- the side-by-side table -----------------------------------------------------------------------


def _ms(value: float) -> float:
    return value * 1000 if isinstance(value, int | float) else float("nan")


def table(result: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (scenario, system) of the fan-out scenarios, with each system's knee.

    `cpu_ms_per_1k` is the whole system: chat server + Django for this project, the Daphne
    process for a Channels peer (Django runs inside it); Redis is apart (`redis_cpu_ms_per_1k`,
    the shared local server's process).
    """
    knees = {
        name: found.get("knee", {})
        for name, found in ((result.get("sweep") or {}).get("systems") or {}).items()
    }
    rows = []
    for scenario in ("many-rooms", "big-room"):
        found = result.get(scenario) or {}
        if "error" in found:
            rows.append({"scenario": scenario, "error": found["error"]})
            continue
        ref = found.get("reference", {})
        ref_cpu = _ms(ref.get("chat_cpu_s_per_1k"))
        for system in SYSTEMS:
            real = found.get(system)
            if not real:
                continue
            row: dict[str, Any] = {"scenario": scenario, "system": system}
            if "error" in real:
                row["error"] = real["error"]
                rows.append(row)
                continue
            cpu = _ms(real["chat_cpu_s_per_1k"]) + _ms(real.get("django_cpu_s_per_1k", 0.0))
            row.update(
                {
                    "offered_per_s": real.get("offered_per_s"),
                    "deliveries_per_s": real["deliveries_per_s"],
                    "cpu_ms_per_1k": cpu,
                    "cpu_ratio_to_reference": cpu / ref_cpu if ref_cpu else float("nan"),
                    "django_cpu_ms_per_1k": _ms(real.get("django_cpu_s_per_1k", 0.0)),
                    "redis_cpu_ms_per_1k": _ms(real["redis_cpu_s_per_1k"])
                    if "redis_cpu_s_per_1k" in real
                    else None,
                    "p50_ms": real["p50_ms"],
                    "p99_ms": real["p99_ms"],
                    "delivered": real.get("delivered"),
                    "expected": real.get("expected"),
                    "lost": real["lost"],
                    "duplicated": real["duplicated"],
                    "out_of_order": real["out_of_order"],
                    "knee_first_failing_per_s": knees.get(system, {}).get("first_failing_per_s"),
                    "knee_last_good_per_s": knees.get(system, {}).get("last_good_per_s"),
                }
            )
            rows.append(row)
    return rows


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def summary(rows: list[dict[str, Any]], sweep_systems: dict[str, Any] | None) -> str:
    """The table as aligned text (what `python -m bench` logs at the end)."""
    head = (
        f"{'scenario':<11}{'system':<17}{'offered/s':>10}{'deliv/s':>9}{'CPU ms/1k':>10}"
        f"{'x ref':>7}{'p50 ms':>8}{'p99 ms':>8}{'delivered':>11}{'lost':>9}{'dup':>5}"
        f"{'ooo':>5}{'knee/s':>9}"
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        if "error" in row:
            lines.append(f"{row['scenario']:<11}{row.get('system', ''):<17}error: {row['error']}")
            continue
        knee_rate = row["knee_first_failing_per_s"]
        if knee_rate is None and row["knee_last_good_per_s"] is not None:
            knee_rate = f">{row['knee_last_good_per_s']:,.0f}"
        lines.append(
            f"{row['scenario']:<11}{row['system']:<17}{_fmt(row['offered_per_s']):>10}"
            f"{_fmt(row['deliveries_per_s']):>9}{_fmt(row['cpu_ms_per_1k'], 1):>10}"
            f"{_fmt(row['cpu_ratio_to_reference'], 2):>7}{_fmt(row['p50_ms']):>8}"
            f"{_fmt(row['p99_ms']):>8}{_fmt(row['delivered']):>11}{_fmt(row['lost']):>9}"
            f"{_fmt(row['duplicated']):>5}{_fmt(row['out_of_order']):>5}{_fmt(knee_rate):>9}"
        )
    for name, found in (sweep_systems or {}).items():
        if "knee" in found:
            k = found["knee"]
            isolated = k.get("isolated_failures")
            lines.append(
                f"sweep {name}: last good {_fmt(k['last_good_per_s'])}/s, knee (first failing) "
                f"{_fmt(k['first_failing_per_s'])}/s {'; '.join(k['why'])}"
                + (f" (isolated failures at {isolated}/s)" if isolated else "")
            )
    return "\n".join(lines)


# -- the plot -------------------------------------------------------------------------------------


def plot_sweep(sweep_result: dict[str, Any], path: Path, title: str = "") -> None:
    """p50 and p99 latency against offered deliveries/s, one colour per system; a cross marks a
    point that lost, duplicated or reordered deliveries."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = dict(zip(SYSTEMS, ("#4c72b0", "#55a868", "#dd8452", "#c44e52"), strict=True))
    fig, ax = plt.subplots(figsize=(11, 5))
    limit = P99_LIMIT_MS
    for name in SYSTEMS:
        found = sweep_result["systems"].get(name)
        if not found or not found.get("points"):
            continue
        limit = found.get("p99_limit_ms", limit)
        points = sorted(
            (p for p in found["points"] if "error" not in p), key=lambda p: p["offered_per_s"]
        )
        xs = [p["offered_per_s"] for p in points]
        color = colors[name]
        ax.plot(xs, [p["p99_ms"] for p in points], "-o", color=color, label=LABELS[name])
        ax.plot(xs, [p["p50_ms"] for p in points], ":", color=color)
        lossy = [p for p in points if p["lost"] or p["duplicated"] or p["out_of_order"]]
        if lossy:
            ax.scatter(
                [p["offered_per_s"] for p in lossy],
                [p["p99_ms"] for p in lossy],
                marker="x",
                s=120,
                color=color,
                zorder=4,
            )
            for p in lossy:
                share = p["lost"] / p["expected"] if p.get("expected") else float("nan")
                ax.annotate(
                    f"{share:.0%} lost",
                    (p["offered_per_s"], p["p99_ms"]),
                    textcoords="offset points",
                    xytext=(6, -10),
                    fontsize=7,
                    color=color,
                )
    ax.axhline(limit, color="grey", linestyle="--", linewidth=0.8)
    ax.annotate(
        f"p99 limit {limit:.0f} ms",
        (0.01, limit),
        xycoords=("axes fraction", "data"),
        xytext=(0, 3),
        textcoords="offset points",
        fontsize=7,
        color="grey",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    load = sweep_result["load"]
    ax.set_xlabel(
        f"offered deliveries per second ({load['rooms']} rooms x {load['clients_per_room']} "
        f"sockets, {load['senders_per_room']} senders per room, {load['duration_s']:g} s each)"
    )
    ax.set_ylabel("latency, ms: p99 solid, p50 dotted (x: deliveries lost)")
    ax.set_title(title or "Latency against offered rate, same load, same run", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
