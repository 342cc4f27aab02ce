"""The room page on phones and small windows (390×844, 320×600): the newest message is fully
visible after load and stays pinned to the bottom when the window is resized."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

# True when the last message lies entirely inside the visible part of the scrolling list.
NEWEST_FULLY_VISIBLE = """() => {
  const list = document.getElementById("message-list");
  const items = list.querySelectorAll(":scope > li.message");
  const last = items[items.length - 1].getBoundingClientRect();
  const box = list.getBoundingClientRect();
  const composer = document.getElementById("composer").getBoundingClientRect();
  return last.top >= box.top - 1 && last.bottom <= box.bottom + 1
    && last.bottom <= composer.top + 1 && last.bottom <= window.innerHeight;
}"""


@pytest.mark.parametrize(
    "viewport", [{"width": 390, "height": 844}, {"width": 320, "height": 600}], ids=["390", "320"]
)
def test_newest_message_is_fully_visible_after_load_and_after_resize(
    open_room, live_room, live, viewport
):
    live.store_messages(live_room, 40, body="a message long enough to wrap on a narrow phone")
    reader = open_room(live_room, viewport=viewport)
    reader.send("the newest one,\nwith two lines")
    expect(reader.page.locator("#message-list li.pending")).to_have_count(0)
    page = reader.page
    page.wait_for_function(NEWEST_FULLY_VISIBLE, timeout=10_000)
    # The window gets shorter (a browser's toolbar or a small keyboard), then wider (turned),
    # then back: the newest message stays in view each time.
    for size in (
        {"width": viewport["width"], "height": viewport["height"] * 9 // 10},
        {"width": viewport["width"] * 2, "height": viewport["height"]},
        viewport,
    ):
        page.set_viewport_size(size)
        page.wait_for_function(NEWEST_FULLY_VISIBLE, timeout=10_000)
