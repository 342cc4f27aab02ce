"""A reader back after many missed messages: the page catches up page by page (never the whole
history in one frame or one poll answer) and shows every message once, in id order, with live
messages and its own new message arriving during the catch-up (docs/protocol.md, "Catching
up")."""

from __future__ import annotations

import json
import re
import uuid

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.browser

MISSED = 700
PAGE = 200  # CHAT_CATCHUP_PAGE's default: the session's chat server runs with it


def refuse_websockets(context: BrowserContext, page: Page) -> None:
    """Every WebSocket of the context fails, so the page long-polls."""

    def route(ws: WebSocketRoute) -> None:
        ws.close(code=1011, reason="blocked by test")

    context.route_web_socket(re.compile(r"^wss?://"), route)


def record_pages(page: Page) -> dict[str, list]:
    """Collects what the page received: hello and history frames, long-poll answers."""
    seen: dict[str, list] = {"frames": [], "sent": [], "polls": []}

    def on_socket(ws) -> None:
        def received(payload) -> None:
            frame = json.loads(payload)
            if frame.get("type") in ("hello", "history"):
                seen["frames"].append(frame)

        ws.on("framereceived", received)
        ws.on("framesent", lambda payload: seen["sent"].append(json.loads(payload)))

    page.on("websocket", on_socket)
    page.on(
        "response",
        lambda r: seen["polls"].append(r) if "/poll/" in r.url and r.request.method == "GET" else 0,
    )
    return seen


def test_socket_reader_back_after_many_missed_messages_sees_them_all_in_order(
    open_room, live_room, live
):
    """The chat server is down while 700 messages are stored; when it is back the socket page
    resumes with `since`, gets one page in hello, asks for the rest with `history` frames, and
    shows every stored message exactly once, in id order, with a live message from another
    reader and its own message sent during the catch-up."""
    catch_up_after_outage(open_room, live_room, live, "socket")


def test_polling_reader_back_after_many_missed_messages_sees_them_all_in_order(
    open_room, live_room, live
):
    """The same on long polling (WebSockets blocked): each poll answer is at most a page and
    the page polls again at once while `has_more`; its own message, answered by a POST with a
    newer id, does not make it skip the pages still to come."""
    catch_up_after_outage(open_room, live_room, live, "poll")


def catch_up_after_outage(open_room, live_room, live, transport: str) -> None:
    """Outage, 700 messages stored meanwhile, the page back: everything shown once, in order."""
    if transport == "poll":
        alice = open_room(live_room, before_load=refuse_websockets, wait_live=False)
        back = "Live (polling)"
    else:
        alice = open_room(live_room)
        back = "Live"
    expect(alice.state).to_have_text(back)
    alice.send("before the outage")
    expect(alice.message("before the outage")).not_to_have_class(re.compile(r"\bpending\b"))
    seen = record_pages(alice.page)

    live.stop_chatserver()
    try:
        expect(alice.state).not_to_have_text(back)
        live.store_messages(live_room, MISSED, body="missed")
    finally:
        live.start_chatserver()

    # Whichever transport the page comes back on, the catch-up must be complete and ordered.
    expect(alice.state).to_have_text(re.compile("Live|Polling"))
    alice.send("mine, during the catch-up")
    session = live.guest_session(live_room)
    bob = ChatClient(live.ticket(session, live_room)["ws_url"], origin=live.origin)
    try:
        bob.say("live, during the catch-up", uuid.uuid4().hex)
        bob.wait_for_messages(1)
    finally:
        bob.close()

    total = 1 + MISSED + 2
    expect(alice.messages).to_have_count(total, timeout=60_000)
    expect(alice.page.locator("#message-list li.pending")).to_have_count(0)
    stored = live.stored_messages(live_room)
    assert len(stored) == total
    shown = alice.messages.evaluate_all("els => els.map(e => Number(e.dataset.id))")
    assert shown == [m["id"] for m in stored]  # each once, in id order
    bodies = alice.messages.evaluate_all("els => els.map(e => e.querySelector('.body').innerText)")
    assert bodies == [m["body"] for m in stored]

    # Paged: no frame or poll answer carried more than a page, and the catch-up took several.
    pages = [f.get("history", f.get("messages")) or [] for f in seen["frames"]]
    pages += [r.json().get("messages", []) for r in seen["polls"] if r.ok]
    assert pages and max(len(p) for p in pages) <= PAGE
    assert sum(1 for p in pages if len(p) == PAGE) >= MISSED // PAGE
    if any(f.get("type") == "history" for f in seen["frames"]):
        assert any(f.get("type") == "history" for f in seen["sent"])


def test_a_connection_dropped_during_the_catch_up_resumes_from_the_last_page(
    open_room, live_room, live
):
    """The socket drops after the first page of catch-up, right after a live message with a
    newer id arrived: the page reconnects with `since` = the last id of that page (not the live
    message's id, which would skip everything between) and still ends with every stored message
    once, in id order."""
    urls: list[str] = []
    state = {"drop": False, "dropped": False}
    guest = live.guest_session(live_room)

    def route(ws: WebSocketRoute) -> None:
        urls.append(ws.url)
        server = ws.connect_to_server()

        def from_page(message) -> None:
            frame = json.loads(message)
            if frame.get("type") == "history" and not state["dropped"] and not state["drop"]:
                # Swallow the request for page 2 and store a live message meanwhile; the drop
                # follows once that message reached the page.
                state["drop"] = True
                poll_url = live.ticket(guest, live_room)["poll_url"]
                body = {"body": "live, before the drop", "nonce": uuid.uuid4().hex}
                live_post = requests.post(
                    poll_url, json=body, headers={"Origin": live.origin}, timeout=10
                )
                live_post.raise_for_status()
                return
            server.send(message)

        def from_server(message) -> None:
            ws.send(message)
            frame = json.loads(message)
            if state["drop"] and not state["dropped"] and frame.get("type") == "message":
                state["dropped"] = True
                ws.close(code=4000, reason="dropped by test")
                server.close()

        ws.on_message(from_page)
        server.on_message(from_server)

    def hook(context: BrowserContext, page: Page) -> None:
        context.route_web_socket(re.compile(r"^wss?://"), route)

    alice = open_room(live_room, before_load=hook)
    alice.send("before the outage")
    expect(alice.message("before the outage")).not_to_have_class(re.compile(r"\bpending\b"))
    first = live.stored_messages(live_room)[-1]["id"]

    live.stop_chatserver()
    try:
        expect(alice.state).not_to_have_text("Live")
        missed = live.store_messages(live_room, MISSED, body="missed")
    finally:
        live.start_chatserver()

    total = 1 + MISSED + 1
    expect(alice.messages).to_have_count(total, timeout=60_000)
    assert state["dropped"]
    resumed = [u for u in urls if f"since={missed[PAGE - 1]['id']}" in u]
    assert resumed, f"no reconnect resumed from the first page's last id: {urls}"
    assert not [u for u in urls if re.search(rf"since={missed[-1]['id'] + 1}\b", u)]
    stored = live.stored_messages(live_room)
    assert len(stored) == total and stored[0]["id"] == first
    shown = alice.messages.evaluate_all("els => els.map(e => Number(e.dataset.id))")
    assert shown == [m["id"] for m in stored]


def test_an_own_message_stored_unacknowledged_is_acknowledged_from_a_later_page(
    open_room, live_room, live
):
    """A message the reader typed during the outage was stored (here: straight into Django)
    without the page hearing of it, with hundreds of missed messages around it. After the
    catch-up it is shown once, at its id's place among the pages, no longer pending, and the
    outbox is empty."""
    alice = open_room(live_room)
    live.stop_chatserver()
    try:
        expect(alice.state).not_to_have_text("Live")
        alice.send("mine, stored without an answer")
        pending = alice.message("mine, stored without an answer")
        expect(pending).to_have_class(re.compile(r"\bpending\b"))
        nonce = pending.get_attribute("data-nonce")
        live.store_messages(live_room, 300, body="before mine")
        item = {
            "room": live_room,
            "nonce": nonce,
            "body": "mine, stored without an answer",
            "name": alice.user_name,
            "uid": "g:" + "1" * 16,
            "user_id": None,
            "guest": True,
        }
        stored = live.internal_post(
            live.django_url, "/internal/messages/batch/", {"messages": [item]}
        )
        assert stored.json()["results"][0]["ok"]
        live.store_messages(live_room, 399, body="after mine")
    finally:
        live.start_chatserver()

    expect(alice.messages).to_have_count(700, timeout=60_000)
    expect(alice.page.locator("#message-list li.pending")).to_have_count(0)
    expect(alice.message("mine, stored without an answer")).to_have_count(1)
    stored_ids = [m["id"] for m in live.stored_messages(live_room)]
    assert len(stored_ids) == 700
    shown = alice.messages.evaluate_all("els => els.map(e => Number(e.dataset.id))")
    assert shown == stored_ids
    mine = alice.message("mine, stored without an answer")
    assert int(mine.get_attribute("data-id")) == stored_ids[300]
    outbox = alice.page.evaluate(f"() => localStorage.getItem('dtc.outbox.{live_room}')")
    assert outbox is None
