"""Rooms a visitor cannot chat in: each says so clearly instead of spinning forever."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_unknown_room_shows_a_not_found_page(open_room):
    """A mistyped room address answers 404 with a page that says so and links to the rooms."""
    visitor = open_room("no-such-room-anywhere", wait_live=False)
    expect(visitor.page.locator("h1")).to_have_text("Not found")
    expect(visitor.page.get_by_role("link", name=re.compile("rooms", re.I))).to_be_visible()
    expect(visitor.page.locator("#chat-room")).to_have_count(0)


def test_archived_room_shows_an_archived_page(open_room, live_room, live):
    """An archived room's address shows "This room is archived" and no composer."""
    live.archive_room(live_room)
    visitor = open_room(live_room, wait_live=False)
    expect(visitor.page.locator("h1")).to_have_text("This room is archived")
    expect(visitor.page.locator("#composer")).to_have_count(0)


def test_room_archived_while_open_stops_the_client(open_room, live_room, live):
    """Archiving a room while readers are in it closes their sockets with 4004: the page shows
    "Room archived", disables the composer and does not try to reconnect."""
    reader = open_room(live_room)
    live.archive_room(live_room)
    expect(reader.state).to_have_text("Room archived")
    expect(reader.page.locator("#composer-input")).not_to_be_editable()
    # It stays there: even a "back online" event (which wakes a waiting reconnect) does nothing.
    reader.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    expect(reader.state).to_have_attribute("data-state", "archived")
    expect(reader.state).to_have_text("Room archived")


def test_sign_in_room_asks_a_guest_to_sign_in(open_room, live):
    """A members-only room visited as a guest shows a sign-in page with sign-in and sign-up
    links, not an empty chat."""
    live.create_room("members-only-browser", guests=False)
    visitor = open_room("members-only-browser", wait_live=False)
    expect(visitor.page.locator("h1")).to_contain_text("Sign in to join")
    expect(visitor.page.get_by_role("link", name="Sign in").last).to_be_visible()
    expect(visitor.page.locator("#composer")).to_have_count(0)
