"""Scale-out over Redis with real processes: one Django (gunicorn), several `twistd` chat servers.

The main pair of instances uses the machine's Redis (127.0.0.1:6379) on a channel prefix unique
to this run, so parallel runs never mix. The outage and crash drills start a private
`redis-server` on a free port (the shared one is never stopped) and their own pair of instances
on the same Django. With `CI=true` a missing Redis fails these tests instead of skipping them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.live import ChatServerInstance, LiveSystem, RedisServer, wait_until
from tests.support.wsclient import ChatClient

pytestmark = [pytest.mark.integration, pytest.mark.redis]

SHARED_REDIS = ("127.0.0.1", 6379)
PRESENCE_INTERVAL = "0.5"  # presence reports expire after 1.5 s: a dead instance's people go fast


def _require(reason: str | None) -> None:
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"Redis is required in CI: {reason}")
    pytest.skip(reason)


def _shared_redis_problem() -> str | None:
    try:
        with socket.create_connection(SHARED_REDIS, timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if not sock.recv(16).startswith(b"+PONG"):
                return "the local Redis did not answer PING"
    except OSError as exc:
        return f"the local Redis at 127.0.0.1:6379 is not reachable: {exc}"
    return None


def redis_env(url: str) -> dict[str, str]:
    return {
        "CHAT_REDIS_URL": url,
        "CHAT_REDIS_PREFIX": f"test-{secrets.token_hex(6)}:",
        "CHAT_REDIS_PRESENCE_INTERVAL": PRESENCE_INTERVAL,
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """Django plus two chat servers on the shared Redis (the primary is `live.chat_url`)."""
    _require(_shared_redis_problem())
    system = LiveSystem(
        tmp_path_factory.mktemp("redis-live"), extra_env=redis_env("redis://127.0.0.1:6379")
    )
    try:
        system.start()
        system.add_chatserver()
        yield system
    finally:
        system.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, which it may kill and restart."""
    _require(None if shutil.which(RedisServer.BINARY) else "redis-server is not installed")
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_pair(cluster: LiveSystem, private_redis: RedisServer) -> Iterator[list[Instance]]:
    """Two more chat servers on the same Django, over the private Redis; stopped afterwards."""
    env = redis_env(private_redis.url)
    started = [cluster.add_chatserver(env) for _ in range(2)]
    try:
        yield [Instance(cluster, s.url, s.internal_url, s) for s in started]
    finally:
        for server in started:
            server.stop()
            cluster.extra_chatservers.remove(server)


class Instance:
    """One chat server of the cluster, addressed by its base URL."""

    def __init__(
        self,
        live: LiveSystem,
        url: str,
        internal_url: str,
        process: ChatServerInstance | None = None,
    ):
        self.live = live
        self.url = url
        self.internal_url = internal_url  # detailed /healthz and /metrics
        self.process = process

    def join(self, slug: str, session=None, since: int | None = None) -> ChatClient:
        """A ticket from Django, opened on this instance (as a load balancer would route it)."""
        session = session or self.live.guest_session(slug)
        ws_url = self.live.ticket(session, slug)["ws_url"]
        ws_url = "ws://" + self.url.split("://", 1)[1] + ws_url[ws_url.index("/ws/") :]
        if since is not None:
            ws_url += f"&since={since}"
        client = ChatClient(ws_url, origin=self.live.origin)
        client.session = session  # type: ignore[attr-defined]
        return client

    def health(self) -> tuple[int, dict]:
        response = requests.get(self.internal_url + "/healthz", timeout=5)
        return response.status_code, response.json()

    def metric(self, name: str) -> float | None:
        text = requests.get(self.internal_url + "/metrics", timeout=5).text
        found = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.MULTILINE)
        return float(found.group(1)) if found else None

    def online(self, slug: str) -> list[str]:
        stats = self.live.internal_get(self.url, "/internal/stats").json()
        return stats["rooms"].get(slug, {}).get("online", [])


def pair(live: LiveSystem) -> tuple[Instance, Instance]:
    other = live.extra_chatservers[0]
    return (
        Instance(live, live.chat_url, live.chat_internal_url),
        Instance(live, other.url, other.internal_url),
    )


def nonce() -> str:
    return uuid.uuid4().hex


def room(live: LiveSystem, name: str) -> str:
    slug = f"{name}-{secrets.token_hex(3)}"
    live.create_room(slug, guests=True)
    return slug


def converged(live: LiveSystem, slug: str, count: int, *clients: ChatClient) -> list[int]:
    """Wait until Django stored `count` messages and every client received exactly those
    (ids in order, once)."""

    def stored_ids() -> list[int] | None:
        ids = [m["id"] for m in live.stored_messages(slug)]
        return ids if len(ids) >= count else None

    stored = wait_until(stored_ids)
    assert len(stored) == count
    for client in clients:
        try:
            client.wait_for_messages(len(stored), timeout=20)
        except TimeoutError:
            got = [m["id"] for m in client.messages()]
            raise AssertionError(f"stored {stored}, client got {got}") from None
        assert [m["id"] for m in client.messages()] == stored
    return stored


def test_clients_on_two_instances_chat_both_ways_in_id_order_exactly_once(cluster):
    """Messages sent through either instance reach the clients of both, in id order, once."""
    a, b = pair(cluster)
    slug = room(cluster, "both-ways")
    alice, bob = a.join(slug), b.join(slug)
    for i in range(10):
        (alice if i % 2 == 0 else bob).say(f"message {i}", nonce())
    converged(cluster, slug, 10, alice, bob)
    alice.close()
    bob.close()


def test_presence_is_the_union_and_a_person_with_tabs_on_both_counts_once(cluster):
    """One guest with a tab on each instance and Bob on the second: both instances list the two
    people once; closing one of the guest's tabs keeps the guest online everywhere."""
    a, b = pair(cluster)
    slug = room(cluster, "presence")
    session = cluster.guest_session(slug)
    tab_a = a.join(slug, session=session)
    tab_b = b.join(slug, session=session)
    guest = tab_a.hello["user"]["name"]
    bob = b.join(slug)
    bob_name = bob.hello["user"]["name"]
    both = sorted([guest, bob_name])
    tab_a.wait_for(lambda f: f.get("type") == "presence" and f["online"] == both)
    wait_until(lambda: a.online(slug) == both and b.online(slug) == both)
    tab_b.close()
    bob.close()
    # The second instance has nobody in the room any more, so its stats no longer list it.
    wait_until(lambda: a.online(slug) == [guest] and b.online(slug) == [])
    tab_a.wait_for(lambda f: f.get("type") == "presence" and f["online"] == [guest])
    tab_a.close()


def test_since_catch_up_works_on_the_other_instance(cluster):
    """A client that saw messages on one instance reconnects to the other with `since` and
    gets exactly what it missed."""
    a, b = pair(cluster)
    slug = room(cluster, "since")
    talker, reader = a.join(slug), a.join(slug)
    talker.say("seen", nonce())
    last = reader.wait_for_messages(1)[-1]["id"]
    reader.close()
    missed = [nonce() for _ in range(3)]
    for n in missed:
        talker.say("missed", n)
    talker.wait_for_messages(4)
    back = b.join(slug, session=reader.session, since=last)
    assert [m["nonce"] for m in back.hello["history"]] == missed
    talker.close()
    back.close()


def test_archive_and_delete_called_on_one_instance_reach_clients_on_both(cluster):
    """Django calls only CHAT_INTERNAL_URL (the first instance); the deletion and the archive
    still reach the clients of the second."""
    a, b = pair(cluster)
    slug = room(cluster, "moderation")
    on_a, on_b = a.join(slug), b.join(slug)
    on_a.say("to be deleted", nonce())
    message_id = on_b.wait_for_messages(1)[0]["id"]
    cluster.shell(
        "from chat.models import Message\nfrom chat import actions\n"
        f"Message.objects.filter(pk={message_id}).update(is_deleted=True)\n"
        f"actions.message_deleted({slug!r}, {message_id})\n"
    )
    for client in (on_a, on_b):
        client.wait_for(lambda f: f == {"type": "deleted", "id": message_id})
    cluster.archive_room(slug)
    for client in (on_a, on_b):
        assert client.wait_closed() == (4004, "room archived")


def test_redis_killed_and_restarted_mid_conversation(cluster, private_redis, private_pair):
    """Redis dies while two instances' clients chat: each instance keeps serving its own
    clients, health says `redis: down` (still 200) and chat_redis_up is 0; when Redis returns,
    cross-instance delivery resumes and every client ends with the full history, no gap and no
    duplicate."""
    c, d = private_pair
    slug = room(cluster, "outage")
    alice, bob = c.join(slug), d.join(slug)
    wait_until(lambda: c.health()[1].get("redis") == "ok" and d.health()[1].get("redis") == "ok")
    alice.say("before", nonce())
    bob.say("before too", nonce())
    converged(cluster, slug, 2, alice, bob)

    private_redis.kill()
    wait_until(lambda: c.health()[1].get("redis") == "down")
    status, body = c.health()
    assert status == 200 and body["status"] == "ok" and body["redis"] == "down"
    assert d.metric("chat_redis_up") is not None
    wait_until(lambda: d.metric("chat_redis_up") == 0.0)
    for i in range(3):
        sent = nonce()
        alice.say(f"alone {i}", sent)
        # Local delivery does not wait for Redis: the sender's own instance answers.
        alice.wait_for(lambda f, sent=sent: f.get("nonce") == sent)
        sent = nonce()
        bob.say(f"alone too {i}", sent)
        bob.wait_for(lambda f, sent=sent: f.get("nonce") == sent)

    private_redis.start()  # the same port, so the same CHAT_REDIS_URL
    wait_until(lambda: c.health()[1].get("redis") == "ok" and d.health()[1].get("redis") == "ok")
    assert c.metric("chat_redis_up") == 1.0
    alice.say("after", nonce())
    bob.say("after too", nonce())
    converged(cluster, slug, 10, alice, bob)
    alice.close()
    bob.close()


def test_an_instance_killed_its_clients_reconnect_to_the_other_with_since(cluster, private_pair):
    """SIGKILL one instance: its clients reconnect to the other with `since` and get exactly
    what was sent meanwhile; the dead instance's people drop out of presence there."""
    c, d = private_pair
    slug = room(cluster, "crash")
    alice, carol, bob = c.join(slug), c.join(slug), d.join(slug)
    alice_name, carol_name = alice.hello["user"]["name"], carol.hello["user"]["name"]
    bob.say("hello all", nonce())
    last = alice.wait_for_messages(1)[-1]["id"]
    wait_until(lambda: carol_name in d.online(slug))

    c.process.kill()
    missed = [nonce() for _ in range(3)]
    for n in missed:
        bob.say("while c was down", n)
    bob.wait_for_messages(4)
    wait_until(lambda: d.online(slug) == [bob.hello["user"]["name"]], timeout=10)

    back = d.join(slug, session=alice.session, since=last)
    assert [m["nonce"] for m in back.hello["history"]] == missed
    assert alice_name in back.hello["online"]
    back.say("i am back", nonce())
    live_ids = [m["id"] for m in back.wait_for_messages(1)]
    stored = [m["id"] for m in cluster.stored_messages(slug)]
    assert [m["id"] for m in back.hello["history"]] + live_ids == stored[1:]
    bob.close()
    back.close()
