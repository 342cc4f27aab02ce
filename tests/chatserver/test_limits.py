"""Budgets and connection caps per identity and per client address, on both transports.

Real protocol, factory, long-poll resource and hub over fake transports and a
MemoryReactorClock; the budget (`chatserver.limits.ClientLimits`) is the hub's own.
"""

from __future__ import annotations

import orjson
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from chatserver.limits import SWEEP_SECONDS, ClientLimits, client_address
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from tests.chatserver.support import (
    ORIGIN,
    WsClient,
    body_json,
    make_hub,
    render,
    ticket,
    web_request,
)


def _env(**overrides):
    hub, reactor, django = make_hub(**overrides)
    return hub, reactor, django, ChatServerFactory(hub, reactor, hub.config)


def _socket(env, uid="u:1", name="alice", peer=None, room="lobby") -> WsClient:
    _, reactor, _, factory = env
    t = ticket(reactor, room=room, uid=uid, name=name)
    return WsClient(factory, f"/ws/{room}?ticket={t}", ORIGIN, peer=peer)


def _open(env, **kw) -> WsClient:
    client = _socket(env, **kw)
    assert client.status == 101
    client.frames()
    return client


def _lost(client: WsClient) -> None:
    client.protocol.connectionLost(Failure(ConnectionDone()))


def _stored(reactor, django) -> list[str]:
    """Nonces Django stored once the persistence queue's batch delay has passed."""
    reactor.advance(0.01)
    return [m["nonce"] for m in django.messages]


def _errors(client: WsClient) -> list[dict]:
    return [f for f in client.json_frames() if f["type"] == "error"]


def test_many_sockets_of_one_identity_share_one_budget():
    """Ten sockets of one ticket uid, each sending a whole burst: only one burst is stored; the
    others get `rate_limited` with `retry_after` (before: a budget per socket, ten bursts)."""
    env = _env(burst=20, rate=0.0001, flood_close=1000)
    _, reactor, django, _ = env
    sockets = [_open(env) for _ in range(10)]
    for i, client in enumerate(sockets):
        for j in range(20):
            client.send({"type": "message", "body": "hi", "nonce": f"n{i}-{j}"})
    assert len(_stored(reactor, django)) == 20
    refused = [e for client in sockets for e in _errors(client)]
    assert len(refused) == 180
    assert {e["code"] for e in refused} == {"rate_limited"}
    assert all(isinstance(e["retry_after"], float) and e["retry_after"] > 0 for e in refused)


def test_retry_after_is_the_time_until_the_next_token():
    """Burst 1 at 0.5 tokens/s: the refusal says 2 s; after 2 s the message goes through."""
    env = _env(burst=1, rate=0.5)
    _, reactor, django, _ = env
    alice = _open(env)
    alice.send({"type": "message", "body": "a", "nonce": "n1"})
    alice.send({"type": "message", "body": "b", "nonce": "n2"})
    (error,) = _errors(alice)
    assert error["code"] == "rate_limited" and error["nonce"] == "n2"
    assert error["retry_after"] == 2.0
    reactor.advance(error["retry_after"])
    alice.send({"type": "message", "body": "b", "nonce": "n2"})
    assert _stored(reactor, django) == ["n1", "n2"]


def test_identity_socket_cap_refuses_the_handshake_with_429():
    """Past `max_connections` sockets one uid gets 429 before the upgrade; closing one frees a
    slot; another identity is not affected."""
    env = _env(max_connections=3)
    alice = [_open(env) for _ in range(3)]
    for _ in range(3):  # the kind: every further attempt, not only the first
        assert _socket(env).status == 429
    assert _socket(env, uid="u:2", name="bob").status == 101
    _lost(alice[0])
    assert _socket(env).status == 101


def test_address_socket_cap_counts_every_identity_of_one_address():
    """Past `max_address_connections` one address gets 429 whatever the uid; others are fine."""
    env = _env(max_address_connections=2)
    _open(env, uid="g:1", name="a", peer="10.0.0.1")
    _open(env, uid="g:2", name="b", peer="10.0.0.1")
    assert _socket(env, uid="g:3", name="c", peer="10.0.0.1").status == 429
    assert _socket(env, uid="g:4", name="d", peer="10.0.0.1").status == 429
    assert _socket(env, uid="g:3", name="c", peer="10.0.0.2").status == 101


def test_identities_of_one_address_share_the_address_budget():
    """Fresh identities from one address do not get fresh budgets: the address bucket holds."""
    env = _env(address_burst=10, address_rate=0.0001, flood_close=1000)
    _, reactor, django, _ = env
    guests = [_open(env, uid=f"g:{i:016x}", name=f"guest{i}", peer="10.0.0.9") for i in range(5)]
    for i, guest in enumerate(guests):
        for j in range(5):
            guest.send({"type": "message", "body": "x", "nonce": f"g{i}-{j}"})
    assert len(_stored(reactor, django)) == 10
    other = _open(env, uid=f"g:{99:016x}", name="other", peer="10.0.0.10")
    other.send({"type": "message", "body": "x", "nonce": "other"})
    assert _stored(reactor, django)[-1] == "other"


def test_typing_ping_and_bad_frame_floods_close_with_1008():
    """Every client frame counts: a flood of typing notices, of pings, or of bad frames meets
    the budget, then the flood close (before: only messages counted, none of these closed)."""
    floods = {
        "typing": orjson.dumps({"type": "typing"}),
        "ping": orjson.dumps({"type": "ping"}),
        "bad_json": b"{not json",
        "unknown_type": orjson.dumps({"type": "dance"}),
    }
    for kind, payload in floods.items():
        env = _env(burst=5, rate=0.0001, flood_close=10)
        client = _open(env)
        from tests.chatserver.support import client_frame

        for _ in range(50):
            if client.protocol.state != client.protocol.STATE_OPEN:
                break
            client.protocol.dataReceived(client_frame(payload))
        assert client.close_frame() == (1008, "rate limit exceeded"), kind


def test_typing_still_relayed_at_most_once_per_interval_but_spends_budget():
    """Typing is relayed under its own floor, and each notice spends a token."""
    env = _env(burst=3, rate=0.0001)
    hub, _, django, _ = env
    alice = _open(env)
    bob = _open(env, uid="u:2", name="bob")
    for _ in range(3):
        alice.send({"type": "typing"})
    assert [f for f in bob.json_frames() if f["type"] == "typing"] == [
        {"type": "typing", "user": "alice"}
    ]
    alice.send({"type": "message", "body": "hi", "nonce": "n1"})
    assert _stored(env[1], django) == []
    assert _errors(alice)[0]["code"] == "rate_limited"


# long polling ------------------------------------------------------------------------------


def _post(hub, reactor, poll, obj, uid="u:1", headers=None):
    t = ticket(reactor, uid=uid, name="alice")
    all_headers = {"Origin": ORIGIN, "Content-Type": "application/json", **(headers or {})}
    request = web_request(
        "POST", f"/poll/lobby?ticket={t}", "/poll/", orjson.dumps(obj), all_headers
    )
    return render(poll, request)


def _get(hub, reactor, poll, query="&since=0", uid="u:1"):
    t = ticket(reactor, uid=uid, name="alice")
    request = web_request(
        "GET", f"/poll/lobby?ticket={t}{query}", "/poll/", b"", {"Origin": ORIGIN}
    )
    return render(poll, request)


def test_long_poll_429_carries_retry_after_in_body_and_header():
    """The POST refusal has `retry_after` (seconds) and `Retry-After` (whole seconds, up)."""
    hub, reactor, _ = make_hub(burst=1, rate=0.4)
    poll = LongPollResource(hub, hub.config, hub.clock)
    first = _post(hub, reactor, poll, {"body": "a", "nonce": "n1"})
    reactor.advance(0.01)
    assert first.responseCode == 200
    refused = _post(hub, reactor, poll, {"body": "b", "nonce": "n2"})
    assert refused.responseCode == 429
    body = body_json(refused)
    assert (
        body["error"] == "rate_limited" and body["retry_after"] == 2.491
    )  # 2.5 s less the 0.01 s that passed
    assert refused.responseHeaders.getRawHeaders(b"retry-after") == [b"3"]


def test_sockets_and_long_polls_of_one_identity_share_the_budget():
    """A burst spent on a socket leaves nothing for the same uid's POSTs (before: one budget
    per transport)."""
    env = _env(burst=3, rate=0.0001)
    hub, reactor, django, _ = env
    poll = LongPollResource(hub, hub.config, hub.clock)
    alice = _open(env)
    for i in range(3):
        alice.send({"type": "message", "body": "x", "nonce": f"s{i}"})
    assert _post(hub, reactor, poll, {"body": "y", "nonce": "p1"}).responseCode == 429
    assert _stored(reactor, django) == ["s0", "s1", "s2"]


def test_bad_long_poll_posts_spend_the_budget_too():
    """Refused POST bodies count: after a burst of bad JSON the good one is rate-limited."""
    hub, reactor, _ = make_hub(burst=2, rate=0.0001)
    poll = LongPollResource(hub, hub.config, hub.clock)
    t = ticket(reactor)
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    for _ in range(2):
        bad = web_request("POST", f"/poll/lobby?ticket={t}", "/poll/", b"{nope", headers)
        assert render(poll, bad).responseCode == 400
    assert _post(hub, reactor, poll, {"body": "ok", "nonce": "n1"}).responseCode == 429


def test_held_polls_count_against_the_connection_cap():
    """Held polls are connections: past the cap 429 `too_many_connections`; an answered poll
    frees its slot; sockets and polls share the count."""
    env = _env(max_connections=2)
    hub, reactor, django, _ = env
    poll = LongPollResource(hub, hub.config, hub.clock)
    first = _get(hub, reactor, poll)
    _open(env)
    refused = _get(hub, reactor, poll)
    assert refused.responseCode == 429
    assert body_json(refused)["error"] == "too_many_connections"
    assert _socket(env).status == 429
    reactor.advance(hub.config.poll_timeout + 1)
    poll.sweep()
    assert first.finished and first.responseCode == 200
    assert not _get(hub, reactor, poll).finished  # held again: the slot was freed


# the table itself ---------------------------------------------------------------------------


def test_the_limits_table_forgets_idle_entries():
    """10,000 identities that spent once and left: after their buckets refill and a sweep
    period passes, the table holds only what is still in use."""
    from twisted.internet.task import Clock

    clock = Clock()
    limits = ClientLimits(
        clock,
        rate=5,
        burst=20,
        address_rate=50,
        address_burst=200,
        max_connections=20,
        max_address_connections=500,
    )
    for i in range(10_000):
        assert limits.spend(f"g:{i}", f"10.0.{i // 256}.{i % 256}") is None
    assert limits.size() == 20_000
    assert limits.connect("u:1", "10.9.9.9")
    clock.advance(SWEEP_SECONDS + 10)
    limits.spend("u:2", "10.9.9.8")
    assert limits.size() == 4  # u:1 (connected), its address, and the new pair


def test_client_address_trusts_x_forwarded_for_only_behind_a_proxy():
    """The last X-Forwarded-For entry only with CHAT_BEHIND_PROXY; never an earlier one."""
    assert client_address("10.0.0.1", "1.2.3.4, 5.6.7.8", trust_proxy=False) == "10.0.0.1"
    assert client_address("10.0.0.1", "1.2.3.4, 5.6.7.8", trust_proxy=True) == "5.6.7.8"
    assert client_address("10.0.0.1", "garbage", trust_proxy=True) == "10.0.0.1"
    assert client_address("10.0.0.1", None, trust_proxy=True) == "10.0.0.1"
    assert client_address(None, None, trust_proxy=False) == "0.0.0.0"
    assert client_address("::FFFF:1.2.3.4", None, trust_proxy=False) == "::ffff:102:304"


def test_forwarded_addresses_get_their_own_caps_behind_a_proxy():
    """Behind a trusted proxy two clients with one peer (the proxy) are two addresses."""
    env = _env(behind_proxy=True, max_address_connections=1)
    _, reactor, _, factory = env

    def through_proxy(uid, forwarded):
        from tests.chatserver.support import handshake

        client = WsClient.__new__(WsClient)
        t = ticket(reactor, uid=uid, name=uid.replace(":", ""))
        raw = handshake(f"/ws/lobby?ticket={t}", ORIGIN)
        raw = raw.replace(b"\r\n\r\n", f"\r\nX-Forwarded-For: {forwarded}\r\n\r\n".encode())
        from twisted.internet.testing import StringTransport

        client.transport = StringTransport()
        client.protocol = factory.buildProtocol(None)
        client.protocol.makeConnection(client.transport)
        client.protocol.dataReceived(raw)
        return int(client.transport.value().split(b" ", 2)[1])

    assert through_proxy("g:1", "1.1.1.1") == 101
    assert through_proxy("g:2", "9.9.9.9, 1.1.1.1") == 429  # a forged first entry is ignored
    assert through_proxy("g:3", "2.2.2.2") == 101
