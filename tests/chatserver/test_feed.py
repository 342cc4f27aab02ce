"""The personal feed: user tickets, `/ws/@me`, `/poll/@me`, `POST /internal/users/events`, and
user events across instances through Redis (real hub, fan-out and transports; fake Django,
fake Redis, StringTransports on a MemoryReactorClock)."""

from __future__ import annotations

import orjson
import pytest
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from chatserver.control import ControlResource
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from chatserver.revocations import USER, Revocation
from chatserver.signing import signed_headers
from chatserver.tickets import FEED_AUDIENCE
from tests.chatserver.support import (
    ORIGIN,
    SECRET,
    WsClient,
    body_json,
    make_cluster,
    make_hub,
    render,
    ticket,
    web_request,
)

UNREAD = {"type": "unread", "room": "lobby", "unread": 3, "mentions": 0, "last_read_id": 9}


def user_ticket(clock, uid="u:1", name="alice", **kw) -> str:
    return ticket(clock, uid=uid, name=name, aud=FEED_AUDIENCE, **kw)


def feed(factory, reactor, uid="u:1") -> WsClient:
    client = WsClient(factory, f"/ws/@me?ticket={user_ticket(reactor, uid=uid)}", ORIGIN)
    assert client.status == 101
    return client


def signed(hub, uri, payload, secret=SECRET):
    body = orjson.dumps(payload)
    headers = signed_headers(secret, "POST", uri, body, hub.clock.seconds())
    return web_request("POST", uri, "/internal/", body, headers)


@pytest.fixture
def one():
    hub, reactor, django = make_hub()
    return hub, reactor, ChatServerFactory(hub, reactor, hub.config)


def test_feed_socket_says_hello_and_gets_events_addressed_to_its_user(one):
    """A feed socket follows its user: it gets that user's events, not another user's."""
    hub, reactor, factory = one
    mine, theirs = feed(factory, reactor, "u:1"), feed(factory, reactor, "u:2")
    assert mine.json_frames() == [
        {"type": "hello", "feed": True, "user": {"id": "u:1", "name": "alice", "guest": False}}
    ]
    theirs.json_frames()
    assert hub.notify_users([1], UNREAD) == 1
    assert mine.json_frames() == [UNREAD]
    assert theirs.json_frames() == []


def test_every_device_of_a_user_gets_the_event_once(one):
    """Two feed sockets of one user both get it; a user listed twice is reached once each."""
    hub, reactor, factory = one
    phone, laptop = feed(factory, reactor), feed(factory, reactor)
    phone.frames(), laptop.frames()
    assert hub.notify_users([1, 1, 7], UNREAD) == 2
    assert phone.json_frames() == [UNREAD] and laptop.json_frames() == [UNREAD]


def test_closed_feed_socket_is_forgotten(one):
    """After a feed socket closes, events for its user reach nobody here."""
    hub, reactor, factory = one
    client = feed(factory, reactor)
    client.protocol.connectionLost(Failure(ConnectionDone()))
    assert hub.notify_users([1], UNREAD) == 0


def test_a_room_ticket_cannot_open_the_feed(one):
    """`/ws/@me` refuses a room ticket (403): a ticket for a room is not one for the person."""
    _, reactor, factory = one
    assert WsClient(factory, f"/ws/@me?ticket={ticket(reactor)}", ORIGIN).status == 403


def test_a_user_ticket_cannot_join_a_room(one):
    """`/ws/<slug>` refuses a user ticket (403): the feed's audience is no room's."""
    _, reactor, factory = one
    assert WsClient(factory, f"/ws/lobby?ticket={user_ticket(reactor)}", ORIGIN).status == 403


def test_a_guest_cannot_open_a_feed(one):
    """A feed is addressed by Django user id: a guest's user-audience ticket is refused."""
    _, reactor, factory = one
    t = ticket(reactor, uid="g:0123456789abcdef", name="guest", aud=FEED_AUDIENCE)
    assert WsClient(factory, f"/ws/@me?ticket={t}", ORIGIN).status == 403


def test_feed_accepts_pings_only(one):
    """A message frame on the feed gets `feed_read_only`; a ping gets a pong."""
    _, reactor, factory = one
    client = feed(factory, reactor)
    client.frames()
    client.send({"type": "message", "body": "hi", "nonce": "n1"})
    client.send({"type": "ping"})
    frames = client.json_frames()
    assert frames[0]["type"] == "error" and frames[0]["code"] == "feed_read_only"
    assert frames[1] == {"type": "pong"}


def test_sign_out_closes_the_feed_with_4003(one):
    """A user revocation (sign-out) closes that user's feed sockets and refuses older tickets."""
    hub, reactor, factory = one
    client = feed(factory, reactor)
    client.frames()
    reactor.advance(1)
    hub.revoke(Revocation(USER, "u:1", int(reactor.seconds() * 1000)))
    assert client.close_frame() == (4003, "access revoked")
    from chatserver.tickets import mint_ticket

    old = mint_ticket(
        SECRET,
        room="",
        uid="u:1",
        name="alice",
        user_id=1,
        now=int(reactor.seconds()) - 1,
        aud=FEED_AUDIENCE,
    )
    assert WsClient(factory, f"/ws/@me?ticket={old}", ORIGIN).status == 403
    reactor.advance(1)
    assert feed(factory, reactor).status == 101  # a ticket minted after the sign-out


# the internal endpoint -----------------------------------------------------------------------


def test_internal_user_events_delivers_to_the_listed_users(one):
    """`POST /internal/users/events` with one item answers `delivered`; a list answers
    `results`, one per item."""
    hub, reactor, factory = one
    client = feed(factory, reactor)
    client.frames()
    resource = ControlResource(hub)
    request = render(
        resource, signed(hub, "/internal/users/events", {"users": [1], "event": UNREAD})
    )
    assert request.responseCode == 200 and body_json(request) == {"delivered": 1}
    mention = {"type": "mention", "room": "lobby", "id": 5}
    items = [{"users": [2], "event": UNREAD}, {"users": [1], "event": mention}]
    request = render(resource, signed(hub, "/internal/users/events", items))
    assert body_json(request) == {"results": [{"delivered": 0}, {"delivered": 1}]}
    assert client.json_frames() == [UNREAD, mention]


def test_unsigned_user_events_are_refused(one):
    """An unsigned or wrongly signed call is 403 and delivers nothing."""
    hub, reactor, factory = one
    client = feed(factory, reactor)
    client.frames()
    resource = ControlResource(hub)
    body = orjson.dumps({"users": [1], "event": UNREAD})
    unsigned = render(resource, web_request("POST", "/internal/users/events", "/internal/", body))
    assert unsigned.responseCode == 403
    forged = render(
        resource, signed(hub, "/internal/users/events", {"users": [1], "event": UNREAD}, "x" * 40)
    )
    assert forged.responseCode == 403
    assert client.json_frames() == []


@pytest.mark.parametrize(
    "payload",
    [
        {"users": "1", "event": UNREAD},
        {"users": [True], "event": UNREAD},
        {"users": [0], "event": UNREAD},
        {"users": [1], "event": {"type": "hello"}},
        {"users": [1], "event": {"type": "Bad Type"}},
        {"users": [1], "event": []},
        [],
        [{"users": [1], "event": UNREAD}, {"users": [1]}],
    ],
)
def test_bad_user_events_are_400_and_deliver_nothing(one, payload):
    """Malformed items are refused with 400 `bad_request`; one bad item refuses the call."""
    hub, reactor, factory = one
    client = feed(factory, reactor)
    client.frames()
    request = render(ControlResource(hub), signed(hub, "/internal/users/events", payload))
    assert request.responseCode == 400 and body_json(request)["error"] == "bad_request"
    assert client.json_frames() == []


# long polling ---------------------------------------------------------------------------------


def poll(resource, reactor, cursor=None, t=None):
    uri = f"/poll/@me?ticket={t or user_ticket(reactor)}"
    if cursor:
        uri += f"&cursor={cursor}"
    return render(resource, web_request("GET", uri, "/poll/", headers={"Origin": ORIGIN}))


def test_feed_poll_hello_then_held_until_an_event(one):
    """The first poll answers `hello` and a cursor; the next is held and answered by the event;
    the one after gets what arrived in between at once."""
    hub, reactor, _ = one
    resource = LongPollResource(hub, hub.config, reactor)
    first = body_json(poll(resource, reactor))
    assert first["events"][0]["type"] == "hello"
    held = poll(resource, reactor, first["cursor"])
    assert not held.finished
    assert hub.notify_users([1], UNREAD) == 1
    answer = body_json(held)
    assert answer["events"] == [UNREAD]
    hub.notify_users([1], {"type": "mention", "room": "lobby", "id": 5})
    later = body_json(poll(resource, reactor, answer["cursor"]))
    assert later["events"] == [{"type": "mention", "room": "lobby", "id": 5}]


def test_feed_poll_times_out_empty_and_mailbox_expires(one):
    """A held feed poll answers `[]` after poll_timeout; a mailbox nobody polls for poll_grace
    stops following the user."""
    hub, reactor, _ = one
    resource = LongPollResource(hub, hub.config, reactor)
    cursor = body_json(poll(resource, reactor))["cursor"]
    held = poll(resource, reactor, cursor)
    reactor.advance(hub.config.poll_timeout + 1)
    resource.sweep()
    assert body_json(held)["events"] == []
    reactor.advance(hub.config.poll_grace + 1)
    resource.sweep()
    assert hub.notify_users([1], UNREAD) == 0


def test_feed_poll_unknown_cursor_gets_hello_and_bad_cursor_400(one):
    """A cursor of another instance gets `hello` (re-read the state); garbage gets 400."""
    hub, reactor, _ = one
    resource = LongPollResource(hub, hub.config, reactor)
    poll(resource, reactor)
    again = body_json(poll(resource, reactor, "00000000.3"))
    assert again["events"][0]["type"] == "hello"
    bad = poll(resource, reactor, "nope")
    assert bad.responseCode == 400 and body_json(bad)["error"] == "bad_cursor"


def test_feed_poll_refuses_a_room_ticket(one):
    """`/poll/@me` with a room ticket is 403."""
    hub, reactor, _ = one
    resource = LongPollResource(hub, hub.config, reactor)
    assert poll(resource, reactor, t=ticket(reactor)).responseCode == 403


# across instances ------------------------------------------------------------------------------


def test_user_events_reach_feeds_on_the_other_instance():
    """An event Django sends to instance A reaches the user's feed socket on instance B through
    Redis, once; A's own feed gets it locally, not a second time from Redis."""
    hubs, reactor, _, redis = make_cluster(2)
    a, b = hubs
    on_a = feed(ChatServerFactory(a, reactor, a.config), reactor)
    on_b = feed(ChatServerFactory(b, reactor, b.config), reactor)
    on_a.frames(), on_b.frames()
    assert a.notify_users([1], UNREAD) == 1
    assert on_b.json_frames() == []  # not before Redis delivers
    redis.flush()
    assert on_a.json_frames() == [UNREAD]
    assert on_b.json_frames() == [UNREAD]


def test_a_malformed_user_event_envelope_is_ignored():
    """A `user_event` envelope without users is counted as bad and does not break the bus."""
    hubs, reactor, _, redis = make_cluster(2)
    a, b = hubs
    on_b = feed(ChatServerFactory(b, reactor, b.config), reactor)
    on_b.frames()
    b.fanout.received(orjson.dumps({"type": "user_event", "origin": "x", "event": UNREAD}))
    a.notify_users([1], UNREAD)
    redis.flush()
    assert on_b.json_frames() == [UNREAD]
