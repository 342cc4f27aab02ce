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


def refuse_websockets(attempts: list[str], blocked: dict[str, bool] | None = None):
    """A `before_load` hook that makes every WebSocket of the context fail while
    `blocked["on"]` is true: Playwright's route closes the page's socket itself, so nothing
    reaches the chat server. Once unblocked, sockets go through to the real server."""
    blocked = blocked if blocked is not None else {"on": True}

    def route(ws: WebSocketRoute) -> None:
        attempts.append(ws.url)
        if blocked["on"]:
            ws.close(code=1011, reason="blocked by test")
        else:
            ws.connect_to_server()

    def hook(context: BrowserContext, page: Page) -> None:
        context.route_web_socket(re.compile(r"^wss?://"), route)

    return hook


def test_blocked_websockets_fall_back_to_long_polling(open_room, live_room, live):
    """With WebSockets refused in one browser, that page switches to long polling and still
    chats both ways with a page on a socket; every message appears once on both sides."""
    attempts: list[str] = []
    poller = open_room(live_room, before_load=refuse_websockets(attempts), wait_live=False)
    expect(poller.state).to_have_text("Live (polling)")
    assert len(attempts) >= 1 and all("/ws/" in url for url in attempts)
    socket_user = open_room(live_room)

    poller.send("from the poller")
    socket_user.send("from the socket")
    for page in (poller, socket_user):
        expect(page.message("from the poller")).to_have_count(1)
        expect(page.message("from the socket")).to_have_count(1)
        expect(page.page.locator("#message-list li.pending")).to_have_count(0)
    # The polling reader counts as online for the others.
    expect(socket_user.page.locator("#presence li", has_text=poller.user_name)).to_have_count(1)
    expect(poller.state).to_have_text("Live (polling)")

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


def test_polling_client_returns_to_the_socket_without_losing_messages(open_room, live_room, live):
    """A page that fell back to long polling goes back to a socket once sockets work again
    (tried in the background; the browser's "online" event makes it try at once) and misses
    nothing said around the switch, showing each message once."""
    attempts: list[str] = []
    blocked = {"on": True}
    poller = open_room(live_room, before_load=refuse_websockets(attempts, blocked), wait_live=False)
    expect(poller.state).to_have_text("Live (polling)")
    other = open_room(live_room)
    other.send("while polling")
    expect(poller.message("while polling")).to_have_count(1)

    blocked["on"] = False
    poller.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    poller.wait_live()
    other.send("after the switch")
    poller.send("back on a socket")
    for page in (poller, other):
        for text in ("while polling", "after the switch", "back on a socket"):
            expect(page.message(text)).to_have_count(1)
    # Typing notices only travel over sockets: seeing one proves the socket is really in use.
    # Typing notices are sent at most every 2 s, so type for well over that (several notices).
    poller.page.locator("#composer-input").press_sequentially("still typing, still", delay=300)
    expect(other.page.locator("#typing-indicator")).to_have_text(f"{poller.user_name} is typing…")
    ids = [int(i) for i in poller.messages.evaluate_all("els => els.map(e => e.dataset.id)")]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 3
