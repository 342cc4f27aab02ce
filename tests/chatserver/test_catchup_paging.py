"""Catch-up is paged on both transports: a client away for thousands of messages gets one bounded
page at a time (`has_more`), reads one page from Django per request, and ends with every message
exactly once even while live messages arrive between pages (docs/protocol.md, "Catching up")."""

from __future__ import annotations

import orjson
import pytest
from twisted.internet.defer import Deferred

from chatserver.frames import MAX_MESSAGE_ID
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

ROOM_SIZE = 2500
PAGE = 100


def socket(factory, reactor, uid="u:1", name="alice", extra=""):
    t = ticket(reactor, uid=uid, name=name)
    return WsClient(factory, f"/ws/lobby?ticket={t}{extra}", ORIGIN)


class HeldReads:
    """Makes Django's `messages_after` wait until the test releases it."""

    def __init__(self, django) -> None:
        self.real = django.messages_after
        self.held: list[tuple[Deferred, tuple]] = []
        django.messages_after = self._held

    def _held(self, *args):
        d: Deferred = Deferred()
        self.held.append((d, args))
        return d

    def release(self, error: Exception | None = None) -> None:
        held, self.held = self.held, []
        for d, args in held:
            if error is not None:
                d.errback(error)
            else:
                self.real(*args).chainDeferred(d)


def ids(messages: list[dict]) -> list[int]:
    return [m["id"] for m in messages]


def test_socket_catch_up_is_paged_and_ends_with_every_message_once():
    """`since=0` on a 2,500-message room: hello holds one page (`has_more`), each
    `{"type": "history"}` answers the next page in order with one bounded Django read, and with a
    live message stored between every two pages the client ends with every id exactly once."""
    hub, reactor, django = make_hub(catchup_page=PAGE, burst=1000)
    factory = ChatServerFactory(hub, reactor, hub.config)
    django.fill("lobby", ROOM_SIZE)
    reader = socket(factory, reactor, extra="&since=0")
    writer = socket(factory, reactor, uid="u:2", name="bob")
    writer.json_frames()
    hello = reader.json_frames()[0]
    assert hello["type"] == "hello" and hello["has_more"] is True
    assert ids(hello["history"]) == list(range(1, PAGE + 1))
    assert django.history_reads[0] == ("lobby", 0, PAGE)  # then bob's hello: the newest

    paged = ids(hello["history"])
    live: list[int] = []
    has_more, requests = True, 0
    while has_more:
        writer.send({"type": "message", "body": "live", "nonce": f"live-{requests}"})
        reactor.advance(0.01)  # stored by Django and broadcast to the reader at once
        reader.send({"type": "history", "after": paged[-1]})
        requests += 1
        frames = reader.json_frames()
        live += [f["id"] for f in frames if f["type"] == "message"]
        pages = [f for f in frames if f["type"] == "history"]
        assert len(pages) == 1
        page = ids(pages[0]["messages"])
        assert 0 < len(page) <= PAGE and page[0] > paged[-1] and page == sorted(page)
        paged += page
        has_more = pages[0]["has_more"]
        assert requests < ROOM_SIZE  # always progresses
    stored = ids(django.messages)
    assert len(stored) == ROOM_SIZE + requests
    assert paged == stored  # pages: contiguous, in order, no duplicates
    assert len(live) == len(set(live)) == requests  # each live message delivered once
    assert sorted(set(paged) | set(live)) == stored
    # One bounded read per request at most (the last pages may come from the recent buffer).
    assert len(django.history_reads) <= 2 + requests
    assert all(limit <= PAGE for _room, _after, limit in django.history_reads)


def test_hello_and_pages_are_bounded_by_bytes_but_always_progress():
    """Large bodies: a page stops at `catchup_bytes` (keeping at least one message, so a
    message bigger than the budget still gets through), and says `has_more`."""
    hub, reactor, django = make_hub(catchup_page=PAGE, catchup_bytes=10_000)
    factory = ChatServerFactory(hub, reactor, hub.config)
    django.fill("lobby", 5, body="x" * 3000)
    django.fill("lobby", 1, body="y" * 12_000)
    django.fill("lobby", 2, body="z" * 3000)
    client = socket(factory, reactor, extra="&since=0")
    hello = client.json_frames()[0]
    assert ids(hello["history"]) == [1, 2, 3] and hello["has_more"] is True
    got = ids(hello["history"])
    for expected in ([4, 5], [6], [7, 8]):
        client.send({"type": "history", "after": got[-1]})
        (page,) = client.json_frames()
        assert ids(page["messages"]) == expected
        got += expected
    assert page["has_more"] is False


def test_hello_without_since_is_the_newest_page_at_most():
    """Without `since`, hello holds the newest `history_size` messages but never more than a
    page (nor more bytes than the budget), and `has_more` is false (older pages are Django's)."""
    hub, reactor, django = make_hub(history_size=500, catchup_page=PAGE)
    factory = ChatServerFactory(hub, reactor, hub.config)
    django.fill("lobby", ROOM_SIZE)
    hello = socket(factory, reactor).json_frames()[0]
    assert ids(hello["history"]) == list(range(ROOM_SIZE - PAGE + 1, ROOM_SIZE + 1))
    assert hello["has_more"] is False

    hub, reactor, django = make_hub(catchup_bytes=10_000)
    factory = ChatServerFactory(hub, reactor, hub.config)
    django.fill("lobby", 20, body="x" * 3000)
    hello = socket(factory, reactor).json_frames()[0]
    assert ids(hello["history"]) == [18, 19, 20] and hello["has_more"] is False


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "history"},
        {"type": "history", "after": None},
        {"type": "history", "after": "5"},
        {"type": "history", "after": 5.0},
        {"type": "history", "after": True},
        {"type": "history", "after": -1},
        {"type": "history", "after": MAX_MESSAGE_ID + 1},
        {"type": "history", "after": [5]},
    ],
)
def test_a_bad_after_is_refused_with_bad_frame_and_reads_nothing(frame):
    """`after` must be a JSON integer from 0 to 2**53 - 1: anything else gets a `bad_frame`
    error frame, no Django read, and the socket stays open."""
    hub, reactor, django = make_hub()
    factory = ChatServerFactory(hub, reactor, hub.config)
    client = socket(factory, reactor)
    client.json_frames()
    reads = len(django.history_reads)
    client.send(frame)
    (error,) = client.json_frames()
    assert error["type"] == "error" and error["code"] == "bad_frame"
    assert len(django.history_reads) == reads
    assert not client.transport.disconnecting
    client.send({"type": "history", "after": MAX_MESSAGE_ID})
    assert client.json_frames() == [{"type": "history", "messages": [], "has_more": False}]


def test_one_history_read_at_a_time_per_socket():
    """A second request while a page is being read is refused with `busy` (no second read);
    the first is answered, and a request after it is served again."""
    hub, reactor, django = make_hub(catchup_page=PAGE)
    factory = ChatServerFactory(hub, reactor, hub.config)
    django.fill("lobby", 3 * PAGE)
    client = socket(factory, reactor, extra=f"&since={2 * PAGE}")
    client.json_frames()
    held = HeldReads(django)
    client.send({"type": "history", "after": 0})
    for after in (0, 5, PAGE):
        client.send({"type": "history", "after": after})
    assert [f["code"] for f in client.json_frames()] == ["busy"] * 3
    assert len(held.held) == 1
    held.release()
    (page,) = client.json_frames()
    assert ids(page["messages"]) == list(range(1, PAGE + 1)) and page["has_more"] is True
    client.send({"type": "history", "after": PAGE})
    held.release()
    (page,) = client.json_frames()
    assert ids(page["messages"])[0] == PAGE + 1


def test_a_failed_page_read_closes_with_1011_to_resume_from_the_last_page():
    """Django failing for a history request closes the socket with 1011: the client reconnects
    with `since` set to the last page it holds."""
    hub, reactor, django = make_hub(catchup_page=PAGE)
    factory = ChatServerFactory(hub, reactor, hub.config)
    django.fill("lobby", 3 * PAGE)
    client = socket(factory, reactor, extra="&since=0")
    client.json_frames()
    django.fail_history = True
    client.send({"type": "history", "after": PAGE})
    assert client.close_frame()[0] == 1011


def test_sockets_catching_up_from_the_same_id_share_one_read_of_one_page():
    """Ten sockets opening with the same `since` while the read runs: one Django read of one
    page, every hello holds that page."""
    hub, reactor, django = make_hub(catchup_page=PAGE)
    factory = ChatServerFactory(hub, reactor, hub.config)
    django.fill("lobby", ROOM_SIZE)
    held = HeldReads(django)
    clients = [
        socket(factory, reactor, uid=f"g:{n}", name=f"g{n}", extra="&since=7") for n in range(10)
    ]
    assert len(held.held) == 1
    held.release()
    for client in clients:
        hello = client.json_frames()[0]
        assert ids(hello["history"]) == list(range(8, 8 + PAGE)) and hello["has_more"] is True
    assert django.history_reads == [("lobby", 7, PAGE)]


# long polling ----------------------------------------------------------------------------------


@pytest.fixture
def poll_env():
    hub, reactor, django = make_hub(catchup_page=PAGE, burst=1000)
    return hub, reactor, django, LongPollResource(hub, hub.config, hub.clock)


def poll_get(env, since):
    hub, reactor, _, poll = env
    t = ticket(reactor)
    headers = {"Origin": ORIGIN}
    return render(
        poll, web_request("GET", f"/poll/lobby?ticket={t}&since={since}", "/poll/", b"", headers)
    )


def poll_post(env, body, nonce):
    hub, reactor, _, poll = env
    t = ticket(reactor, uid="u:2", name="bob")
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    raw = orjson.dumps({"body": body, "nonce": nonce})
    return render(poll, web_request("POST", f"/poll/lobby?ticket={t}", "/poll/", raw, headers))


def test_poll_catch_up_is_paged_and_ends_with_every_message_once(poll_env):
    """`GET /poll?since=0` on a big room answers one page with `has_more`; polling again after
    each page's last id, with a message posted between polls, reaches the end with every stored
    id exactly once and in order."""
    hub, reactor, django, _ = poll_env
    django.fill("lobby", ROOM_SIZE)
    since, got, polls = 0, [], 0
    while True:
        poll_post(poll_env, "live", f"live-{polls}")
        reactor.advance(0.01)
        request = poll_get(poll_env, since)
        polls += 1
        assert request.finished
        answer = body_json(request)
        page = ids(answer["messages"])
        assert 0 < len(page) <= PAGE and page[0] > since and page == sorted(page)
        got += page
        since = page[-1]
        if not answer["has_more"]:
            break
        assert polls < ROOM_SIZE
    assert got == ids(django.messages)
    assert len(django.messages) == ROOM_SIZE + polls
    assert all(limit <= PAGE for _room, _after, limit in django.history_reads)


def test_poll_page_with_more_to_come_carries_no_live_message(poll_env):
    """A message stored while a poll's page is read is not appended to a page that has more
    after it (the client would skip the gap between them); it comes with the last page."""
    hub, reactor, django, _ = poll_env
    django.fill("lobby", 2 * PAGE - 1)
    held = HeldReads(django)
    request = poll_get(poll_env, 0)
    poll_post(poll_env, "during the read", "live-1")
    reactor.advance(0.01)
    held.release()
    first = body_json(request)
    assert ids(first["messages"]) == list(range(1, PAGE + 1)) and first["has_more"] is True
    request = poll_get(poll_env, PAGE)
    held.release()
    last = body_json(request)
    assert ids(last["messages"]) == list(range(PAGE + 1, 2 * PAGE + 1))
    assert last["has_more"] is False


def test_poll_without_since_is_the_newest_page_at_most():
    """Without `since` a poll answers at most one page of the newest messages."""
    hub, reactor, django = make_hub(history_size=500, catchup_page=PAGE)
    env = (hub, reactor, django, LongPollResource(hub, hub.config, hub.clock))
    django.fill("lobby", ROOM_SIZE)
    hub_, reactor_, _, poll = env
    request = render(
        poll,
        web_request(
            "GET", f"/poll/lobby?ticket={ticket(reactor)}", "/poll/", b"", {"Origin": ORIGIN}
        ),
    )
    answer = body_json(request)
    assert ids(answer["messages"]) == list(range(ROOM_SIZE - PAGE + 1, ROOM_SIZE + 1))
    assert answer["has_more"] is False
