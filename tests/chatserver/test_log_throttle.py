"""Log lines that unauthenticated clients cause are throttled per kind, on the injected clock."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import Logger, globalLogPublisher

from chatserver.logthrottle import LogThrottle
from chatserver.protocol import ChatServerFactory
from tests.chatserver.support import ORIGIN, WsClient, make_hub
from tests.chatserver.test_frontdoor import Door


def test_burst_per_kind_per_interval_then_one_line_with_the_suppressed_count():
    """20 lines per kind per minute; the next window opens with one line counting the rest;
    kinds do not share a budget."""
    clock = Clock()
    events: list[dict] = []
    logger = Logger(observer=events.append)
    throttle = LogThrottle(clock, burst=20, interval=60.0)
    written = [throttle.emit(logger, "bad_ticket", "refused {n}", n=i) for i in range(100)]
    assert written.count(True) == 20 and len(events) == 20
    assert throttle.emit(logger, "slow_request", "slow") is True
    assert throttle.suppressed("bad_ticket") == 80
    clock.advance(60)
    assert throttle.emit(logger, "bad_ticket", "refused {n}", n=100) is True
    summary, line = events[-2:]
    assert summary["count"] == 80 and summary["kind"] == "bad_ticket"
    assert line["n"] == 100
    assert throttle.suppressed("bad_ticket") == 0


def _capture() -> tuple[list[dict], object]:
    events: list[dict] = []

    def observer(event: dict) -> None:
        events.append(event)

    globalLogPublisher.addObserver(observer)
    return events, observer


def test_a_loop_of_refused_handshakes_writes_a_bounded_number_of_lines():
    """300 handshakes with forged tickets and foreign origins: at most the burst of lines per
    kind plus nothing else per connection (before: Autobahn wrote one line per refusal)."""
    hub, reactor, _ = make_hub(log_burst=5)
    factory = ChatServerFactory(hub, reactor, hub.config)
    events, observer = _capture()
    try:
        for i in range(150):
            assert WsClient(factory, f"/ws/lobby?ticket=forged{i}", ORIGIN).status == 403
            assert WsClient(factory, "/ws/lobby?ticket=x", "http://evil.example").status == 403
    finally:
        globalLogPublisher.removeObserver(observer)
    lines = [e for e in events if e.get("log_level") is not None and e["log_level"].name != "debug"]
    assert len(lines) <= 5 + 1, [e.get("log_format") for e in lines[:20]]


def test_a_loop_of_slow_requests_writes_a_bounded_number_of_lines():
    """200 connections that never finish their request head: each is aborted and counted, but
    the log gets at most the burst of lines plus one summary."""
    from twisted.internet.testing import StringTransport

    door = Door()
    door.factory.log_throttle._burst = 5
    events, observer = _capture()
    transports = []
    try:
        for _ in range(200):
            transport = StringTransport()
            protocol = door.factory.buildProtocol(None)
            transport.protocol = protocol
            protocol.makeConnection(transport)
            protocol.dataReceived(b"GET /ws/lobby HTTP/1.1\r\n")
            transports.append(transport)
        door.reactor.advance(11)
    finally:
        globalLogPublisher.removeObserver(observer)
    slow = [e for e in events if "in time" in (e.get("log_format") or "")]
    assert all(transport.disconnecting for transport in transports)
    assert len(slow) <= 5 and len(door.timeouts) == 201  # every one counted in the metric


def test_a_loop_of_idle_keep_alive_connections_writes_a_bounded_number_of_lines():
    """100 connections that make one request and then idle past twisted.web's idle timeout are
    all closed, with at most the burst of lines (before: "Timing out client" for each)."""
    from twisted.internet.testing import StringTransport

    door = Door()
    door.factory.log_throttle._burst = 5
    events, observer = _capture()
    transports = []
    try:
        for _ in range(100):
            transport = StringTransport()
            protocol = door.factory.buildProtocol(None)
            transport.protocol = protocol
            protocol.makeConnection(transport)
            protocol.dataReceived(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert transport.value().startswith(b"HTTP/1.1 200")
            transports.append(transport)
        door.reactor.advance(61)
    finally:
        globalLogPublisher.removeObserver(observer)
    assert all(transport.disconnecting for transport in transports)
    idle = [
        e
        for e in events
        if any(word in str(e.get("log_format")) for word in ("idle", "Timing out client"))
    ]
    assert len(idle) <= 5
