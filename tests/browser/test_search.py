"""Search in real Chromium, on SQLite and on PostgreSQL: a word from a message's body, typed in
the room list's search box, finds the message; its result opens the room around it, scrolled to
and marked, even when the room holds far more than one page of newer messages.

The PostgreSQL run starts its own Django and chat server on a fresh database of the local server
(``TEST_POSTGRES_URL``, exported by the Makefile; the database is dropped afterwards).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from playwright.sync_api import Browser, expect

from tests.support.live import LiveSystem

DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/chat"


@pytest.fixture(scope="module")
def postgres_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSystem]:
    """A real Django + chat server on a throw-away PostgreSQL database."""
    server = urlsplit(os.environ.get("TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    name = f"{server.path.strip('/') or 'chat'}_search_live_{secrets.token_hex(4)}"
    admin_url = urlunsplit(server._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        database_url = urlunsplit(server._replace(path=f"/{name}"))
        system = LiveSystem(
            tmp_path_factory.mktemp("live-pg"), extra_env={"DATABASE_URL": database_url}
        )
        with system:
            yield system
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def system(request: pytest.FixtureRequest) -> LiveSystem:
    """The session's SQLite system, or the PostgreSQL one."""
    if request.param == "sqlite":
        return request.getfixturevalue("live")
    return request.getfixturevalue("postgres_live")


def test_search_finds_a_message_and_opens_it_in_context(browser: Browser, system: LiveSystem):
    """Type a body word in the room list's search box: the one matching message is listed with
    the word marked; its link opens the room page around it (not the newest page), the message is
    marked, focused and in view once the client is live, with older history above it."""
    slug = f"search-{secrets.token_hex(3)}"
    system.create_room(slug, guests=True)
    word = f"zebra{secrets.token_hex(3)}"
    system.store_messages(slug, 40, body="before")
    (target,) = system.store_messages(slug, 1, body=f"look: a {word} <b>crossed</b>")
    system.store_messages(slug, 150, body="after")

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{system.django_url}/chats/")
        box = page.get_by_role("searchbox", name="Search messages")
        box.fill(word)
        box.press("Enter")
        results = page.locator(".search-result")
        expect(results).to_have_count(1)
        expect(results.locator("mark")).to_have_text(word)
        expect(results.locator(".search-snippet")).to_have_text(f"look: a {word} <b>crossed</b> 0")
        expect(results.locator("b")).to_have_count(0)  # the body's tags are text

        results.locator(".search-snippet a").click()
        expect(page).to_have_url(re.compile(rf"/chats/{slug}/\?around={target['id']}$"))
        expect(page.locator("#connection-state")).to_have_text("Live")
        shown = page.locator(f'#message-list > li.message[data-id="{target["id"]}"]')
        expect(shown).to_have_class(re.compile(r"\bsearch-target\b"))
        expect(shown).to_be_focused()
        # The page holds older history above the target (the context), and the newest messages
        # arrive by catch-up below it without scrolling the target away.
        expect(
            page.locator("#message-list > li.message .body", has_text="before 39")
        ).to_have_count(1)
        expect(
            page.locator("#message-list > li.message .body", has_text="after 149")
        ).to_have_count(1)
        expect(shown).to_be_in_viewport()
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
