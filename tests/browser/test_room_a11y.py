"""The room page for keyboards and screen readers, and during outages (issue 13, "The room page").

The message list is keyboard-focusable inside its `role="log"`; older history put at the top is not
announced; the connection state is announced once per change, never per countdown tick; a skip
link leads to the composer; full timestamps are reachable without a mouse; a favicon. Outages
explain themselves ("Offline — 1 message will be sent when you're back", "Reconnect now"); a
message that can never succeed offers Discard, not Retry; an archived room clears presence and
typing and keeps the draft.
"""

from __future__ import annotations

import re

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

pytestmark = pytest.mark.browser


def test_list_is_a_focusable_log_with_a_skip_link_favicon_and_keyboard_timestamps(
    open_room, live_room, live
):
    """Tab reaches the skip link first and it moves focus to the composer; the list is a
    focusable log; Tab from the list reaches a message's time, which shows its full date."""
    reader = open_room(live_room)
    page = reader.page
    # The first Tab on the freshly loaded page.
    page.keyboard.press("Tab")
    skip = page.locator("a.skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("#composer-input")).to_be_focused()

    reader.send("a message with a time")
    expect(reader.page.locator("#message-list li.pending")).to_have_count(0)
    expect(page.locator("#message-log")).to_have_attribute("role", "log")
    log = page.locator("#message-log > #message-list")
    expect(log).to_have_attribute("tabindex", "0")

    log.focus()
    page.keyboard.press("Tab")
    time = log.locator("li.message time").first
    expect(time).to_be_focused()
    title = time.get_attribute("title") or ""
    assert re.search(r"\d{4}", title), f"no full date in {title!r}"
    shown = time.evaluate("el => getComputedStyle(el, '::after').content")
    assert title in shown

    href = page.locator('link[rel="icon"]').get_attribute("href")
    assert href and requests.get(f"{live.django_url}{href}", timeout=10).status_code == 200


def test_connection_state_is_announced_once_per_change_not_per_countdown_tick(open_room, live_room):
    """The real StatusView in the page: a 3.5 s reconnect countdown changes the badge every
    second, but the `role="status"` region only once; a new state is announced again."""
    reader = open_room(live_room)
    changes = reader.page.evaluate(
        """async () => {
          const { StatusView } = await import("/static/chat/client/indicators.js");
          // Built element by element: the room page requires Trusted Types (no innerHTML).
          const root = document.createElement("div");
          const make = (tag, props) => Object.assign(document.createElement(tag), props);
          const status = make("span", { id: "connection-announce" });
          status.setAttribute("role", "status");
          const reconnect = make("button", { id: "reconnect-now", hidden: true });
          root.append(make("span", { id: "b" }), status, reconnect);
          document.body.append(root);
          const badge = root.querySelector("#b");
          const announce = root.querySelector("#connection-announce");
          const seen = { badge: [], announce: [] };
          new MutationObserver(() => seen.badge.push(badge.textContent))
            .observe(badge, { childList: true, characterData: true, subtree: true });
          new MutationObserver(() => seen.announce.push(announce.textContent))
            .observe(announce, { childList: true, characterData: true, subtree: true });
          const view = new StatusView(badge, root);
          view.show("reconnecting", { at: Date.now() + 3500 });
          await new Promise((resolve) => setTimeout(resolve, 2600));
          const button = root.querySelector("#reconnect-now").hidden;
          view.show("reconnecting", { at: Date.now() + 2000 });
          view.show("live");
          await new Promise((resolve) => setTimeout(resolve, 100));
          return { ...seen, buttonHidden: button };
        }"""
    )
    assert len(set(changes["badge"])) >= 3, changes
    assert changes["announce"] == ["Reconnecting…", "Live"], changes
    assert changes["buttonHidden"] is False


def test_older_history_goes_in_quietly(open_room, live_room, live):
    """Loading older messages at the top: while they go in, the log is aria-busy with its live
    announcements off; afterwards it is a polite live region again."""
    live.store_messages(live_room, 70, body="old")
    reader = open_room(live_room)
    page = reader.page
    page.evaluate(
        """() => {
          const list = document.getElementById("message-list");
          const log = document.getElementById("message-log");
          window.__inserted = [];
          new MutationObserver((records) => {
            if (records.some((r) => r.addedNodes.length)) {
              window.__inserted.push([log.getAttribute("aria-live"),
                                      log.getAttribute("aria-busy")]);
            }
          }).observe(list, { childList: true });
        }"""
    )
    page.locator("button.load-older").click()
    expect(reader.message("old 1")).to_have_count(1)
    inserted = page.evaluate("() => window.__inserted")
    assert inserted and all(state == ["off", "true"] for state in inserted), inserted
    log = page.locator("#message-log")
    expect(log).to_have_attribute("aria-live", "polite")
    expect(log).not_to_have_attribute("aria-busy", "true")


def blockable(routes: list[WebSocketRoute], blocked: dict[str, bool]):
    """WebSockets pass while `blocked["on"]` is false (their routes are kept, so the test can
    close them) and are refused while it is true; long polls fail while it is true."""

    def route(ws: WebSocketRoute) -> None:
        if blocked["on"]:
            ws.close(code=1011, reason="blocked by test")
        else:
            routes.append(ws)
            ws.connect_to_server()

    def hook(context: BrowserContext, page: Page) -> None:
        context.route_web_socket(re.compile(r"^wss?://"), route)
        context.route(
            re.compile(r".*/poll/.*"),
            lambda r: r.abort() if blocked["on"] else r.continue_(),
        )

    return hook


def test_outage_says_what_waits_and_reconnect_now_skips_the_wait(open_room, live_room):
    """The chat server is unreachable (sockets refused, polls failing): the badge counts down
    with a "Reconnect now" button, a typed message waits with "Not connected — 1 message will be
    sent when the connection is back"; when the server is reachable again, the button connects
    at once (no waiting out a backoff of several seconds) and the message goes."""
    routes: list[WebSocketRoute] = []
    blocked = {"on": False}
    reader = open_room(live_room, before_load=blockable(routes, blocked))
    blocked["on"] = True
    for ws in routes:
        ws.close(code=1011, reason="cut by test")
    page = reader.page
    button = page.locator("#reconnect-now")
    expect(button).to_be_visible()
    reader.send("typed during the outage")
    status = page.locator("#outbox-status")
    expect(status).to_have_text(
        "Not connected — 1 message will be sent when the connection is back"
    )
    # Wait for a backoff long enough that only the button can explain a fast reconnect.
    expect(reader.state).to_have_text(re.compile(r"Reconnecting in ([4-9]|1\d)s…"), timeout=90_000)
    blocked["on"] = False
    button.click()
    expect(reader.state).to_have_text("Live", timeout=2500)
    expect(reader.message("typed during the outage")).to_have_count(1)
    expect(page.locator("#message-list li.pending")).to_have_count(0)
    expect(status).to_be_hidden()
    expect(button).to_be_hidden()


def test_browser_offline_says_offline_and_how_many_wait(open_room, live_room):
    """The browser goes offline: "Offline — 2 messages will be sent when you're back", not an
    endless "Sending…"; back online, both go and the line disappears."""
    routes: list[WebSocketRoute] = []
    blocked = {"on": False}
    reader = open_room(live_room, before_load=blockable(routes, blocked))
    reader.context.set_offline(True)
    blocked["on"] = True
    for ws in routes:
        ws.close(code=1006, reason="offline")
    expect(reader.state).to_have_text("Offline")
    reader.send("first while offline")
    reader.send("second while offline")
    status = reader.page.locator("#outbox-status")
    expect(status).to_have_text("Offline — 2 messages will be sent when you're back")
    blocked["on"] = False
    reader.context.set_offline(False)
    reader.wait_live()
    for body in ("first while offline", "second while offline"):
        expect(reader.message(body)).to_have_count(1)
    expect(reader.page.locator("#message-list li.pending")).to_have_count(0)
    expect(status).to_be_hidden()


def test_message_that_can_never_succeed_offers_discard_not_retry(open_room, live_room):
    """A body over the limit is refused `body_too_long` by the server: the message offers
    Discard only, and Discard removes it. (The composer refuses such a body before sending,
    test_composer.py; this one was left in the outbox by an earlier page, e.g. before the limit
    was lowered, and is sent when the page starts.)"""
    reader = open_room(live_room)
    page = reader.page
    limit = int(page.locator("#message-list").get_attribute("data-max-body") or "0")
    page.evaluate(
        """([room, n]) => localStorage.setItem("dtc.outbox." + room, JSON.stringify([{
          nonce: "too-long-1", body: "x".repeat(n), created: new Date().toISOString(),
          failed: null }]))""",
        [live_room, limit + 1],
    )
    page.reload()
    failed = page.locator("#message-list li.failed")
    expect(failed).to_have_count(1)
    expect(failed.locator("button.discard")).to_have_count(1)
    expect(failed.locator("button.retry")).to_have_count(0)
    failed.locator("button.discard").click()
    expect(failed).to_have_count(0)


def test_archived_room_clears_presence_and_typing_and_keeps_the_draft(open_room, live_room, live):
    """The room is archived while two readers are in it and one is typing: presence and the
    typing line clear, the composer is read-only and marked disabled, its button disabled, and
    the draft stays in the box."""
    reader = open_room(live_room)
    other = open_room(live_room)
    box = reader.page.locator("#composer-input")
    expect(reader.page.locator("#presence li")).to_have_count(2)
    other.page.locator("#composer-input").press_sequentially("typing along", delay=30)
    expect(reader.page.locator("#typing-indicator")).not_to_be_empty()
    box.fill("my unsent draft")
    live.archive_room(live_room)
    expect(reader.state).to_have_text("Room archived")
    expect(reader.page.locator("#presence li")).to_have_count(0)
    expect(reader.page.locator("#typing-indicator")).to_be_empty()
    expect(box).not_to_be_editable()
    expect(box).to_have_attribute("aria-disabled", "true")
    expect(box).to_have_value("my unsent draft")
    expect(reader.page.locator("#composer button[type=submit]")).to_be_disabled()
    box.press("Enter")
    expect(reader.page.locator("#message-list li.pending")).to_have_count(0)
