"""Real clients under steady load for the fault drills.

`RoomClient` behaves like the browser client (chat/static/chat/client): it keeps the id of the last
message it saw, reconnects with exponential backoff and full jitter (a fresh ticket each time,
`since=<last id>`), and resends every message that was not acknowledged with the same nonce.
It runs on its own thread and records what happened (connect attempts, close codes, frames,
send and echo times) for the drill to judge afterwards.

Also here: a counter read from `/metrics` and `percentile` (resident memory is
`tests.support.live.rss_bytes`).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

Frame = dict[str, Any]


def metric_value(internal_url: str, name: str, labels: str = "") -> float:
    """One sample of the chat server's Prometheus text (0 when the series does not exist yet),
    read from its internal listener (`LiveSystem.chat_internal_url`); metrics are not served on
    the public port."""
    response = requests.get(f"{internal_url}/metrics", timeout=5)
    response.raise_for_status()
    text = response.text
    pattern = re.compile(rf"^{re.escape(name)}(\{{{re.escape(labels)}\}})? (\S+)$", re.M)
    for match in pattern.finditer(text):
        if bool(labels) == bool(match.group(1)):
            return float(match.group(2))
    return 0.0


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` percentile (nearest rank) of a non-empty list."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass
class Backoff:
    """Exponential backoff with full jitter, as the browser client does it."""

    base: float = 0.25
    cap: float = 5.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.base * 2**attempt))


class RoomClient(threading.Thread):
    """One reconnecting chat client on its own thread.

    `ticket_url()` returns a fresh `ws_url` (the drill fetches it from Django's ticket API).
    `send(body)` queues a message: it is pending until its own message frame comes back, and
    resent with the same nonce after every reconnect until then.
    """

    def __init__(
        self,
        name: str,
        ticket_url: Callable[[], str],
        backoff: Backoff | None = None,
        stop_on: frozenset[int] = frozenset({1008, 4004}),
    ) -> None:
        super().__init__(name=f"client-{name}", daemon=True)
        self.label = name
        self.ticket_url = ticket_url
        self.backoff = backoff or Backoff()
        self.stop_on = stop_on
        self.lock = threading.Lock()
        self.messages: dict[int, Frame] = {}  # every message seen (history and live), by id
        self.live_counts: dict[int, int] = {}  # live deliveries per id (duplicates show here)
        self.errors: list[Frame] = []
        self.closes: list[tuple[float, int | None]] = []  # (time, close code)
        self.attempts: list[float] = []  # monotonic time of every connect attempt
        self.opened: list[float] = []  # monotonic time of every successful open
        self.outbox: dict[str, str] = {}  # nonce -> body, until acknowledged
        self.sent_at: dict[str, float] = {}  # nonce -> first send time
        self.echo_at: dict[str, float] = {}  # nonce -> time its own message frame arrived
        self.last_id = 0
        # While catching up page by page: the last page's id, where a reconnect resumes
        # (newer live messages may already be seen above a gap); None once caught up.
        self.cursor: int | None = None
        self.seq = 0
        self.final_close: int | None = None
        self._halt = threading.Event()
        self._conn: Any = None
        self._connected = threading.Event()

    # the drill's side ------------------------------------------------------------------------

    def send(self, body: str | None = None) -> str:
        """Queue a message (sent at once when connected); returns its nonce."""
        with self.lock:
            self.seq += 1
            nonce = f"{self.label}-{self.seq}"
            self.outbox[nonce] = body or f"message {self.seq} from {self.label}"
            self.sent_at[nonce] = time.monotonic()
            conn = self._conn
        if conn is not None:
            self._send_frame(conn, nonce)
        return nonce

    def wait_connected(self, timeout: float = 15.0) -> None:
        if not self._connected.wait(timeout):
            raise TimeoutError(f"{self.label} did not connect")

    def is_connected(self) -> bool:
        return self._connected.is_set()

    def pending(self) -> list[str]:
        with self.lock:
            return list(self.outbox)

    def stop(self) -> None:
        self._halt.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already closed by the server
                pass
        self.join(10)

    def latencies(self, nonces: list[str]) -> list[float]:
        """Send-to-echo times of acknowledged messages."""
        with self.lock:
            return [self.echo_at[n] - self.sent_at[n] for n in nonces if n in self.echo_at]

    # the thread ------------------------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        while not self._halt.is_set():
            self.attempts.append(time.monotonic())
            try:
                url = self.ticket_url()
                since = self.cursor if self.cursor is not None else self.last_id
                if since:
                    url += f"&since={since}"
                conn = connect(url, open_timeout=5, close_timeout=2, legacy=True)
            except (OSError, InvalidStatus, TimeoutError, requests.RequestException, ValueError):
                failures += 1
                self._halt.wait(self.backoff.delay(failures))
                continue
            failures = 0
            code = self._session(conn)
            self.closes.append((time.monotonic(), code))
            if code in self.stop_on:
                self.final_close = code
                return
            failures = 1
            self._halt.wait(self.backoff.delay(failures))

    def _session(self, conn: Any) -> int | None:
        try:
            hello = json.loads(conn.recv(timeout=10))
            if hello.get("type") != "hello":
                raise RuntimeError(f"first frame was {hello.get('type')}")
            for message in hello["history"]:
                self._seen(message, live=False)
            self._page_after(conn, hello["history"], hello.get("has_more", False))
            self.opened.append(time.monotonic())
            with self.lock:
                self._conn = conn
                unacked = list(self.outbox)
            self._connected.set()
            for nonce in unacked:  # resend what was not acknowledged, same nonce
                self._send_frame(conn, nonce)
            for raw in conn:
                frame = json.loads(raw)
                if frame.get("type") == "message":
                    self._seen(frame, live=True)
                elif frame.get("type") == "ack":
                    # A resend of a stored nonce: for this client alone, never broadcast.
                    self._acked(frame)
                elif frame.get("type") == "history":
                    for message in frame["messages"]:
                        self._seen(message, live=False)
                    self._page_after(conn, frame["messages"], frame.get("has_more", False))
                elif frame.get("type") == "error":
                    with self.lock:
                        self.errors.append(frame)
            return conn.close_code
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except (OSError, TimeoutError):
            return None
        finally:
            self._connected.clear()
            with self.lock:
                self._conn = None

    def _page_after(self, conn: Any, page: list[Frame], has_more: bool) -> None:
        """Catch-up comes a page at a time (docs/protocol.md): ask for the next one."""
        if not has_more or not page:
            self.cursor = None
            return
        self.cursor = page[-1]["id"]
        try:
            conn.send(json.dumps({"type": "history", "after": self.cursor}))
        except (ConnectionClosed, OSError):
            pass  # the reconnect resumes from the cursor

    def _send_frame(self, conn: Any, nonce: str) -> None:
        with self.lock:
            body = self.outbox.get(nonce)
        if body is None:
            return
        try:
            conn.send(json.dumps({"type": "message", "body": body, "nonce": nonce}))
        except (ConnectionClosed, OSError):
            pass  # resent after the reconnect

    def _acked(self, ack: Frame) -> None:
        if isinstance(ack.get("message"), dict):
            self._seen(ack["message"], live=False)
        else:  # the original was deleted: nothing to show, nothing left to send
            with self.lock:
                self.outbox.pop(ack.get("nonce"), None)

    def _seen(self, message: Frame, live: bool) -> None:
        now = time.monotonic()
        with self.lock:
            message_id = message["id"]
            self.messages[message_id] = message
            if live:
                self.live_counts[message_id] = self.live_counts.get(message_id, 0) + 1
            self.last_id = max(self.last_id, message_id)
            nonce = message.get("nonce")
            if nonce in self.outbox:
                del self.outbox[nonce]
                self.echo_at[nonce] = now


class SessionTickets:
    """Fresh `ws_url`s for one guest session (the ticket API, as the browser calls it)."""

    def __init__(self, django_url: str, slug: str) -> None:
        self.url = f"{django_url}/api/rooms/{slug}/ticket/"
        self.session = requests.Session()
        self.session.get(f"{django_url}/chats/{slug}/", timeout=10).raise_for_status()

    def __call__(self) -> str:
        response = self.session.get(self.url, timeout=5)
        response.raise_for_status()
        return response.json()["ws_url"]
