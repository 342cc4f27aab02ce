"""The long-polling fallback, fast: a reader whose WebSockets are refused, or open and then
never answer, sends and receives within 5 s of opening the room page.

The times are measured inside the page, from its navigation start (`performance.now()`), by a
MutationObserver installed before the page's own scripts: what a reader would see, not how fast
this machine drives Playwright. The budget holds because the page gives a silent socket up after
`CHAT_SOCKET_GIVE_UP_MS` (handed to the page) and the first poll answers at once (`wait=0`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.browser.conftest import ChatPage
from tests.browser.test_resilience import refuse_websockets
from tests.support.live import LiveSystem

pytestmark = pytest.mark.browser

BUDGET_MS = 5000

# Records, relative to navigation start, when a message body first shows in the list and when
# the page's own message stopped being pending (stored and echoed back).
TIMING_SCRIPT = """
window.__seen = {};
window.__confirmed = {};
new MutationObserver(() => {
  for (const li of document.querySelectorAll("#message-list > li.message")) {
    const body = li.querySelector(".body")?.textContent;
    if (!body) continue;
    if (!(body in window.__seen)) window.__seen[body] = performance.now();
    if (!li.classList.contains("pending") && li.dataset.id && !(body in window.__confirmed)) {
      window.__confirmed[body] = performance.now();
    }
  }
}).observe(document, { subtree: true, childList: true, attributes: true });
"""


def silent_websockets(context: BrowserContext, page: Page) -> None:
    """Every WebSocket of the context opens and then never says anything: Playwright's route
    accepts it (the page sees `open`) and, without `connect_to_server`, nothing reaches the
    chat server and nothing comes back, like a proxy that accepts sockets and forwards nothing."""

    def route(ws: WebSocketRoute) -> None:
        opened.append(ws.url)

    opened: list[str] = []
    context.route_web_socket(re.compile(r"^wss?://"), route)


def timed(hook):
    """`hook` plus the timing observer, installed before the page's scripts run."""

    def before_load(context: BrowserContext, page: Page) -> None:
        hook(context, page)
        page.add_init_script(TIMING_SCRIPT)

    return before_load


def page_time(chat: ChatPage, table: str, body: str) -> float:
    """Milliseconds from navigation start until `body` was seen (or confirmed) in the page."""
    return chat.page.evaluate("([t, b]) => window[t][b]", [table, body])


@pytest.mark.parametrize("blocking", ["refused", "silent"])
def test_blocked_websockets_send_and_receive_within_5_s(open_room, live, blocking):
    """WebSockets refused (closed at once) or silent (open, never a hello): the reader's own
    message is stored and confirmed, and a message from a reader on a socket arrives, both
    within 5 s of opening the page; the badge says "Live (polling)"."""
    live_room = f"fallback-{blocking}-{uuid.uuid4().hex[:8]}"
    live.create_room(live_room, guests=True)
    other = open_room(live_room)
    # A room with history: the page shows it, so its first poll asks for what follows it.
    other.send("said before")
    expect(other.message("said before")).to_have_count(1)
    expect(other.page.locator("#message-list li.pending")).to_have_count(0)
    hook = refuse_websockets([]) if blocking == "refused" else silent_websockets
    poller = open_room(live_room, before_load=timed(hook), wait_live=False)
    # A reader types at once; the page sends it as soon as a transport takes messages. Nothing
    # else happens in the room meanwhile (another message would answer a held poll early).
    poller.send("from the blocked reader")
    expect(other.message("from the blocked reader")).to_have_count(1, timeout=60_000)
    expect(poller.page.locator("#message-list li.pending")).to_have_count(0)
    other.send("from the socket reader")
    expect(poller.message("from the socket reader")).to_have_count(1)
    expect(poller.state).to_have_text("Live (polling)")
    received = page_time(poller, "__seen", "from the socket reader")
    sent = page_time(poller, "__confirmed", "from the blocked reader")
    assert received < BUDGET_MS, f"received after {received:.0f} ms"
    assert sent < BUDGET_MS, f"sent (stored and confirmed) after {sent:.0f} ms"


def test_guest_renaming_while_polling_shows_under_the_new_name_at_once(open_room, live_room, live):
    """A polling guest renames itself (the page reloads with the new name and polls again):
    the other readers' presence shows the new name at once (not after the grace period), and
    the old name is gone, and the next message carries the new name."""
    other = open_room(live_room)
    poller = open_room(live_room, before_load=refuse_websockets([]), wait_live=False)
    expect(poller.state).to_have_text("Live (polling)")
    old = poller.user_name
    presence = other.page.locator("#presence li")
    expect(presence.filter(has_text=old)).to_have_count(1)
    new = f"renamed-{uuid.uuid4().hex[:6]}"
    poller.page.locator("#guest-name-input").fill(new)
    poller.page.locator("form.guest-name button[type=submit]").click()
    expect(poller.page.locator("#chat-room")).to_have_attribute("data-user-name", new)
    expect(poller.state).to_have_text("Live (polling)")
    # Well under the 35 s grace period that would let the old name linger.
    expect(presence.filter(has_text=new)).to_have_count(1, timeout=5000)
    expect(presence.filter(has_text=re.compile(rf"^{re.escape(old)}"))).to_have_count(0)
    poller.send("under my new name")
    message = other.message("under my new name")
    expect(message.locator(".author")).to_have_text(new)


GRACE_S = 3


@pytest.fixture(scope="module")
def short_grace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """Django and a chat server whose pollers stay online 3 s after their last poll."""
    extra = {"CHAT_POLL_GRACE": str(GRACE_S)}
    with LiveSystem(Path(tmp_path_factory.mktemp("grace")), extra_env=extra) as system:
        yield system


def test_closed_polling_tab_leaves_presence_within_the_grace_period(
    browser: Browser, short_grace: LiveSystem
):
    """A polling reader closes its tab: the others see it leave after the grace period
    (`CHAT_POLL_GRACE`, plus the once-a-second sweep), not sooner than the grace and not never."""
    slug = f"grace-{uuid.uuid4().hex[:10]}"
    short_grace.create_room(slug, guests=True)
    pages: list[ChatPage] = []

    def open_page(before_load=None) -> ChatPage:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        chat = ChatPage(context=context, page=context.new_page())
        chat.page.on("pageerror", lambda error: chat.page_errors.append(str(error)))
        pages.append(chat)
        if before_load:
            before_load(context, chat.page)
        chat.page.goto(f"{short_grace.django_url}/chats/{slug}/")
        return chat

    try:
        other = open_page()
        expect(other.state).to_have_text("Live")
        poller = open_page(refuse_websockets([]))
        expect(poller.state).to_have_text("Live (polling)")
        name = poller.user_name
        mine = other.page.locator("#presence li", has_text=name)
        expect(mine).to_have_count(1)
        poller.context.close()
        closed_at = other.page.evaluate("() => performance.now()")
        expect(mine).to_have_count(0, timeout=(GRACE_S + 10) * 1000)
        gone_after = other.page.evaluate("() => performance.now()") - closed_at
        # Closing a tab must not drop the reader before the grace period (a reload keeps it).
        assert gone_after >= (GRACE_S - 0.5) * 1000, f"left after {gone_after:.0f} ms"
        assert [e for chat in pages for e in chat.page_errors] == []
    finally:
        for chat in pages:
            chat.context.close()
