"""End-to-end chat over real processes: gunicorn Django, `twistd -n -y chatserver.tac`, and real
WebSocket clients fetching real tickets from Django."""

from __future__ import annotations

import uuid

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.support.live import LiveSystem, mint_ticket, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration


def join(live: LiveSystem, slug: str, since: int | None = None, session=None) -> ChatClient:
    """A guest (or the given session) fetches a ticket from Django and opens the socket."""
    session = session or live.guest_session(slug)
    url = live.ticket(session, slug)["ws_url"]
    if since is not None:
        url += f"&since={since}"
    client = ChatClient(url, origin=live.origin)
    client.session = session  # type: ignore[attr-defined]
    return client


def nonce() -> str:
    return uuid.uuid4().hex


def refused_status(url: str, origin: str | None = None) -> int:
    """The HTTP status of a refused WebSocket handshake."""
    with pytest.raises(InvalidStatus) as refused:
        kwargs = {"origin": origin} if origin else {}
        with connect(url, open_timeout=10, **kwargs):
            pass
    return refused.value.response.status_code


def test_two_clients_receive_every_message_in_the_same_id_order(live, live_room):
    """Both members get every message, the sender included, in one increasing id order."""
    alice, bob = join(live, live_room), join(live, live_room)
    sent = []
    for i in range(6):
        sender = alice if i % 2 == 0 else bob
        sent.append(nonce())
        sender.say(f"message {i}", sent[-1])
    for client in (alice, bob):
        got = client.wait_for_messages(6)
        ids = [m["id"] for m in got]
        assert ids == sorted(ids) and len(set(ids)) == 6
        assert sorted(m["nonce"] for m in got) == sorted(sent)
        assert {m["room"] for m in got} == {live_room}
    assert [m["id"] for m in alice.messages()] == [m["id"] for m in bob.messages()]
    stored = live.stored_messages(live_room)
    assert [m["nonce"] for m in stored] == [m["nonce"] for m in alice.messages()]
    alice.close()
    bob.close()


def test_rooms_are_isolated(live):
    """A message in one room never reaches a member of another room."""
    live.create_room("isolated-a")
    live.create_room("isolated-b")
    in_a, in_b = join(live, "isolated-a"), join(live, "isolated-b")
    in_a.say("only for a", nonce())
    in_a.wait_for_messages(1)
    # A later message in room b is the barrier: anything from room a would have arrived first.
    in_b.say("only for b", nonce())
    in_b.wait_for_messages(1)
    assert [m["body"] for m in in_b.messages()] == ["only for b"]
    assert [m["body"] for m in in_a.messages()] == ["only for a"]
    in_a.close()
    in_b.close()


def test_since_catch_up_returns_exactly_the_missed_messages(live, live_room):
    """A client reconnecting with since=<last id> gets exactly what it missed, in order."""
    stayer, leaver = join(live, live_room), join(live, live_room)
    stayer.say("before", nonce())
    last_seen = leaver.wait_for_messages(1)[-1]["id"]
    leaver.close()
    missed = [nonce() for _ in range(3)]
    for i, n in enumerate(missed):
        stayer.say(f"missed {i}", n)
    stayer.wait_for_messages(4)
    back = join(live, live_room, since=last_seen, session=leaver.session)
    assert [m["nonce"] for m in back.hello["history"]] == missed
    ids = [m["id"] for m in back.hello["history"]]
    assert ids == sorted(ids) and ids[0] > last_seen
    stayer.close()
    back.close()


def test_presence_and_typing(live, live_room):
    """Presence lists both people (a second tab counts once); typing reaches the others only."""
    alice = join(live, live_room)
    bob = join(live, live_room)
    alice_name = alice.hello["user"]["name"]
    bob_name = bob.hello["user"]["name"]
    assert alice_name != bob_name
    alice.wait_for(lambda f: f["type"] == "presence" and set(f["online"]) == {alice_name, bob_name})
    assert set(bob.hello["online"]) == {alice_name, bob_name}

    bob_second_tab = join(live, live_room, session=bob.session)
    assert sorted(bob_second_tab.hello["online"]) == sorted({alice_name, bob_name})

    bob.send({"type": "typing"})
    typing = alice.wait_for(lambda f: f["type"] == "typing")
    assert typing["user"] == bob_name
    # Barrier: a message after the typing event; bob must not have seen his own typing.
    bob.say("done typing", nonce())
    bob.wait_for_messages(1)
    bob_second_tab.wait_for_messages(1)
    assert not [f for f in bob.frames if f["type"] == "typing"]

    bob.close()
    bob_second_tab.close()
    alice.wait_for(lambda f: f["type"] == "presence" and f["online"] == [alice_name])
    alice.close()


def test_bad_tickets_and_foreign_origins_are_refused_before_the_upgrade(live, live_room):
    """Forged, expired, other-room and missing tickets and foreign origins get HTTP 403."""
    live.create_room("other-room-for-tickets")
    base = live.chat_url.replace("http", "ws") + f"/ws/{live_room}?ticket="
    good = mint_ticket(live.secret, live_room)
    assert refused_status(base + mint_ticket("not-the-secret", live_room)) == 403
    header, payload, signature = good.split(".")
    tampered = ".".join(
        [header, payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB"), signature]
    )
    assert refused_status(base + tampered) == 403
    assert refused_status(base + mint_ticket(live.secret, live_room, ttl=-5)) == 403
    assert refused_status(base + mint_ticket(live.secret, "other-room-for-tickets")) == 403
    assert refused_status(base) == 403
    assert refused_status(base + good, origin="http://evil.example") == 403
    # The same good ticket from an allowed origin, and from a non-browser client, is accepted.
    ChatClient(base + good, origin=live.origin).close()
    ChatClient(base + good).close()


def test_binary_and_oversize_frames_get_real_close_frames(live, live_room):
    """A binary frame closes with 1003 and a frame over the payload limit with 1009."""
    binary = join(live, live_room)
    binary.conn.send(b"\x00\x01")
    assert binary.wait_closed()[0] == 1003
    huge = join(live, live_room)
    huge.conn.send("x" * (64 * 1024 + 10))
    assert huge.wait_closed()[0] == 1009


def test_bad_frames_get_error_frames_and_the_connection_stays(live, live_room):
    """Malformed JSON, unknown types and over-long bodies get error frames; chat goes on."""
    client = join(live, live_room)
    client.send("{not json")
    assert client.wait_for(lambda f: f["type"] == "error")["code"] == "bad_json"
    client.send({"type": "dance"})
    client.wait_for(lambda f: f["type"] == "error" and f["code"] == "unknown_type")
    long_nonce = nonce()
    client.say("y" * 4001, long_nonce)
    error = client.wait_for(lambda f: f["type"] == "error" and f["code"] == "body_too_long")
    assert error["nonce"] == long_nonce
    client.say("still here", nonce())
    assert client.wait_for_messages(1)[0]["body"] == "still here"
    client.close()


def test_messages_sent_while_django_is_down_are_stored_once_and_delivered(live, live_room):
    """Django stopped for a while: messages wait, then are stored exactly once and delivered."""
    alice, bob = join(live, live_room), join(live, live_room)
    live.stop_django()
    try:
        pending = [nonce() for _ in range(5)]
        for i, n in enumerate(pending):
            alice.say(f"during outage {i}", n)
        # Nothing is delivered before it is stored: a ping round trip proves the socket is live.
        alice.send({"type": "ping"})
        alice.wait_for(lambda f: f["type"] == "pong")
        assert alice.messages() == []
    finally:
        live.start_django()
    for client in (alice, bob):
        got = client.wait_for_messages(5, timeout=40)
        assert [m["nonce"] for m in got] == pending
    stored = [m["nonce"] for m in live.stored_messages(live_room)]
    assert stored == pending
    alice.close()
    bob.close()


def test_chat_server_health_reports_django(live):
    """The internal listener's /healthz answers 200 while Django answers and 503 while it is
    down, and serves /metrics; the public port keeps a cheap liveness answer (200 whatever
    Django does) and serves no metrics (docs/protocol.md, "Health and metrics")."""
    import requests

    internal = live.chat_internal_url
    assert requests.get(f"{internal}/healthz", timeout=5).status_code == 200
    live.stop_django()
    try:
        wait_until(lambda: requests.get(f"{internal}/healthz", timeout=5).status_code == 503)
        public = requests.get(f"{live.chat_url}/healthz", timeout=5)
        assert public.status_code == 200 and public.json() == {"status": "ok"}
    finally:
        live.start_django()
    wait_until(lambda: requests.get(f"{internal}/healthz", timeout=5).status_code == 200)
    metrics = requests.get(f"{internal}/metrics", timeout=5)
    assert metrics.status_code == 200 and "chat_connections" in metrics.text
    assert requests.get(f"{live.chat_url}/metrics", timeout=5).status_code == 404
