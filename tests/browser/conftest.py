"""Browser fixtures: Debian's Chromium driven by Playwright (sync API), one context per visitor.

Chromium is never downloaded by Playwright: the tests use `/usr/bin/chromium` (installed by
`make browser-deps`) and fail loudly when it is missing, also on CI.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS

# Reconnects are jittered up to 15 s; a restart test may need a couple of rounds.
expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    """The Playwright driver for the whole session."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Headless Debian Chromium; missing Chromium is an error, never a skip."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `make browser-deps` "
            "(scripts/install_chromium.sh). Browser tests are not optional."
        )
    browser = playwright_driver.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


@dataclass
class ChatPage:
    """One visitor (own browser context, so own session cookie) on a room page."""

    context: BrowserContext
    page: Page
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    @property
    def state(self) -> Locator:
        return self.page.locator("#connection-state")

    @property
    def messages(self) -> Locator:
        return self.page.locator("#message-list > li.message")

    @property
    def user_name(self) -> str:
        return self.page.locator("#chat-room").get_attribute("data-user-name") or ""

    def message(self, text: str) -> Locator:
        """The message items whose body is exactly `text`."""
        return self.messages.filter(
            has=self.page.locator(".body", has_text=re.compile(rf"^{re.escape(text)}$"))
        )

    def send(self, text: str) -> None:
        """Type `text` into the composer and press Enter, as a reader would."""
        box = self.page.locator("#composer-input")
        box.fill(text)
        box.press("Enter")

    def wait_live(self) -> None:
        expect(self.state).to_have_text("Live")


OpenRoom = Callable[..., ChatPage]


@pytest.fixture
def open_room(browser: Browser, live) -> Iterator[OpenRoom]:
    """Opens a room page in a fresh browser context; every context is closed afterwards.

    Any uncaught JavaScript error on a page fails the test.
    """
    opened: list[ChatPage] = []

    def _open(
        slug: str,
        *,
        viewport: dict[str, int] | None = None,
        before_load: Callable[[BrowserContext, Page], None] | None = None,
        wait_live: bool = True,
        **context_options: object,
    ) -> ChatPage:
        """`context_options` go to `browser.new_context` (`device_scale_factor`, `locale`,
        `timezone_id`, `color_scheme`...)."""
        context = browser.new_context(
            viewport=viewport or {"width": 1280, "height": 800}, **context_options
        )
        page = context.new_page()
        chat = ChatPage(context=context, page=page)
        page.on("dialog", lambda dialog: (chat.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: chat.page_errors.append(str(error)))
        opened.append(chat)
        if before_load:
            before_load(context, page)
        page.goto(f"{live.django_url}/chats/{slug}/")
        if wait_live:
            chat.wait_live()
        return chat

    yield _open
    errors = [e for chat in opened for e in chat.page_errors]
    for chat in opened:
        chat.context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
