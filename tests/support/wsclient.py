"""A small synchronous WebSocket test client that keeps every frame it received.

Tests wait for frames with a deadline (`wait_for`), never with sleeps.
"""

from __future__ import annotations

import json
import ssl as ssl_module
import time
from collections.abc import Callable
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

Frame = dict[str, Any]


class ChatClient:
    """One real WebSocket connection to the chat server, with the frames it has seen so far."""

    def __init__(
        self,
        url: str,
        origin: str | None = None,
        open_timeout: float = 10.0,
        ssl: ssl_module.SSLContext | None = None,
    ):
        # legacy=True: a connection we hold across calls and close ourselves.
        kwargs: dict[str, Any] = {"open_timeout": open_timeout, "close_timeout": 5, "legacy": True}
        if origin is not None:
            kwargs["origin"] = origin
        if ssl is not None:  # wss:// through a proxy whose certificate a test CA issued
            kwargs["ssl"] = ssl
        self.conn: ClientConnection = connect(url, **kwargs)
        self.frames: list[Frame] = []
        self.hello: Frame = self.wait_for(lambda f: f.get("type") == "hello")

    def send(self, frame: Frame | str) -> None:
        self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    def say(self, body: str, nonce: str) -> None:
        self.send({"type": "message", "body": body, "nonce": nonce})

    def _receive_one(self, timeout: float) -> Frame:
        raw = self.conn.recv(timeout=timeout)
        frame = json.loads(raw)
        self.frames.append(frame)
        return frame

    def drain(self) -> list[Frame]:
        """Take every frame that has already arrived, without waiting; returns them.

        A client that only sends must still read: websockets stops reading the socket once
        16 frames wait unread, and what then sits in the kernel's buffer is lost if the server
        aborts the connection.
        """
        drained = []
        while True:
            try:
                drained.append(self._receive_one(0))
            except TimeoutError:
                return drained

    def wait_for(self, predicate: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The first frame (already received or arriving before the deadline) matching."""
        for frame in self.frames:
            if predicate(frame):
                return frame
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching frame within {timeout}s; got {self.frames[-5:]}")
            try:
                frame = self._receive_one(remaining)
            except TimeoutError:
                continue
            if predicate(frame):
                return frame

    def of_type(self, kind: str) -> list[Frame]:
        """Frames of one type received so far, in arrival order."""
        return [f for f in self.frames if f.get("type") == kind]

    def request_history(self, after: int) -> None:
        """Ask for the page of catch-up after message `after` (docs/protocol.md)."""
        self.send({"type": "history", "after": after})

    def page_after(self, after: int, timeout: float = 10.0) -> Frame:
        """The page of catch-up after message `after`, asked for as the browser client does.

        A `history` request spends from the identity's frame budget like any frame, so a
        reader paging fast is answered `rate_limited` (or `busy`) with `retry_after`: like
        chat/static/chat/client/connection.js, ask again once that has passed, until the deadline.
        """
        deadline = time.monotonic() + timeout
        pages, refusals = len(self.of_type("history")), len(self._history_refusals())
        self.request_history(after)
        while True:
            if len(self.of_type("history")) > pages:
                return self.of_type("history")[pages]
            refused = self._history_refusals()
            if len(refused) > refusals:
                refusals = len(refused)
                wait = float(refused[-1].get("retry_after") or 1.0)
                if time.monotonic() + wait >= deadline:
                    raise TimeoutError(f"history after {after} still refused: {refused[-1]}")
                time.sleep(wait)  # the server's own instruction, not a guess at timing
                self.request_history(after)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no history page after {after} within {timeout}s")
            try:
                self._receive_one(remaining)
            except TimeoutError:
                continue

    def _history_refusals(self) -> list[Frame]:
        # A refused history request is an error frame without a nonce (it has none).
        return [
            f
            for f in self.frames
            if f.get("type") == "error"
            and f.get("code") in ("rate_limited", "busy")
            and not f.get("nonce")
        ]

    def catch_up(self, timeout: float = 10.0) -> list[Frame]:
        """Page from hello to the end; every message of hello and the pages, in order."""
        messages = list(self.hello["history"])
        has_more = self.hello.get("has_more", False)
        while has_more:
            page = self.page_after(messages[-1]["id"], timeout)
            messages += page["messages"]
            has_more = page["has_more"]
        return messages

    def messages(self) -> list[Frame]:
        """Message frames received live so far, in arrival order."""
        return [f for f in self.frames if f.get("type") == "message"]

    def wait_for_messages(self, count: int, timeout: float = 15.0) -> list[Frame]:
        """Wait until at least `count` live message frames arrived."""
        deadline = time.monotonic() + timeout
        while len(self.messages()) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"got {len(self.messages())} of {count} messages")
            try:
                self._receive_one(remaining)
            except TimeoutError:
                continue
        return self.messages()

    def wait_closed(self, timeout: float = 10.0) -> tuple[int | None, str]:
        """Read until the server closes; returns the close code and reason it sent."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    self._receive_one(max(0.01, deadline - time.monotonic()))
                except TimeoutError:
                    continue
        except ConnectionClosed as closed:
            received = closed.rcvd
            return (received.code, received.reason) if received else (None, "")
        raise TimeoutError("the server did not close the connection")

    def close(self) -> None:
        self.conn.close()
