"""The personal feed with real processes: gunicorn Django and two `twistd` chat servers on the
shared Redis. Bob has the room list open (a feed socket on instance B); Alice posts through
instance A; Django addresses the feed events to Bob after commit (to A, the instance it calls),
and Redis carries them to B. Marking the room read clears the count on Bob's second device (a
feed socket on A) too. Also: the feed over long polling, and a room ticket refused on the feed.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator

import pytest
import requests

from tests.integration.test_redis_scaleout import _require, _shared_redis_problem, redis_env
from tests.support.live import LiveSystem, wait_until
from tests.support.wsclient import ChatClient

pytestmark = [pytest.mark.integration, pytest.mark.redis]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """Django plus two chat servers on the shared Redis (the primary is `live.chat_url`)."""
    _require(_shared_redis_problem())
    system = LiveSystem(
        tmp_path_factory.mktemp("feed-live"), extra_env=redis_env("redis://127.0.0.1:6379")
    )
    try:
        system.start()
        system.add_chatserver()
        yield system
    finally:
        system.stop()


def on(base_url: str, url: str) -> str:
    """`url` (a ws_url or poll_url Django minted for the primary) on the instance at `base_url`."""
    host = base_url.split("://", 1)[1]
    scheme = "ws" if url.startswith("ws") else "http"
    path = url.split("://", 1)[1]
    return f"{scheme}://{host}{path[path.index('/') :]}"


def post(live: LiveSystem, session: requests.Session, path: str, payload: dict) -> dict:
    response = session.post(
        live.django_url + path,
        json=payload,
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": live.django_url + "/"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def feed_socket(live: LiveSystem, session: requests.Session, base_url: str) -> ChatClient:
    ticket = session.get(live.django_url + "/api/feed/ticket/", timeout=10).json()
    return ChatClient(on(base_url, ticket["ws_url"]), origin=live.origin)


def test_unread_count_live_across_instances_and_cleared_on_every_device(cluster: LiveSystem):
    """Bob's feed on B sees Alice's messages (posted through A) as `room_message` and `mention`
    events and the summary counts them; Bob reads the room and both of his feeds (B and A) get
    `unread` 0."""
    live = cluster
    slug = f"att-{secrets.token_hex(3)}"
    live.create_room(slug, guests=False)
    bob_name, alice_name = f"bob{secrets.token_hex(3)}", f"alice{secrets.token_hex(3)}"
    live.create_user(bob_name, "pw-bob-0123456789")
    live.create_user(alice_name, "pw-alice-0123456789")
    bob = live.user_session(bob_name, "pw-bob-0123456789")
    alice = live.user_session(alice_name, "pw-alice-0123456789")
    other = live.extra_chatservers[0]

    # Bob opened the room once (he follows it), then went to the room list.
    assert post(live, bob, f"/api/rooms/{slug}/read/", {"last_read_id": 0})["unread"] == 0
    list_feed = feed_socket(live, bob, other.url)  # the room list, on instance B

    ws_url = live.ticket(alice, slug)["ws_url"]
    room = ChatClient(on(live.chat_url, ws_url), origin=live.origin)  # Alice, on instance A
    room.say("plain news", "n-1")
    room.say(f"look @{bob_name}", "n-2")
    first = list_feed.wait_for(lambda f: f.get("type") == "room_message" and f["room"] == slug)
    mention = list_feed.wait_for(lambda f: f.get("type") == "mention" and f["room"] == slug)
    assert first["author"]["name"] == alice_name and mention["id"] > first["id"]
    assert mention["excerpt"] == f"look @{bob_name}" and mention["here"] is False
    summary = bob.get(live.django_url + "/api/attention/", timeout=10).json()
    (state,) = [r for r in summary["rooms"] if r["room"] == slug]
    assert (state["unread"], state["mentions"]) == (2, 1)

    phone = feed_socket(live, bob, live.chat_url)  # a second device, on instance A
    read = post(live, bob, f"/api/rooms/{slug}/read/", {"last_read_id": mention["id"]})
    assert (read["unread"], read["mentions"]) == (0, 0)
    for feed in (list_feed, phone):
        cleared = feed.wait_for(lambda f: f.get("type") == "unread" and f["room"] == slug)
        assert (cleared["unread"], cleared["mentions"]) == (0, 0)
    # Alice's own messages raised nothing for her: she has no feed events addressed to her.
    for client in (room, list_feed, phone):
        client.close()


def test_feed_over_long_polling_and_room_ticket_refused(cluster: LiveSystem):
    """`/poll/@me` answers hello, then holds until Django addresses an event to the user; a
    room ticket on `/ws/@me` and a user ticket on a room are refused."""
    live = cluster
    slug = f"att-{secrets.token_hex(3)}"
    live.create_room(slug, guests=False)
    name = f"carol{secrets.token_hex(3)}"
    live.create_user(name, "pw-carol-0123456789")
    carol = live.user_session(name, "pw-carol-0123456789")
    ticket = carol.get(live.django_url + "/api/feed/ticket/", timeout=10).json()
    poll_url = on(live.extra_chatservers[0].url, ticket["poll_url"])
    hello = requests.get(poll_url, timeout=10).json()
    assert hello["events"][0]["type"] == "hello"

    answer: dict = {}

    def hold() -> None:
        answer.update(requests.get(f"{poll_url}&cursor={hello['cursor']}", timeout=40).json())

    holder = threading.Thread(target=hold)
    holder.start()
    # Mute is a read-state change: Django sends Carol's feeds the room's new state. The poll
    # may not be held yet when Django sends: repeat until the held poll answers.
    wait_until(
        lambda: (
            post(live, carol, f"/api/rooms/{slug}/mute/", {"muted": True})
            and (holder.join(0.3) or not holder.is_alive())
        ),
        timeout=20,
    )
    assert answer["events"][0]["type"] == "unread" and answer["events"][0]["muted"] is True

    room_ticket = live.ticket(carol, slug)["ticket"]
    base = "ws://" + live.chat_url.split("://", 1)[1]
    with pytest.raises(Exception, match="403"):
        ChatClient(f"{base}/ws/@me?ticket={room_ticket}", origin=live.origin)
    with pytest.raises(Exception, match="403"):
        ChatClient(f"{base}/ws/{slug}?ticket={ticket['ticket']}", origin=live.origin)


def form_post(live: LiveSystem, session: requests.Session, path: str, data: dict) -> str:
    """A page form's POST (CSRF token, no redirect followed); returns the Location."""
    response = session.post(
        live.django_url + path,
        data={**data, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": live.django_url + "/"},
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text[:300]
    return response.headers["Location"]


def test_direct_message_and_invitation_reach_a_feed_never_opened_there(cluster: LiveSystem):
    """Bob has only his room list open (feed on B). Alice opens a direct conversation with him
    and writes (through A): Bob, who never opened it, gets a `room_message` marked `direct`,
    and his list's summary (a reload) counts it too. Alice makes a private room and invites
    Bob by username: Bob's feed gets `invitation`."""
    live = cluster
    bob_name, alice_name = f"bob{secrets.token_hex(3)}", f"alice{secrets.token_hex(3)}"
    live.create_user(bob_name, "pw-bob-0123456789")
    live.create_user(alice_name, "pw-alice-0123456789")
    bob = live.user_session(bob_name, "pw-bob-0123456789")
    alice = live.user_session(alice_name, "pw-alice-0123456789")
    page = bob.get(live.django_url + "/chats/", timeout=10).text
    bob_id = page.split('data-user-id="u:', 1)[1].split('"', 1)[0]
    list_feed = feed_socket(live, bob, live.extra_chatservers[0].url)

    where = form_post(live, alice, f"/chats/direct/{bob_id}/", {})
    slug = where.rstrip("/").rsplit("/", 1)[1]
    room = ChatClient(on(live.chat_url, live.ticket(alice, slug)["ws_url"]), origin=live.origin)
    room.say("psst, Bob", "d-1")
    dm = list_feed.wait_for(lambda f: f.get("type") == "room_message" and f["room"] == slug)
    assert dm["direct"] is True and dm["excerpt"] == "psst, Bob"
    assert dm["author"]["name"] == alice_name
    # A reload of the list shows what the feed counted: the never-opened conversation's badge.
    summary = bob.get(live.django_url + "/api/attention/", timeout=10).json()
    assert {r["room"]: r["unread"] for r in summary["rooms"]} == {slug: 1}

    name = f"Plans {secrets.token_hex(3)}"
    where = form_post(
        live, alice, "/chats/new/", {"name": name, "description": "", "visibility": "private"}
    )
    private = where.rstrip("/").rsplit("/", 1)[1]
    form_post(live, alice, f"/chats/{private}/members/invite/", {"username": bob_name})
    invitation = list_feed.wait_for(lambda f: f.get("type") == "invitation")
    assert (invitation["room"], invitation["room_name"]) == (private, name)
    assert invitation["by"]["name"] == alice_name
    for client in (room, list_feed):
        client.close()
