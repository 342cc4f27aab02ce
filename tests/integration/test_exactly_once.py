"""Exactly once over real processes: a resent stored nonce reaches its sender alone.

Its own system (real gunicorn Django, real `twistd -n -y chatserver.tac`) with a small recent
buffer (`CHAT_RECENT_BUFFER`) and a generous rate limit, so "more newer messages than the buffer
holds" is quick to reach. Absence is proven by order, never by waiting: after the repeat is
answered, a marker message is sent, and the other member's next message must be the marker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.live import LiveSystem
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

BUFFER = 20


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    extra = {"CHAT_RECENT_BUFFER": str(BUFFER), "CHAT_RATE": "200", "CHAT_BURST": "200"}
    with LiveSystem(Path(tmp_path_factory.mktemp("once")), extra_env=extra) as live:
        yield live


@pytest.fixture
def room(system: LiveSystem) -> str:
    slug = f"once-{uuid.uuid4().hex[:10]}"
    system.create_room(slug, guests=True)
    return slug


def join(live: LiveSystem, slug: str, session=None, since: int | None = None) -> ChatClient:
    session = session or live.guest_session(slug)
    url = live.ticket(session, slug)["ws_url"]
    if since is not None:
        url += f"&since={since}"
    client = ChatClient(url, origin=live.origin)
    client.session = session  # type: ignore[attr-defined]
    return client


def nonce() -> str:
    return uuid.uuid4().hex


def next_message_is(client: ChatClient, marker: str) -> None:
    """The first message frame `client` receives from now on carries the `marker` nonce."""
    seen = len(client.messages())
    frames = client.wait_for_messages(seen + 1)
    assert frames[seen]["nonce"] == marker, f"got {frames[seen]} before the marker"


def marker_after(sender: ChatClient, others: list[ChatClient]) -> None:
    marker = nonce()
    sender.say("marker", marker)
    for client in others:
        next_message_is(client, marker)


def test_repeat_after_the_buffer_moved_on_goes_to_the_sender_only(system, room):
    """Resending a stored nonce after more newer messages than the recent buffer holds: the
    other member receives nothing (the next thing it gets is a later marker), the sender gets an
    `ack` with the original id and message, and Django still has one row."""
    alice, bob = join(system, room), join(system, room)
    first = nonce()
    alice.say("first", first)
    original = bob.wait_for_messages(1)[0]
    for i in range(BUFFER + 5):
        bob.say(f"newer {i}", nonce())
    alice.wait_for_messages(BUFFER + 6)
    bob.wait_for_messages(BUFFER + 6)

    alice.say("first, resent", first)
    ack = alice.wait_for(lambda f: f["type"] == "ack")
    assert ack["nonce"] == first and ack["id"] == original["id"] and ack["deleted"] is False
    assert ack["message"]["body"] == "first"
    marker_after(alice, [bob, alice])
    stored = system.stored_messages(room)
    assert [m["nonce"] for m in stored].count(first) == 1
    for client in (alice, bob):
        client.close()


def test_repeat_of_a_deleted_message_stays_deleted_across_a_restart(system, room):
    """Resending the nonce of a message staff deleted, before and after a chat server restart:
    nobody else receives it, the sender gets `ack` with `deleted: true` and no text, and a new
    visitor's history and the long-poll POST never bring it back."""
    alice, bob = join(system, room), join(system, room)
    gone = nonce()
    alice.say("regrettable", gone)
    message_id = bob.wait_for_messages(1)[0]["id"]
    system.shell(
        "from chat.models import Message\nfrom chat import actions\n"
        f"Message.objects.filter(pk={message_id}).update(is_deleted=True)\n"
        f"actions.message_deleted({room!r}, {message_id})\n"
    )
    bob.wait_for(lambda f: f["type"] == "deleted" and f["id"] == message_id)

    alice.say("regrettable", gone)
    ack = alice.wait_for(lambda f: f["type"] == "ack")
    assert ack == {"type": "ack", "nonce": gone, "id": message_id, "deleted": True}
    marker_after(alice, [bob])
    assert "regrettable" not in [m["body"] for m in join(system, room).hello["history"]]

    for client in (alice, bob):
        client.close()
    system.restart_chatserver()
    alice = join(system, room, session=alice.session)
    bob = join(system, room, session=bob.session)
    alice.say("regrettable again", gone)
    ack = alice.wait_for(lambda f: f["type"] == "ack")
    assert ack["deleted"] is True and "message" not in ack
    marker_after(alice, [bob])
    poll_url = system.ticket(alice.session, room)["poll_url"]
    answer = requests.post(poll_url, json={"body": "by poll", "nonce": gone}, timeout=10)
    assert answer.status_code == 200
    ack = {"type": "ack", "nonce": gone, "id": message_id, "deleted": True}
    assert answer.json() == {"events": [ack], "deleted": True, "id": message_id, "repeat": True}
    marker_after(alice, [bob])
    history = join(system, room).hello["history"]
    assert message_id not in [m["id"] for m in history]
    assert gone not in [m["nonce"] for m in system.stored_messages(room)]
    for client in (alice, bob):
        client.close()


def test_long_poll_repeat_is_answered_to_the_sender_only(system, room):
    """A long-poll POST of a stored nonce answers the socket's `ack` frame in `events` (and
    `{"message": <original>, "repeat": true}`) and the socket member receives nothing."""
    session = system.guest_session(room)
    bob = join(system, room)
    poll_url = system.ticket(session, room)["poll_url"]
    first = nonce()
    stored = requests.post(poll_url, json={"body": "by poll", "nonce": first}, timeout=10).json()
    assert bob.wait_for_messages(1)[0]["id"] == stored["message"]["id"]
    again = requests.post(poll_url, json={"body": "other", "nonce": first}, timeout=10)
    assert again.status_code == 200
    ack = {"type": "ack", "nonce": first, "id": stored["message"]["id"], "deleted": False}
    assert again.json() == {
        "events": [{**ack, "message": stored["message"]}],
        "message": stored["message"],
        "repeat": True,
    }
    marker = nonce()
    requests.post(poll_url, json={"body": "marker", "nonce": marker}, timeout=10)
    next_message_is(bob, marker)
    bob.close()
