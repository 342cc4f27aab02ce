"""The client under trouble: a chat server restart, WebSockets blocked, and unsent messages kept
across a page reload. Nothing typed is lost and nothing is shown or stored twice."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

pytestmark = pytest.mark.browser


def test_restart_of_the_chat_server_reconnects_and_delivers_once(open_room, live_room, live):
    """Both pages notice the outage, reconnect by themselves once the chat server is back, and a
    message typed during the outage is delivered exactly once to both and stored once."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    alice.send("before the restart")
    expect(bob.message("before the restart")).to_have_count(1)

    # A graceful stop: sockets close with 1001 ("going away") and polls are released.
    live.stop_chatserver()
    try:
        for page in (alice, bob):
            expect(page.state).not_to_have_text("Live")
        alice.send("typed during the outage")
        # Shown at once as unsent, and kept in localStorage until acknowledged.
        pending = alice.message("typed during the outage")
        expect(pending).to_have_class(re.compile(r"\bpending\b"))
        expect(pending.locator(".message-state")).to_contain_text("Sending")
    finally:
        live.start_chatserver()

    for page in (alice, bob):
        page.wait_live()
    for page in (alice, bob):
        expect(page.message("typed during the outage")).to_have_count(1)
        expect(page.message("before the restart")).to_have_count(1)
        expect(page.page.locator("#message-list li.pending")).to_have_count(0)
    outbox = alice.page.evaluate(f"() => localStorage.getItem('dtc.outbox.{live_room}')")
    assert outbox is None

    bodies = [m["body"] for m in live.stored_messages(live_room)]
    assert bodies == ["before the restart", "typed during the outage"]

    bob.send("after the restart")
    expect(alice.message("after the restart")).to_have_count(1)


def refuse_websockets(attempts: list[str]):
    """A `before_load` hook that makes every WebSocket of the context fail: Playwright's route
    closes the page's socket itself, so nothing ever reaches the chat server."""

    def refuse(ws: WebSocketRoute) -> None:
        attempts.append(ws.url)
        ws.close(code=1011, reason="blocked by test")

    def hook(context: BrowserContext, page: Page) -> None:
        context.route_web_socket(re.compile(r"^wss?://"), refuse)

    return hook


def test_blocked_websockets_fall_back_to_long_polling(open_room, live_room, live):
    """With WebSockets refused in one browser, that page switches to long polling and still
    chats both ways with a page on a socket; every message appears once on both sides."""
    attempts: list[str] = []
    poller = open_room(live_room, before_load=refuse_websockets(attempts), wait_live=False)
    expect(poller.state).to_have_text("Polling (fallback)")
    assert len(attempts) >= 2 and all("/ws/" in url for url in attempts)
    socket_user = open_room(live_room)

    poller.send("from the poller")
    socket_user.send("from the socket")
    for page in (poller, socket_user):
        expect(page.message("from the poller")).to_have_count(1)
        expect(page.message("from the socket")).to_have_count(1)
        expect(page.page.locator("#message-list li.pending")).to_have_count(0)
    # The polling reader counts as online for the others.
    expect(socket_user.page.locator("#presence li", has_text=poller.user_name)).to_have_count(1)
    expect(poller.state).to_have_text("Polling (fallback)")

    bodies = [m["body"] for m in live.stored_messages(live_room)]
    assert sorted(bodies) == ["from the poller", "from the socket"]


def test_reload_resends_an_unsent_message_once(open_room, live_room, live):
    """A message left unsent in localStorage (the tab was closed before it went out) is shown
    and sent after the next page load, with its original nonce, and stored exactly once even
    when that nonce had in fact already been stored."""
    reader = open_room(live_room)
    watcher = open_room(live_room)
    key = f"dtc.outbox.{live_room}"
    entries = [
        {
            "nonce": "unsent-0001",
            "body": "left in the outbox",
            "created": "2026-11-22T09:00:00.000Z",
            "failed": None,
        }
    ]
    reader.page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)", [key, json.dumps(entries)]
    )
    reader.page.reload()
    reader.wait_live()
    for page in (reader, watcher):
        expect(page.message("left in the outbox")).to_have_count(1)
    expect(reader.page.locator("#message-list li.pending")).to_have_count(0)
    assert reader.page.evaluate("(key) => localStorage.getItem(key)", key) is None

    # The same entry again (as if the acknowledgement never arrived): no second copy anywhere.
    reader.page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)", [key, json.dumps(entries)]
    )
    reader.page.reload()
    reader.wait_live()
    expect(reader.message("left in the outbox")).to_have_count(1)
    expect(reader.page.locator("#message-list li.pending")).to_have_count(0)
    expect(watcher.message("left in the outbox")).to_have_count(1)

    stored = live.stored_messages(live_room)
    assert [(m["body"], m["nonce"]) for m in stored] == [("left in the outbox", "unsent-0001")]
