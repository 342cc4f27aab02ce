"""A fast typist against a strict rate limit: typed order = stored order = displayed order.

Its own system with a low rate limit (`CHAT_RATE`, `CHAT_BURST`), so most messages are refused
at first (`rate_limited`) and must wait behind the one before them. Checked on a socket and on
long polling, in the typist's page, in another reader's page, in Django, and after a reload.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import ChatPage
from tests.browser.test_resilience import refuse_websockets
from tests.support.live import LiveSystem, wait_until

pytestmark = pytest.mark.browser

TYPED = [f"message {i:02d}" for i in range(16)]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """Django and a chat server that accepts 2 messages at once, then 2 per second."""
    extra = {"CHAT_RATE": "2", "CHAT_BURST": "2"}
    with LiveSystem(Path(tmp_path_factory.mktemp("order")), extra_env=extra) as live:
        yield live


@pytest.fixture
def room_page(browser: Browser, strict: LiveSystem) -> Iterator:
    """Opens pages (own browser context each) on one fresh guest room of the strict system."""
    slug = f"order-{uuid.uuid4().hex[:10]}"
    strict.create_room(slug, guests=True)
    opened: list[ChatPage] = []

    def _open(before_load=None, state: str = "Live") -> ChatPage:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        chat = ChatPage(context=context, page=page)
        page.on("pageerror", lambda error: chat.page_errors.append(str(error)))
        opened.append(chat)
        if before_load:
            before_load(context, page)
        page.goto(f"{strict.django_url}/chats/{slug}/")
        expect(chat.state).to_have_text(state)
        return chat

    _open.slug = slug  # type: ignore[attr-defined]
    yield _open
    errors = [e for chat in opened for e in chat.page_errors]
    for chat in opened:
        chat.context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def type_fast(chat: ChatPage, bodies: list[str]) -> None:
    """Enter each message right after the previous one, without waiting for anything."""
    box = chat.page.locator("#composer-input")
    for body in bodies:
        box.fill(body)
        box.press("Enter")


def shown(chat: ChatPage) -> list[str]:
    """The bodies of the page's message list, top to bottom."""
    return chat.page.locator("#message-list > li.message .body").all_inner_texts()


def assert_same_order_everywhere(strict: LiveSystem, slug: str, pages: list[ChatPage]) -> None:
    """Waits (with a deadline) until every typed message is stored, then compares the orders."""
    wait_until(lambda: len(strict.stored_messages(slug)) >= len(TYPED), timeout=120)
    stored = strict.stored_messages(slug)
    assert [m["body"] for m in stored] == TYPED
    for chat in pages:
        expect(chat.page.locator("#message-list li.pending")).to_have_count(0)
        expect(chat.messages).to_have_count(len(TYPED))
        assert shown(chat) == TYPED
        ids = [int(i) for i in chat.messages.evaluate_all("els => els.map(e => e.dataset.id)")]
        assert ids == [m["id"] for m in stored]


def test_fast_typist_on_a_socket_keeps_typed_order(room_page, strict):
    """Sixteen messages typed at once on a socket, most refused by the rate limit at first:
    Django stores them in typed order, both pages show them in typed order, and so does the
    typist's page after a reload."""
    typist = room_page()
    reader = room_page()
    type_fast(typist, TYPED)
    assert_same_order_everywhere(strict, room_page.slug, [typist, reader])
    typist.page.reload()
    expect(typist.state).to_have_text("Live")
    expect(typist.messages).to_have_count(len(TYPED))
    assert shown(typist) == TYPED


def test_fast_typist_on_long_polling_keeps_typed_order(room_page, strict):
    """The same on the long-poll fallback (WebSockets refused in the typist's browser): one
    POST at a time, each refused one retried before any later one."""
    typist = room_page(before_load=refuse_websockets([]), state="Live (polling)")
    reader = room_page()
    type_fast(typist, TYPED)
    assert_same_order_everywhere(strict, room_page.slug, [typist, reader])
    # The reloaded page lists the stored messages itself (its fallback poll is then held).
    typist.page.reload()
    expect(typist.messages).to_have_count(len(TYPED))
    expect(typist.page.locator("#message-list li.pending")).to_have_count(0)
    assert shown(typist) == TYPED
