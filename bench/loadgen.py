"""The load generator: real WebSocket clients in several processes, driven from one coordinator.

Each worker process runs one asyncio loop with `websockets` clients. The coordinator
(`LoadGenerator`) hands every worker its share of clients and then drives phases over a pipe:

* `connect`: open the sockets (each counts as open once its `hello` frame arrived);
* `run`: senders send `{"type": "message"}` frames whose body carries the CLOCK_MONOTONIC send time
  (`t=<ns> seq=<n> sender=<id> run=<token>`), either at a fixed rate or keeping a window of
  unanswered messages (closed loop, for persistence throughput); every client records each message
  frame of this run it receives, so latency, loss, duplicates and order (each receiver must see
  its room's message ids strictly increasing) are measured at the receivers;
* `close`: close the sockets.

Clients speak one of two dialects (`ClientSpec.dialect`): `CHAT`, the frames of docs/protocol.md
(which the reference broadcaster also speaks), or `TUTORIAL`, the Django Channels tutorial's
`{"message": "<text>"}` both ways, with no hello frame (a socket is open once the handshake is
done: the tutorial's consumer joins its group before accepting), no ids and no error frames. The
same body goes in either frame, so the measurement is the same code for both; without ids, order
is checked per sender (a receiver must see each sender's sequence numbers rising).

CLOCK_MONOTONIC is one clock for every process of the machine, so a send time taken in one worker
and a receive time taken in another compare directly.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import resource
import time
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

CONNECT_CONCURRENCY = 24  # in-flight handshakes per worker; keeps under the listen backlog (50)
RETRY_BUSY_S = 0.05
GOLDEN = 0.6180339887498949  # (sqrt(5) - 1) / 2
CHAT = "chat"  # docs/protocol.md frames: hello, {"type": "message", "body", "nonce"}, ids
TUTORIAL = "tutorial"  # the Channels tutorial: {"message": "<text>"} both ways, nothing else


@dataclass(frozen=True)
class ClientSpec:
    """One socket to open: its URL, its room, its sender id (None for a pure receiver), the
    frames it speaks (`CHAT` or `TUTORIAL`), the Origin header it sends (None: none) and the
    local address it binds before connecting (None: the kernel's choice). Every 127.0.0.x is
    loopback on Linux and has its own ephemeral ports, so several sources lift the ~28,000
    connections one source address can open to one server port."""

    url: str
    room: str
    sender: int | None = None
    dialect: str = CHAT
    origin: str | None = None
    source: str | None = None


class OutOfStep(RuntimeError):
    """A phase was cut short (Ctrl-C, SIGTERM, a worker's timeout): the workers' replies no
    longer match the coordinator's requests, so this generator cannot be used any more."""


@dataclass
class RunResult:
    """What all receivers and senders saw in one `run` phase, merged over the workers."""

    duration_s: float
    token: str = ""
    deliveries: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    expected: int = 0
    unique: int = 0
    sent: int = 0
    acked: int = 0
    acked_in_window: int = 0
    refused: int = 0
    busy_retries: int = 0
    unanswered: int = 0
    errors: Counter = field(default_factory=Counter)
    latencies_ns: array = field(default_factory=lambda: array("q"))
    client_cpu_s: float = 0.0

    @property
    def lost(self) -> int:
        """Deliveries a receiver should have had (each non-refused message of its room) but not."""
        return self.expected - self.unique


# -- the worker side ------------------------------------------------------------------------------


class _Client:
    """One socket and what it saw during the current run."""

    def __init__(self, spec: ClientSpec, ws: Any) -> None:
        self.spec = spec
        self.ws = ws
        self.seen: dict[int, set[int]] = defaultdict(set)
        self.last_id = 0  # the highest message id this socket received in the current run
        self.last_seq: dict[int, int] = {}  # per sender, for frames without an id
        # sender-side state
        self.acked: set[int] = set()
        self.acked_in_window = 0
        self.refused: set[int] = set()
        self.outstanding: dict[int, int] = {}  # seq -> first send time
        self.window_free: asyncio.Event | None = None
        self.retry: list[int] = []


class _Worker:
    """The asyncio side of one load process."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.clients: list[_Client] = []
        self.readers: list[asyncio.Task] = []
        self.token = ""
        self.recording = False
        self.latencies = array("q")
        self.deliveries = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.errors: Counter = Counter()
        self.busy_retries = 0
        self.last_rx_ns = 0
        self.end_ns = 0

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            command, *args = await loop.run_in_executor(None, self.conn.recv)
            if command == "connect":
                reply = await self.connect(*args)
            elif command == "run":
                reply = await self.run(*args)
            elif command == "close":
                reply = await self.close()
            elif command == "exit":
                await self.close()
                self.conn.send(("bye",))
                return
            else:
                reply = ("error", f"unknown command {command!r}")
            self.conn.send(reply)

    # -- connect / close --------------------------------------------------------------------------

    async def connect(self, specs: list[ClientSpec]) -> tuple:
        from websockets.asyncio.client import connect

        semaphore = asyncio.Semaphore(CONNECT_CONCURRENCY)
        failures: Counter = Counter()

        async def open_one(spec: ClientSpec) -> None:
            async with semaphore:
                try:
                    bind = {"local_addr": (spec.source, 0)} if spec.source else {}
                    ws = await connect(
                        spec.url,
                        origin=spec.origin,
                        compression=None,
                        ping_interval=None,
                        max_size=2**22,
                        max_queue=None,
                        open_timeout=60,
                        close_timeout=2,
                        **bind,
                    )
                    if spec.dialect == CHAT:
                        hello = json.loads(await asyncio.wait_for(ws.recv(), 60))
                        if hello.get("type") != "hello":
                            raise RuntimeError(f"first frame was {hello.get('type')!r}")
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    failures[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
                    return
            client = _Client(spec, ws)
            self.clients.append(client)
            self.readers.append(asyncio.create_task(self.read(client)))

        started = time.monotonic()
        await asyncio.gather(*(open_one(spec) for spec in specs))
        return (
            "connected",
            len(specs) - sum(failures.values()),
            dict(failures),
            time.monotonic() - started,
        )

    async def close(self) -> tuple:
        count = len(self.clients)
        await asyncio.gather(*(c.ws.close() for c in self.clients), return_exceptions=True)
        for task in self.readers:
            task.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        self.clients, self.readers = [], []
        return ("closed", count)

    # -- receiving --------------------------------------------------------------------------------

    async def read(self, client: _Client) -> None:
        """Record every message frame of the current run; settle the sender's own messages."""
        try:
            async for raw in client.ws:
                now = time.monotonic_ns()
                if not self.recording:
                    continue
                frame = json.loads(raw)
                if client.spec.dialect == TUTORIAL:
                    self.on_message(client, {"body": frame.get("message", "")}, now)
                    continue
                kind = frame.get("type")
                if kind == "message":
                    self.on_message(client, frame, now)
                elif kind == "error":
                    self.on_error(client, frame)
        except Exception:  # noqa: BLE001 - a dropped socket shows up as lost deliveries
            return

    def on_message(self, client: _Client, frame: dict, now: int) -> None:
        fields = dict(
            part.split("=", 1) for part in frame.get("body", "").split(" ") if "=" in part
        )
        if fields.get("run") != self.token:
            return
        sender, seq = int(fields["sender"]), int(fields["seq"])
        self.last_rx_ns = now
        self.deliveries += 1
        seen = client.seen[sender]
        if seq in seen:
            self.duplicates += 1
            return
        seen.add(seq)
        # Ids are given in order per room (docs/protocol.md), so a receiver must see them rising;
        # one lower than an id already delivered means a message overtook another.
        message_id = frame.get("id")
        if isinstance(message_id, int):
            if message_id <= client.last_id:
                self.out_of_order += 1
            else:
                client.last_id = message_id
        elif message_id is None:  # no ids (tutorial frames): each sender's sequence must rise
            if seq < client.last_seq.get(sender, -1):
                self.out_of_order += 1
            else:
                client.last_seq[sender] = seq
        self.latencies.append(now - int(fields["t"]))
        if sender == client.spec.sender:
            client.acked.add(seq)
            if now <= self.end_ns:
                client.acked_in_window += 1
            if client.outstanding.pop(seq, None) is not None and client.window_free:
                client.window_free.set()

    def on_error(self, client: _Client, frame: dict) -> None:
        code = str(frame.get("code"))
        self.errors[code] += 1
        nonce = str(frame.get("nonce") or "")
        prefix = f"{self.token}-{client.spec.sender}-"
        if not nonce.startswith(prefix):
            return
        seq = int(nonce[len(prefix) :])
        if code == "busy" and seq in client.outstanding:
            self.busy_retries += 1
            client.retry.append(seq)
        else:
            client.refused.add(seq)
            client.outstanding.pop(seq, None)
        if client.window_free:
            client.window_free.set()

    # -- sending ----------------------------------------------------------------------------------

    @staticmethod
    async def _sleep_until(deadline_ns: int) -> None:
        delay = (deadline_ns - time.monotonic_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)

    def _frame(self, client: _Client, seq: int, body_t: int | None = None) -> tuple[int, str]:
        """The send time and the frame for message `seq` (a retry keeps its first send time)."""
        t = time.monotonic_ns() if body_t is None else body_t
        body = f"t={t} seq={seq} sender={client.spec.sender} run={self.token}"
        if client.spec.dialect == TUTORIAL:
            return t, json.dumps({"message": body})
        nonce = f"{self.token}-{client.spec.sender}-{seq}"
        return t, json.dumps({"type": "message", "body": body, "nonce": nonce})

    async def send_at_rate(self, client: _Client, start: int, end: int, rate: float) -> int:
        """Send at a fixed rate on an absolute schedule (no drift); returns how many were sent."""
        interval = int(1e9 / rate)
        # Spread senders over the first interval so they do not all fire at once: sender ids
        # stepped by the golden ratio (mod 1) fill the interval evenly for any number of senders.
        # (Before, `sender * 7919 ns % interval` put every sender within a millisecond, so all
        # fired together each interval.) A sender sends rate x duration messages when that is
        # whole, since its offset is under one interval.
        offset = int(interval * ((client.spec.sender or 0) * GOLDEN % 1.0))
        seq = 0
        while (due := start + offset + seq * interval) < end:
            await self._sleep_until(due)
            await client.ws.send(self._frame(client, seq)[1])
            seq += 1
        return seq

    async def send_window(self, client: _Client, end: int, window: int) -> int:
        """Keep `window` messages unanswered until `end`; busy answers are retried (same nonce)."""
        client.window_free = asyncio.Event()
        seq = 0
        while time.monotonic_ns() < end:
            while client.retry:
                old = client.retry.pop()
                await asyncio.sleep(RETRY_BUSY_S)
                await client.ws.send(self._frame(client, old, client.outstanding.get(old))[1])
            if len(client.outstanding) >= window:
                client.window_free.clear()
                try:
                    await asyncio.wait_for(
                        client.window_free.wait(), (end - time.monotonic_ns()) / 1e9
                    )
                except TimeoutError:
                    break
                continue
            client.outstanding[seq], frame = self._frame(client, seq)
            await client.ws.send(frame)
            seq += 1
        return seq

    async def run(
        self,
        start: int,
        end: int,
        token: str,
        mode: str,
        rate: float,
        window: int,
        quiet_s: float,
        max_drain_s: float,
    ) -> tuple:
        for client in self.clients:
            client.seen.clear()
            client.last_id = 0
            client.last_seq.clear()
            client.acked.clear()
            client.refused.clear()
            client.outstanding.clear()
            client.retry.clear()
        self.token, self.recording, self.end_ns = token, True, end
        for client in self.clients:
            client.acked_in_window = 0
        self.latencies = array("q")
        self.deliveries = self.duplicates = self.busy_retries = self.out_of_order = 0
        self.errors = Counter()
        self.last_rx_ns = 0
        cpu0 = time.process_time()
        senders = [c for c in self.clients if c.spec.sender is not None]
        if mode == "rate":
            jobs = [self.send_at_rate(c, start, end, rate) for c in senders]
        else:
            await self._sleep_until(start)
            jobs = [self.send_window(c, end, window) for c in senders]
        sent_counts = await asyncio.gather(*jobs, return_exceptions=True)
        # Drain: wait until the room goes quiet (and, closed loop, nothing is unanswered).
        deadline = end + int(max_drain_s * 1e9)
        while time.monotonic_ns() < deadline:
            now = time.monotonic_ns()
            quiet = now - max(self.last_rx_ns, end) > quiet_s * 1e9
            pending = any(c.outstanding for c in senders)
            if quiet and not pending:
                break
            for client in senders:  # retries still owed after the sending phase ended
                while client.retry:
                    old = client.retry.pop()
                    await client.ws.send(self._frame(client, old, client.outstanding.get(old))[1])
            await asyncio.sleep(0.05)
        self.recording = False
        unique: Counter = Counter()
        receivers: Counter = Counter()
        for client in self.clients:
            receivers[client.spec.room] += 1
            for sender, seqs in client.seen.items():
                unique[(client.spec.room, sender)] += len(seqs)
        sender_stats = {}
        for client, sent in zip(senders, sent_counts, strict=True):
            if isinstance(sent, BaseException):
                self.errors[f"send: {type(sent).__name__}"] += 1
                sent = 0
            sender_stats[client.spec.sender] = {
                "room": client.spec.room,
                "sent": sent,
                "acked": len(client.acked),
                "acked_in_window": client.acked_in_window,
                "refused": len(client.refused),
                "unanswered": len(client.outstanding),
            }
        return (
            "result",
            {
                "deliveries": self.deliveries,
                "duplicates": self.duplicates,
                "out_of_order": self.out_of_order,
                "unique": dict(unique),
                "receivers": dict(receivers),
                "senders": sender_stats,
                "errors": dict(self.errors),
                "busy_retries": self.busy_retries,
                "latencies": self.latencies.tobytes(),
                "cpu_s": time.process_time() - cpu0,
            },
        )


def _worker_main(conn: Connection) -> None:
    # Thousands of sockets per process need file descriptors: take the hard limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        asyncio.run(_Worker(conn).serve())
    except (KeyboardInterrupt, EOFError):
        pass


# -- the coordinator side -------------------------------------------------------------------------


class LoadGenerator:
    """Starts `workers` load processes and drives them through connect / run / close phases."""

    def __init__(self, workers: int = 3) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.out_of_step = False
        for index in range(workers):
            here, there = ctx.Pipe()
            process = ctx.Process(
                target=_worker_main, args=(there,), name=f"bench-load-{index}", daemon=True
            )
            process.start()
            there.close()
            self.pipes.append(here)
            self.processes.append(process)

    def _ask_all(self, messages: list[tuple], timeout: float) -> list[tuple]:
        if self.out_of_step:
            raise OutOfStep("an earlier phase was cut short; this load generator is unusable")
        try:
            for pipe, message in zip(self.pipes, messages, strict=True):
                pipe.send(message)
            replies = []
            deadline = time.monotonic() + timeout
            for pipe in self.pipes:
                if not pipe.poll(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("a load process did not answer in time")
                replies.append(pipe.recv())
        except BaseException:
            # A reply still owed would answer the next request: never ask again.
            self.out_of_step = True
            raise
        return replies

    def connect(self, specs: list[ClientSpec], timeout: float = 300) -> dict[str, Any]:
        """Open every socket (spread round-robin over the workers); returns counts and rate."""
        shares: list[list[ClientSpec]] = [[] for _ in self.pipes]
        for index, spec in enumerate(specs):
            shares[index % len(shares)].append(spec)
        started = time.monotonic()
        replies = self._ask_all([("connect", share) for share in shares], timeout)
        elapsed = time.monotonic() - started
        failures: Counter = Counter()
        for reply in replies:
            failures.update(reply[2])
        opened = sum(reply[1] for reply in replies)
        return {
            "opened": opened,
            "failed": sum(failures.values()),
            "failures": dict(failures.most_common(5)),
            "seconds": elapsed,
            "per_second": opened / elapsed if elapsed else 0.0,
        }

    def run(
        self,
        duration_s: float,
        *,
        mode: str = "rate",
        rate: float = 5.0,
        window: int = 20,
        quiet_s: float = 1.0,
        max_drain_s: float = 15.0,
        lead_s: float = 0.3,
    ) -> RunResult:
        """Drive one measured phase on every worker and merge what they saw."""
        token = f"r{time.time_ns() % 10**12:x}"
        start = time.monotonic_ns() + int(lead_s * 1e9)
        end = start + int(duration_s * 1e9)
        message = ("run", start, end, token, mode, rate, window, quiet_s, max_drain_s)
        replies = self._ask_all([message] * len(self.pipes), duration_s + max_drain_s + 60)
        result = RunResult(duration_s=duration_s, token=token)
        unique: Counter = Counter()
        receivers: Counter = Counter()
        senders: dict[int, dict] = {}
        for _tag, data in replies:
            result.deliveries += data["deliveries"]
            result.duplicates += data["duplicates"]
            result.out_of_order += data["out_of_order"]
            result.busy_retries += data["busy_retries"]
            result.errors.update(data["errors"])
            result.client_cpu_s += data["cpu_s"]
            unique.update(data["unique"])
            receivers.update(data["receivers"])
            senders.update(data["senders"])
            result.latencies_ns.frombytes(data["latencies"])
        for sender, stats in senders.items():
            result.sent += stats["sent"]
            result.acked += stats["acked"]
            result.acked_in_window += stats["acked_in_window"]
            result.refused += stats["refused"]
            result.unanswered += stats["unanswered"]
            result.expected += receivers[stats["room"]] * (stats["sent"] - stats["refused"])
            result.unique += sum(n for (room, s), n in unique.items() if s == sender)
        return result

    def close(self, timeout: float = 120) -> int:
        """Close every socket; returns how many were open."""
        return sum(reply[1] for reply in self._ask_all([("close",)] * len(self.pipes), timeout))

    def stop(self) -> None:
        """Ask the workers to exit; terminate any that do not."""
        for pipe in self.pipes:
            try:
                pipe.send(("exit",))
            except (OSError, BrokenPipeError):
                pass
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
        self.pipes, self.processes = [], []

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
