"""The long-polling transport: immediate answers, held polls, posting, presence, CORS."""

import re

import orjson
import pytest

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


@pytest.fixture
def env():
    hub, reactor, django = make_hub()
    return hub, reactor, django, LongPollResource(hub, hub.config, hub.clock)


def get(env, query="", origin=ORIGIN, uid="u:1", name="alice", room="lobby"):
    hub, reactor, _, poll = env
    t = ticket(reactor, room=room, uid=uid, name=name)
    headers = {"Origin": origin} if origin else {}
    return render(
        poll, web_request("GET", f"/poll/{room}?ticket={t}{query}", "/poll/", b"", headers)
    )


def post(env, obj, uid="u:1", name="alice", raw=None):
    hub, reactor, _, poll = env
    body = raw if raw is not None else orjson.dumps(obj)
    t = ticket(reactor, uid=uid, name=name)
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    return render(poll, web_request("POST", f"/poll/lobby?ticket={t}", "/poll/", body, headers))


def test_without_since_answers_newest_at_once_with_cors(env):
    """No since: the newest messages at once, as the frames a socket gets (`events`, presence
    last, `cursor` the next `since`), the previous release's fields beside them, and CORS
    headers for the origin."""
    _, _, django, _ = env
    old = django.add("lobby")
    request = get(env)
    assert request.finished
    people = [{"id": "u:1", "name": "alice", "guest": False}]
    answer = body_json(request)
    # Opaque: the room's remembered events (none yet) as this process numbers them.
    assert re.fullmatch(r"[0-9a-f]{8}\.0", answer.pop("event_cursor"))
    assert answer == {
        "events": [
            {"type": "message", **old},
            {"type": "presence", "online": ["alice"], "people": people},
        ],
        "cursor": old["id"],
        "messages": [old],
        "has_more": False,
        "online": ["alice"],
        "people": [{"id": "u:1", "name": "alice", "guest": False}],
        "deleted": [],
    }
    assert request.responseHeaders.getRawHeaders(b"access-control-allow-origin") == [
        ORIGIN.encode()
    ]
    assert request.responseHeaders.getRawHeaders(b"vary") == [b"Origin"]


def test_held_poll_is_answered_by_a_message_from_a_socket(env):
    """A poll with since and nothing newer is held; a socket's message releases it."""
    hub, reactor, django, poll = env
    request = get(env, "&since=0")
    assert not request.finished and poll.active() == 1
    factory = ChatServerFactory(hub, reactor, hub.config)
    sock = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor, uid='u:2', name='bob')}", ORIGIN)
    sock.json_frames()
    sock.send({"type": "message", "body": "hi", "nonce": "n1"})
    reactor.advance(0.01)
    assert request.finished
    answer = body_json(request)
    assert [m["body"] for m in answer["messages"]] == ["hi"]
    assert sock.json_frames()[0]["id"] == answer["messages"][0]["id"]


def test_wait_0_answers_at_once_with_nothing_new_and_the_next_poll_is_held(env):
    """`wait=0` (a client's first poll): with nothing after `since` the answer comes at once,
    presence and `cursor` only, so the client knows the chat server took it; the same poll
    without it is held."""
    hub, _, django, poll = env
    old = django.add("lobby")
    request = get(env, f"&since={old['id']}&wait=0")
    assert request.finished and poll.active() == 0
    answer = body_json(request)
    assert answer["events"] == [
        {
            "type": "presence",
            "online": ["alice"],
            "people": [{"id": "u:1", "name": "alice", "guest": False}],
        }
    ]
    assert answer["cursor"] == old["id"] and answer["has_more"] is False
    held = get(env, f"&since={old['id']}&wait=1")
    assert not held.finished and poll.active() == 1


@pytest.mark.parametrize("raw", ["2", "no", "00", "true", "-0"])
def test_wait_other_than_0_or_1_is_400_bad_wait(env, raw):
    """`wait` is 0 or 1 (absent means 1); anything else is a clear 400 `bad_wait`."""
    request = get(env, f"&since=0&wait={raw}")
    assert request.finished and request.responseCode == 400
    assert body_json(request)["error"] == "bad_wait"


def test_held_poll_times_out_with_empty_list_and_disconnect_releases(env):
    """A held poll answers an empty list after the poll timeout; a gone client is forgotten."""
    hub, reactor, _, poll = env
    request = get(env, "&since=0")
    reactor.advance(24)
    poll.sweep()
    assert not request.finished
    reactor.advance(2)
    poll.sweep()
    assert request.finished and body_json(request)["messages"] == []
    gone = get(env, "&since=0")
    gone.processingFailed(Exception("client went away"))
    assert poll.active() == 0 and list(hub.registry.members("lobby")) == []


def test_post_stores_and_answers_message_and_poll_sees_it(env):
    """POST answers 200 with the stored message once Django stored it."""
    hub, reactor, _, _ = env
    waiting = get(env, "&since=0", uid="u:2", name="bob")
    request = post(env, {"body": "hello", "nonce": "p-1"})
    assert not request.finished
    reactor.advance(0.01)
    assert request.responseCode == 200
    message = body_json(request)["message"]
    assert message["body"] == "hello"
    assert body_json(waiting)["messages"] == [message]


@pytest.mark.parametrize(
    "raw, status, code",
    [
        (b"{", 400, "bad_json"),
        (b'{"body":"x","nonce":"bad nonce"}', 400, "bad_nonce"),
        (b'{"body":"  ","nonce":"n"}', 400, "empty_body"),
        (b"x" * 70000, 413, "too_large"),
    ],
)
def test_post_errors_use_documented_statuses(env, raw, status, code):
    """Bad bodies answer 400 with the frame error code; oversize answers 413."""
    request = post(env, None, raw=raw)
    assert request.responseCode == status and body_json(request)["error"] == code


def test_post_rate_limit_is_429_per_uid():
    """Past the burst for one ticket uid, POST answers 429."""
    hub, reactor, django = make_hub(burst=1, rate=0.0001)
    env = (hub, reactor, django, LongPollResource(hub, hub.config, hub.clock))
    post(env, {"body": "a", "nonce": "n1"})
    assert post(env, {"body": "b", "nonce": "n2"}).responseCode == 429


def test_bad_ticket_403_archived_404_and_410_while_polling(env):
    """Bad ticket 403; archived room 404; a held poll answers 410 when the room is archived."""
    hub, reactor, _, poll = env
    bad = render(poll, web_request("GET", "/poll/lobby?ticket=nope", "/poll/"))
    assert bad.responseCode == 403
    held = get(env, "&since=0")
    hub.archive("lobby")
    assert held.responseCode == 410 and body_json(held) == {"error": "room_archived"}
    assert get(env).responseCode == 404


def test_poller_stays_online_for_the_grace_period(env):
    """A poller is online while polling and for the grace period after its last request."""
    hub, reactor, _, poll = env
    get(env)
    assert hub.registry.online("lobby") == ["alice"]
    reactor.advance(34)
    poll.sweep()
    assert hub.registry.online("lobby") == ["alice"]
    reactor.advance(2)
    poll.sweep()
    assert hub.registry.online("lobby") == []


def test_preflight_and_foreign_origin(env):
    """OPTIONS answers the preflight for an allowed origin; a foreign origin is refused."""
    _, _, _, poll = env
    headers = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    request = render(poll, web_request("OPTIONS", "/poll/lobby", "/poll/", b"", headers))
    assert request.responseCode == 204
    allowed = request.responseHeaders.getRawHeaders(b"access-control-allow-headers")
    assert allowed == [b"Content-Type"]
    assert get(env, origin="http://evil.example").responseCode == 403


def test_release_all_answers_held_polls_empty(env):
    """At shutdown every held poll is answered with an empty list."""
    _, _, _, poll = env
    held = get(env, "&since=0")
    poll.release_all()
    assert held.finished and body_json(held)["messages"] == []
