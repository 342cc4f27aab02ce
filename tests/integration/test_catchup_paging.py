"""Catch-up over real processes: a `since=0` socket in a room of thousands of messages gets one
bounded page in hello and pages to the end, and several such sockets keep the chat server's
memory bounded by the page size, not by the room (issue 10, "Bounded work per request")."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.live import LiveSystem, rss_bytes
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

PAGE = 200
# Room for a whole page of these messages: each carries its 1,000-character body twice (the
# source and its rendered `html`), about 2.3 kB of JSON; the byte cut is tested in tests/chatserver.
PAGE_BYTES = 512 * 1024
ROOM_SIZE = 8000
BODY = "x" * 1000  # a room of about 9 MB of JSON: what a whole-history hello would carry
SOCKETS = 8


@pytest.fixture(scope="module")
def paging_live(tmp_path_factory: pytest.TempPathFactory):
    """A system of its own, so the chat server's peak memory is this module's alone."""
    env = {"CHAT_CATCHUP_PAGE": str(PAGE), "CHAT_CATCHUP_BYTES": str(PAGE_BYTES)}
    with LiveSystem(tmp_path_factory.mktemp("paging"), extra_env=env) as system:
        yield system


@pytest.fixture(scope="module")
def big_room(paging_live: LiveSystem) -> str:
    """A room of 8,000 messages stored straight through Django before anyone joined it."""
    slug = "big-room"
    paging_live.create_room(slug, guests=True)
    paging_live.store_messages(slug, ROOM_SIZE, body=BODY, chunk=500)
    return slug


def join(live: LiveSystem, slug: str, since: int | None = None) -> ChatClient:
    session = live.guest_session(slug)
    url = live.ticket(session, slug)["ws_url"]
    if since is not None:
        url += f"&since={since}"
    return ChatClient(url, origin=live.origin, open_timeout=30)


def ids(messages: list[dict]) -> list[int]:
    return [m["id"] for m in messages]


def test_since_0_socket_gets_a_bounded_hello_and_pages_to_the_end(paging_live, big_room):
    """hello holds the first page and `has_more`; `history` requests bring the rest in order,
    each at most a page; with live messages sent meanwhile the client ends with every stored
    message exactly once."""
    writer = join(paging_live, big_room)
    reader = join(paging_live, big_room, since=0)
    try:
        stored_before = ids(paging_live.stored_messages(big_room))
        assert reader.hello["has_more"] is True
        assert ids(reader.hello["history"]) == stored_before[:PAGE]
        paged = ids(reader.hello["history"])
        has_more, index = True, 0
        while has_more:
            if index % 5 == 0:
                writer.say(f"live {index}", uuid.uuid4().hex)
            page = reader.page_after(paged[-1], timeout=60)
            index += 1
            got = ids(page["messages"])
            assert 0 < len(got) <= PAGE and got[0] > paged[-1]
            paged += got
            has_more = page["has_more"]
            assert index <= ROOM_SIZE
        sent = (index + 4) // 5
        live_ids = ids(reader.wait_for_messages(sent, timeout=30))
        stored = ids(paging_live.stored_messages(big_room))
        assert len(stored) == len(stored_before) + sent
        assert paged == stored  # in order, nothing lost, nothing twice
        assert len(live_ids) == len(set(live_ids)) == sent
        assert set(live_ids) <= set(stored)
    finally:
        reader.close()
        writer.close()


def test_several_since_0_sockets_keep_the_chat_server_memory_bounded(paging_live, big_room):
    """Eight sockets open with `since=0` at once and page through the whole room: each gets
    every message, and the chat server's peak memory grows by no more than a generous bound
    derived from the page size (a whole-history hello per socket costs several times that)."""
    pid = paging_live.chatserver.pid
    assert pid is not None
    before = rss_bytes(pid)
    stored = ids(paging_live.stored_messages(big_room))
    with ThreadPoolExecutor(SOCKETS) as pool:
        clients = list(pool.map(lambda _n: join(paging_live, big_room, since=0), range(SOCKETS)))
    try:
        got = {n: ids(c.hello["history"]) for n, c in enumerate(clients)}
        more = {n: c.hello["has_more"] for n, c in enumerate(clients)}
        assert all(len(g) <= PAGE for g in got.values())
        index = 0
        while any(more.values()):
            waiting = [n for n in more if more[n]]
            for n in waiting:
                page = clients[n].page_after(got[n][-1], timeout=60)
                assert len(page["messages"]) <= PAGE
                got[n] += ids(page["messages"])
                more[n] = page["has_more"]
            index += 1
            assert index <= ROOM_SIZE
        assert all(g == stored for g in got.values())
        grown = rss_bytes(pid, peak=True) - before
        # A few pages in flight per socket, plus room for the process to breathe (measured:
        # about 3 MiB with pages, about 45 MiB with a whole-history hello per socket).
        bound = 8 * 1024 * 1024 + SOCKETS * 4 * PAGE_BYTES
        assert grown <= bound, f"peak grew by {grown / 2**20:.1f} MiB (bound {bound / 2**20} MiB)"
    finally:
        for client in clients:
            client.close()
