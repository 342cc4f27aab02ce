"""The scenarios: each loads one target the same way and returns plain numbers (JSON-ready).

A scenario never starts or stops a target; `bench.__main__` does that, so the reference and the
chat server see exactly the same load in the same run.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from bench.loadgen import CHAT, ClientSpec, LoadGenerator, RunResult
from bench.procstats import cpu_seconds, total_cpu_seconds
from tests.support.live import rss_bytes


class Target(Protocol):
    """What a scenario needs from a system under test.

    Optional attributes: `dialect` and `origin` (what its clients speak and send, default
    `loadgen.CHAT` and no Origin header), `redis_pids` (a Redis whose CPU is reported apart).
    """

    name: str

    def create_rooms(self, slugs: list[str]) -> None: ...
    def ws_url(self, slug: str, index: int = 0) -> str: ...
    @property
    def chat_pids(self) -> list[int]: ...
    @property
    def django_pids(self) -> list[int]: ...


@dataclass(frozen=True)
class FanoutLoad:
    """Rooms x clients, some of them senders at a fixed rate each."""

    rooms: int
    clients_per_room: int
    senders_per_room: int
    rate_per_sender: float
    duration_s: float


def _percentile(sorted_values: list[int], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index] / 1e6


def latency_summary(result: RunResult) -> dict[str, float]:
    """Latency percentiles in milliseconds."""
    values = sorted(result.latencies_ns)
    return {
        "p50_ms": _percentile(values, 0.50),
        "p90_ms": _percentile(values, 0.90),
        "p99_ms": _percentile(values, 0.99),
        "max_ms": _percentile(values, 1.0),
    }


def _specs(target: Target, prefix: str, load: FanoutLoad) -> list[ClientSpec]:
    slugs = [f"{prefix}-{index}" for index in range(load.rooms)]
    target.create_rooms(slugs)
    specs: list[ClientSpec] = []
    dialect, origin = getattr(target, "dialect", CHAT), getattr(target, "origin", None)
    sender_id = 0
    for slug in slugs:
        # The index lets a several-instance target spread a room's sockets (senders included:
        # they are the first indexes) over its instances.
        for index in range(load.clients_per_room):
            sender = None
            if index < load.senders_per_room:
                sender, sender_id = sender_id, sender_id + 1
            specs.append(ClientSpec(target.ws_url(slug, index), slug, sender, dialect, origin))
    return specs


def fanout(
    target: Target,
    lg: LoadGenerator,
    prefix: str,
    load: FanoutLoad,
    around_run: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, Any]:
    """Deliveries/s, latency, loss, duplicates, order and server CPU per 1,000 deliveries.

    `around_run` wraps only the measured phase (e.g. a profiler), not the connects. With several
    chat server processes the CPU figure is their sum, and `chat_cpu_s_per_1k_per_process` gives
    each one's share (same denominator: all deliveries).
    """
    specs = _specs(target, prefix, load)
    connected = lg.connect(specs)
    if connected["failed"]:
        lg.close()
        raise RuntimeError(f"{target.name}: {connected['failed']} sockets failed: {connected}")
    chat_pids = target.chat_pids
    redis_pids = getattr(target, "redis_pids", [])
    try:
        chat0 = [cpu_seconds(pid) for pid in chat_pids]
        django0 = total_cpu_seconds(target.django_pids)
        redis0 = total_cpu_seconds(redis_pids)
        with around_run():
            result = lg.run(load.duration_s, mode="rate", rate=load.rate_per_sender)
        chat1 = [cpu_seconds(pid) for pid in chat_pids]
        django1 = total_cpu_seconds(target.django_pids)
        redis1 = total_cpu_seconds(redis_pids)
    finally:
        lg.close()
    per_k = 1000 / result.deliveries if result.deliveries else float("nan")
    chat_per_process = [
        (after - before) * per_k for before, after in zip(chat0, chat1, strict=True)
    ]
    extra = {"redis_cpu_s_per_1k": (redis1 - redis0) * per_k} if redis_pids else {}
    return {
        "clients": len(specs),
        "messages_sent": result.sent,
        "offered_per_s": load.rooms
        * load.senders_per_room
        * load.rate_per_sender
        * load.clients_per_room,
        "deliveries": result.deliveries,
        # Distinct (receiver, message) pairs that arrived; `expected` = what was due.
        "delivered": result.unique,
        "expected": result.expected,
        "deliveries_per_s": result.deliveries / load.duration_s,
        **latency_summary(result),
        "lost": result.lost,
        "duplicated": result.duplicates,
        "out_of_order": result.out_of_order,
        "refused": result.refused,
        "errors": dict(result.errors),
        "chat_cpu_s_per_1k": sum(chat_per_process),
        "chat_cpu_s_per_1k_per_process": chat_per_process,
        "django_cpu_s_per_1k": (django1 - django0) * per_k,
        "client_cpu_s_per_1k": result.client_cpu_s * per_k,
        **extra,
    }


def idle(target: Target, lg: LoadGenerator, prefix: str, steps: list[int]) -> dict[str, Any]:
    """Open sockets in steps (e.g. 5,000 then 10,000 in all): connect rate and RSS per socket.

    Sockets are spread over 10 rooms; the target should be a fresh process so that memory freed by
    an earlier scenario does not hide what sockets cost.
    """
    slugs = [f"{prefix}-{index}" for index in range(10)]
    target.create_rooms(slugs)
    (pid,) = target.chat_pids
    rss0 = rss_bytes(pid)
    out: dict[str, Any] = {"rss_before_mb": rss0 / 2**20, "steps": []}
    opened = 0
    try:
        for total in steps:
            specs = [
                ClientSpec(target.ws_url(slugs[i % len(slugs)]), slugs[i % len(slugs)])
                for i in range(total - opened)
            ]
            cpu0 = total_cpu_seconds(target.chat_pids)
            connected = lg.connect(specs)
            cpu1 = total_cpu_seconds(target.chat_pids)
            opened += connected["opened"]
            rss = rss_bytes(pid)
            out["steps"].append(
                {
                    "sockets": opened,
                    "failed": connected["failed"],
                    "failures": connected["failures"],
                    "connect_per_s": connected["per_second"],
                    "chat_cpu_ms_per_connect": 1000 * (cpu1 - cpu0) / max(1, connected["opened"]),
                    "rss_mb": rss / 2**20,
                    "rss_per_socket_kb": (rss - rss0) / max(1, opened) / 1024,
                }
            )
    finally:
        lg.close()
    return out


def persistence(
    target: Any,
    lg: LoadGenerator,
    prefix: str,
    *,
    rooms: int,
    window: int,
    duration_s: float,
    around_run: Callable[[], AbstractContextManager] = nullcontext,
) -> dict[str, Any]:
    """Closed-loop senders (one per room, `window` unanswered each): messages stored per second.

    A message counts once the chat server broadcast it (it does so only after Django stored it);
    afterwards the stored rows of this run are counted through Django's internal API.
    """
    slugs = [f"{prefix}-{index}" for index in range(rooms)]
    target.create_rooms(slugs)
    specs = [ClientSpec(target.ws_url(slug), slug, index) for index, slug in enumerate(slugs)]
    connected = lg.connect(specs)
    if connected["failed"]:
        lg.close()
        raise RuntimeError(f"{target.name}: {connected['failed']} sockets failed: {connected}")
    try:
        chat0, django0 = total_cpu_seconds(target.chat_pids), total_cpu_seconds(target.django_pids)
        started = time.monotonic()
        with around_run():
            result = lg.run(duration_s, mode="window", window=window, quiet_s=0.5)
        elapsed = time.monotonic() - started
        chat1, django1 = total_cpu_seconds(target.chat_pids), total_cpu_seconds(target.django_pids)
    finally:
        lg.close()

    def stored_rows() -> int:
        count = 0
        for slug in slugs:
            messages = target.live.stored_messages(slug)
            count += len(
                {m["nonce"] for m in messages if m["nonce"].startswith(result.token + "-")}
            )
        return count

    # Messages still queued in the chat server are stored late, not lost: wait until every sent
    # message is in the database or the count stops growing.
    expected = result.sent - result.refused
    stored, deadline = stored_rows(), time.monotonic() + 60
    while stored < expected and time.monotonic() < deadline:
        time.sleep(1.0)
        previous, stored = stored, stored_rows()
        if stored == previous:
            break
    per_k = 1000 / result.acked if result.acked else float("nan")
    return {
        "senders": rooms,
        "window": window,
        "sent": result.sent,
        # Throughput counts only what was answered inside the measured window.
        "stored_per_s": result.acked_in_window / duration_s,
        "acked": result.acked,
        "stored_rows": stored,
        # Every message sent and not explicitly refused must be in the database.
        "lost": max(0, result.sent - result.refused - stored),
        "refused": result.refused,
        "busy_retries": result.busy_retries,
        "unanswered": result.unanswered,
        "errors": dict(result.errors),
        **latency_summary(result),
        "chat_cpu_s_per_1k": (chat1 - chat0) * per_k,
        "django_cpu_s_per_1k": (django1 - django0) * per_k,
        "wall_s": elapsed,
    }


# -- long polling ---------------------------------------------------------------------------------


async def _held_poll(
    host: str,
    port: int,
    target: str | list[str],
    nonce: str,
    semaphore: asyncio.Semaphore,
    written: list[int] | None = None,
) -> tuple[str, int]:
    """One raw HTTP/1.1 GET held by the server; returns (outcome, monotonic ns). `written[0]`
    counts the requests sent so far; a one-item list `target` is read when the request goes
    (its ticket is refreshed while the scenario runs)."""
    if isinstance(target, list):
        target = target[0]
    async with semaphore:  # throttle the connects only (listen backlog), not the held requests
        reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        if written is not None:
            written[0] += 1
        raw = await reader.read()  # Connection: close -> the body ends at EOF
        received = time.monotonic_ns()
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 200 " not in status:
        return status, received
    if b"chunked" in head.lower():
        body = _dechunk(body)
    messages = json.loads(body).get("messages", [])
    found = any(m.get("nonce") == nonce for m in messages)
    return ("reached" if found else f"200 without it ({len(messages)} messages)"), received


async def _poll_until_answered(
    host: str,
    port: int,
    target: list[str],
    nonce: str,
    semaphore: asyncio.Semaphore,
    written: list[int],
    repolls: list[int],
) -> tuple[str, int]:
    """`_held_poll` again after an empty answer (the server's poll timeout), as the browser
    client re-polls; `repolls[0]` counts those. `written[0]` counts first requests only."""
    outcome, received = await _held_poll(host, port, target, nonce, semaphore, written)
    while outcome == "200 without it (0 messages)":
        repolls[0] += 1
        outcome, received = await _held_poll(host, port, target, nonce, semaphore)
    return outcome, received


def _dechunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2 :]
    return out


async def _longpoll(
    live: Any, slug: str, holders: int, settle_s: float, chat_pids: list[int]
) -> dict[str, Any]:
    from urllib.parse import urlsplit

    from websockets.asyncio.client import connect

    session = live.guest_session(slug)
    ticket = live.ticket(session, slug)
    last = live.internal_get(live.django_url, f"/internal/rooms/{slug}/").json()["last_id"] or 0
    poll = urlsplit(ticket["poll_url"])

    def poll_target(ticket: dict[str, Any]) -> str:
        url = urlsplit(ticket["poll_url"])
        return f"{url.path}?{url.query}&since={last}"

    target = [poll_target(ticket)]

    async def refresh_tickets() -> None:
        # Tickets live 60 s and 10,000 connects plus re-polls can take longer: requests made
        # later carry a fresh one, as the browser client fetches a new ticket.
        while True:
            await asyncio.sleep(20)
            target[0] = poll_target(await asyncio.to_thread(live.ticket, session, slug))

    refresher = asyncio.create_task(refresh_tickets())
    nonce = "lp-" + uuid.uuid4().hex
    semaphore = asyncio.Semaphore(32)
    written, repolls = [0], [0]
    tasks = [
        asyncio.create_task(
            _poll_until_answered(
                poll.hostname, poll.port, target, nonce, semaphore, written, repolls
            )
        )
        for _ in range(holders)
    ]
    # Every request that reaches the server after the message answers at once with it (since=),
    # so the outcome does not depend on this wait; it lets the requests be held first, so that
    # latency and CPU are those of answering held polls, not of a connect ramp (10,000 connects
    # take tens of seconds on a loaded machine). At most 120 s, then the message goes anyway.
    deadline = time.monotonic() + 120
    while written[0] < holders and time.monotonic() < deadline:
        if all(task.done() for task in tasks):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(settle_s)
    early = sum(task.done() for task in tasks)
    repolled_before = repolls[0]
    ticket = await asyncio.to_thread(live.ticket, session, slug)
    async with connect(ticket["ws_url"], compression=None, ping_interval=None) as ws:
        await ws.recv()  # hello
        # The chat server's CPU from the send until every poll is answered: storing the one
        # message, then answering the held polls (this process's CPU is not counted).
        cpu0 = total_cpu_seconds(chat_pids)
        sent = time.monotonic_ns()
        await ws.send(json.dumps({"type": "message", "body": "long-poll probe", "nonce": nonce}))
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
        answer_cpu_s = total_cpu_seconds(chat_pids) - cpu0
    refresher.cancel()
    outcomes = Counter(type(r).__name__ if isinstance(r, BaseException) else r[0] for r in results)
    latencies = sorted(
        r[1] - sent for r in results if not isinstance(r, BaseException) and r[0] == "reached"
    )
    reached = outcomes.pop("reached", 0)
    return {
        "held": holders,
        "answered_before_message": early,
        # Polls the server answered empty at its poll timeout while the others were still
        # connecting, re-issued (before the message; and all of them).
        "repolls_before_message": repolled_before,
        "repolls": repolls[0],
        "reached": reached,
        "answer_cpu_s": answer_cpu_s,
        "chat_cpu_ms_per_answer": 1000 * answer_cpu_s / reached if reached else float("nan"),
        "other_outcomes": dict(outcomes),
        "p50_ms": _percentile(latencies, 0.5),
        "max_ms": _percentile(latencies, 1.0),
    }


def longpoll(target: Any, prefix: str, holders: int, settle_s: float = 2.0) -> dict[str, Any]:
    """`holders` held `GET /poll/<slug>` requests; one message must reach all of them.

    `chat_cpu_ms_per_answer` is the chat server's CPU from the send until the last answer,
    per poll the message reached (compare with a socket delivery's, e.g. big-room's).
    """
    slug = f"{prefix}-0"
    target.create_rooms([slug])
    chat0 = total_cpu_seconds(target.chat_pids)
    out = asyncio.run(_longpoll(target.live, slug, holders, settle_s, target.chat_pids))
    out["chat_cpu_s"] = total_cpu_seconds(target.chat_pids) - chat0
    return out


# -- Django's CPU per stored message ---------------------------------------------------------------


def django_cost(
    target: Any,
    lg: LoadGenerator,
    prefix: str,
    rates: list[float],
    duration_s: float,
    rooms: int = 10,
    around_run: Callable[[float], AbstractContextManager] = lambda rate: nullcontext(),
) -> list[dict[str, Any]]:
    """Django's CPU per stored message at each offered rate (messages/s, all rooms together).

    One socket per room, which is also the room's sender at `rate / rooms` messages/s, so each
    delivery is the sender's own copy of one stored message: `django_cpu_s_per_1k` is Django's
    CPU per 1,000 stored messages. Fresh rooms per rate (`<prefix>-r<rate>-<i>`). The chat
    server's batches to Django in the phase are counted too: CPU per message falls as batches
    grow, and a slower Django gets larger batches at the same rate (its answer takes longer, so
    more messages queue behind it), so the figures say per request as well.
    """
    out = []
    for rate in rates:
        load = FanoutLoad(rooms, 1, 1, rate / rooms, duration_s)
        tag = f"{prefix}-r{int(rate)}"
        batches0, items0 = target.persist_batches()
        figures = fanout(target, lg, tag, load, around_run=lambda rate=rate: around_run(rate))
        batches1, items1 = target.persist_batches()
        batches, items = batches1 - batches0, items1 - items0
        # Django's CPU over the phase, per request it answered (rooms' history reads at connect
        # happen before the phase and are not counted).
        django_cpu_ms = figures["django_cpu_s_per_1k"] * figures["deliveries"]
        out.append(
            {
                "messages_per_s": rate,
                "stored": figures["delivered"],
                "django_cpu_ms_per_message": figures["django_cpu_s_per_1k"],
                "chat_cpu_ms_per_message": figures["chat_cpu_s_per_1k"],
                "batches": batches,
                "messages_per_batch": items / batches if batches else float("nan"),
                "django_cpu_ms_per_batch": django_cpu_ms / batches if batches else float("nan"),
                "p50_ms": figures["p50_ms"],
                "p99_ms": figures["p99_ms"],
                "lost": figures["lost"],
                "duplicated": figures["duplicated"],
                "out_of_order": figures["out_of_order"],
            }
        )
    return out


def django_direct(
    live: Any,
    prefix: str,
    rate: float,
    batch: int,
    duration_s: float,
    senders: int = 8,
    warmup: int = 40,
) -> dict[str, Any]:
    """Django alone, fed the chat server's requests: `rate` messages/s as signed
    `POST /internal/messages/batch/` of `batch` messages each, on a fixed schedule.

    This holds the batch size fixed, so two Djangos compare at the same requests per message
    (through the chat server a slower Django also gets larger batches). `senders` threads, each
    with its own keep-alive connection, share the schedule; a request that would start late
    starts at once (the achieved rate is reported). `warmup` unmeasured requests first (each
    gunicorn thread's first request loads what Django loads lazily). Every answer must store
    every item.
    """
    import threading

    import requests

    from tests.support.live import sign_headers

    slugs = [f"{prefix}-{index}" for index in range(10)]
    live.create_rooms(slugs)
    target = "/internal/messages/batch/"
    interval_ns = int(1e9 * batch / rate)
    requests_due = max(1, int(duration_s * rate / batch))
    run = uuid.uuid4().hex[:8]
    stored: list[int] = []
    failures: Counter = Counter()
    start = 0

    def sender(index: int, first: int, due: int, paced: bool) -> None:
        session = requests.Session()
        count = 0
        for n in range(first + index, first + due, senders):
            delay = (start + (n - first) * interval_ns - time.monotonic_ns()) / 1e9
            if paced and delay > 0:
                time.sleep(delay)
            items = [
                {
                    "room": slugs[(n * batch + i) % len(slugs)],
                    "nonce": f"d-{run}-{n}-{i}",
                    "body": f"direct {n} {i}",
                    "name": "bench",
                    "uid": "g:" + "0" * 16,
                    "user_id": None,
                    "guest": True,
                }
                for i in range(batch)
            ]
            body = json.dumps({"messages": items}).encode()
            headers = {**sign_headers(live.live.secret, "POST", target, body)}
            headers["Content-Type"] = "application/json"
            answer = session.post(live.live.django_url + target, data=body, headers=headers)
            if answer.status_code != 200:
                failures[answer.status_code] += 1
                continue
            count += sum(1 for r in answer.json()["results"] if r.get("ok") and r.get("created"))
        if paced:
            stored.append(count)
        session.close()

    def phase(first: int, due: int, paced: bool) -> None:
        threads = [
            threading.Thread(target=sender, args=(i, first, due, paced)) for i in range(senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    phase(requests_due, warmup, paced=False)  # nonces after the measured ones: never repeats
    pids = live.django_pids
    start = time.monotonic_ns() + 50_000_000
    cpu0 = total_cpu_seconds(pids)
    began = time.monotonic()
    phase(0, requests_due, paced=True)
    elapsed = time.monotonic() - began
    cpu1 = total_cpu_seconds(pids)
    total = sum(stored)
    return {
        "messages_per_s": rate,
        "batch": batch,
        "requests": requests_due,
        "stored": total,
        "expected": requests_due * batch,
        "failures": dict(failures),
        "achieved_per_s": total / elapsed if elapsed else float("nan"),
        "django_cpu_ms_per_message": 1000 * (cpu1 - cpu0) / total if total else float("nan"),
        "django_cpu_ms_per_request": 1000 * (cpu1 - cpu0) / requests_due,
    }
