"""The composer and the body limit (issue 13, "The room page"): the limit counts what the
server counts (characters = code points), a paste is never cut, a counter shows near the limit,
and a body over it is refused before sending with a visible reason, the text kept.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

EMOJI = "\U0001f600"  # two UTF-16 units, one character


def paste(page, text: str) -> None:
    """Put `text` into the composer as a paste does (one insertText: maxlength would cut it)."""
    box = page.locator("#composer-input")
    box.focus()
    page.keyboard.insert_text(text)


def test_a_paste_of_emoji_up_to_the_limit_is_kept_whole_and_sent(open_room, live_room, live):
    """As many emoji as the limit allows (twice as many UTF-16 units) go in whole, the counter
    says none are left, and the message is stored whole."""
    reader = open_room(live_room)
    page = reader.page
    limit = int(page.locator("#message-list").get_attribute("data-max-body") or "0")
    body = EMOJI * limit
    paste(page, body)
    box = page.locator("#composer-input")
    assert box.evaluate("el => [...el.value].length") == limit
    counter = page.locator("#composer-limit")
    expect(counter).to_be_visible()
    expect(counter).to_have_text("0 characters left")
    box.press("Enter")
    expect(page.locator("#message-list li.pending")).to_have_count(0)
    expect(reader.messages.locator(".body", has_text=EMOJI * 10)).to_have_count(1)
    assert live.stored_messages(live_room)[-1]["body"] == body
    expect(counter).to_be_hidden()


def test_a_body_over_the_limit_is_refused_before_sending_and_kept(open_room, live_room, live):
    """One character over: the counter says so, Enter and Send refuse with an alert saying
    why, nothing is sent, the text stays; shortened, it goes."""
    reader = open_room(live_room)
    page = reader.page
    limit = int(page.locator("#message-list").get_attribute("data-max-body") or "0")
    counter = page.locator("#composer-limit")
    expect(counter).to_be_hidden()
    paste(page, "y" * (limit + 1))
    box = page.locator("#composer-input")
    expect(counter).to_have_text(f"1 character over the limit of {limit:,}")
    expect(box).to_have_attribute("aria-invalid", "true")
    box.press("Enter")
    alert = counter.get_by_role("alert")
    expect(alert).to_have_text(
        f"Not sent: the message is {limit + 1:,} characters long, {limit:,} at most. "
        "Shorten it to send it."
    )
    page.get_by_role("button", name="Send").click()
    expect(alert).to_be_visible()
    assert box.input_value() == "y" * (limit + 1)
    expect(reader.messages).to_have_count(0)
    assert live.stored_messages(live_room) == []

    box.press("End")
    box.press("Backspace")
    expect(counter).to_have_text("0 characters left")
    expect(box).not_to_have_attribute("aria-invalid", "true")
    box.press("Enter")
    expect(reader.messages).to_have_count(1)
    expect(page.locator("#message-list li.pending")).to_have_count(0)
    assert len(live.stored_messages(live_room)[-1]["body"]) == limit
