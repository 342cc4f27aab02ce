"""The signed control API, /healthz and /metrics."""

from chatserver.control import ControlResource
from chatserver.health import HealthResource, MetricsResource
from chatserver.protocol import ChatServerFactory
from chatserver.signing import signed_headers
from tests.chatserver.support import (
    ORIGIN,
    SECRET,
    WsClient,
    body_json,
    make_hub,
    render,
    ticket,
    web_request,
)


def _signed(hub, method, uri, body=b"", secret=SECRET, skew=0):
    headers = signed_headers(secret, method, uri, body, hub.clock.seconds() + skew)
    return web_request(method, uri, "/internal/", body, headers)


def test_archive_closes_sockets_with_4004_and_refuses_new_ones():
    """A signed archive call closes the room's sockets (4004) and answers how many."""
    hub, reactor, _ = make_hub()
    factory = ChatServerFactory(hub, reactor, hub.config)
    client = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN)
    client.frames()
    request = render(ControlResource(hub), _signed(hub, "POST", "/internal/rooms/lobby/archived"))
    assert request.responseCode == 200 and body_json(request) == {"closed": 1}
    assert client.close_frame() == (4004, "room archived")
    assert WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN).status == 404


def test_deleted_notifies_room_and_stats_lists_rooms():
    """A signed delete reaches the room; stats counts sockets and online names."""
    hub, reactor, _ = make_hub()
    factory = ChatServerFactory(hub, reactor, hub.config)
    client = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN)
    client.frames()
    resource = ControlResource(hub, stats=hub.stats)
    request = render(resource, _signed(hub, "POST", "/internal/rooms/lobby/messages/812/deleted"))
    assert body_json(request) == {"notified": 1}
    assert client.json_frames() == [{"type": "deleted", "id": 812}]
    request = render(resource, _signed(hub, "GET", "/internal/stats"))
    assert body_json(request) == {
        "connections": 1,
        "rooms": {"lobby": {"online": ["alice"], "connections": 1}},
    }


def test_unsigned_bad_and_stale_calls_are_403():
    """Missing, wrong-secret and stale signatures answer 403 with the error code."""
    hub, _, _ = make_hub()
    resource = ControlResource(hub)
    unsigned = render(resource, web_request("POST", "/internal/rooms/x/archived", "/internal/"))
    assert unsigned.responseCode == 403 and body_json(unsigned)["error"] == "bad_signature"
    forged = render(resource, _signed(hub, "POST", "/internal/rooms/x/archived", secret="nope"))
    assert forged.responseCode == 403
    stale = render(resource, _signed(hub, "POST", "/internal/rooms/x/archived", skew=-120))
    assert body_json(stale)["error"] == "stale_request"
    assert not hub.is_archived("x")


def test_the_signature_window_is_the_configured_one():
    """`CHAT_SIGNATURE_WINDOW` (the config's `signature_window`) is the skew control calls may
    have: inside it a call is applied, past it refused `stale_request`."""
    hub, _, _ = make_hub(signature_window=300)
    resource = ControlResource(hub)
    late = render(resource, _signed(hub, "POST", "/internal/rooms/x/archived", skew=-240))
    assert late.responseCode == 200 and hub.is_archived("x")
    stale = render(resource, _signed(hub, "POST", "/internal/rooms/y/archived", skew=-301))
    assert body_json(stale)["error"] == "stale_request" and not hub.is_archived("y")


def test_oversize_body_is_413():
    """A control call with a body over 1 MiB answers 413."""
    hub, _, _ = make_hub()
    request = _signed(hub, "POST", "/internal/rooms/x/archived", body=b"x" * (1024 * 1024 + 1))
    assert render(ControlResource(hub), request).responseCode == 413


class _Health:
    def __init__(self, ok):
        self.ok = ok

    def health(self):
        from twisted.internet.defer import succeed

        return succeed(self.ok)


def _leaf_request(path):
    """A GET of a leaf resource at its own path (nothing below it: an empty postpath)."""
    request = web_request("GET", path, path)
    request.postpath = []
    return request


def test_healthz_reflects_django():
    """/healthz is 200 when Django answers and 503 when it does not."""
    up = render(HealthResource(_Health(True), dict), _leaf_request("/healthz"))
    assert up.responseCode == 200 and body_json(up)["django"] == "ok"
    down = render(HealthResource(_Health(False), dict), _leaf_request("/healthz"))
    assert down.responseCode == 503 and body_json(down)["status"] != "ok"


def test_metrics_exposes_the_documented_names():
    """/metrics serves every documented metric name in Prometheus text format."""
    hub, _, _ = make_hub()
    ChatServerFactory(hub, hub.clock, hub.config)
    hub.metrics.errors.labels(kind="bad_json").inc()
    text = b"".join(
        render(MetricsResource(hub.metrics.registry), _leaf_request("/metrics")).written
    ).decode()
    for name in [
        "chat_connections",
        "chat_rooms",
        "chat_messages_in_total",
        "chat_messages_out_total",
        "chat_persist_batch_size",
        "chat_persist_latency_seconds",
        "chat_persist_queue_depth",
        'chat_errors_total{kind="bad_json"}',
    ]:
        assert name in text
