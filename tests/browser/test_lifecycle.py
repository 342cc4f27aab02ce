"""Editing and deleting your own messages in real browsers (two or three contexts): the
actions on hover and focus, Enter saves, Escape cancels, Up-arrow in the empty composer edits
the newest own message, Delete asks once more, a refusal is shown, and every reader (a socket
one and a long-polling one) sees the change live and after a reload."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.test_catchup import refuse_websockets

pytestmark = pytest.mark.browser


def test_author_edits_and_socket_and_polling_readers_see_it(open_room, live_room, live):
    alice = open_room(live_room)
    poller = open_room(live_room, wait_live=False, before_load=refuse_websockets)
    expect(poller.state).to_have_text("Live (polling)")
    alice.send("helo world")
    expect(poller.message("helo world")).to_have_count(1)
    mine = alice.message("helo world")
    expect(mine.get_by_role("button", name="Edit your message")).to_have_count(1)
    # Other readers get no edit action on someone else's message.
    expect(
        poller.message("helo world").get_by_role("button", name="Edit your message")
    ).to_have_count(0)
    mine.hover()
    mine.get_by_role("button", name="Edit your message").click()
    box = alice.page.get_by_role("textbox", name="Edit message")
    expect(box).to_be_focused()
    expect(box).to_have_value("helo world")
    box.fill("hello world")
    box.press("Enter")
    for page in (alice, poller):
        expect(page.message("hello world")).to_have_count(1)
        expect(page.message("hello world").locator(".edited")).to_have_text("(edited)")
        expect(page.message("helo world")).to_have_count(0)
    assert [m["body"] for m in live.stored_messages(live_room)].count("hello world") == 1
    poller.page.reload()
    expect(poller.message("hello world").locator(".edited")).to_have_text("(edited)")


def test_escape_cancels_and_up_arrow_edits_the_newest_own_message(open_room, live_room):
    alice = open_room(live_room)
    bob = open_room(live_room)
    alice.send("first line")
    alice.send("secnd line")
    # Both stored (an unsent message has no id and cannot be edited yet), then bob's after them.
    expect(alice.message("secnd line")).to_have_attribute("data-id", re.compile(r"^\d+$"))
    bob.send("bob speaks")
    expect(alice.message("bob speaks")).to_have_count(1)
    composer = alice.page.locator("#composer-input")
    composer.focus()
    composer.press("ArrowUp")
    box = alice.page.get_by_role("textbox", name="Edit message")
    expect(box).to_have_value("secnd line")  # the newest own message, not bob's
    box.fill("changed my mind")
    box.press("Escape")
    expect(box).to_have_count(0)
    expect(composer).to_be_focused()
    expect(alice.message("secnd line")).to_have_count(1)
    composer.press("ArrowUp")
    box.fill("second line")
    box.press("Enter")
    expect(bob.message("second line").locator(".edited")).to_have_text("(edited)")
    # With text in the composer, Up-arrow stays a caret movement.
    composer.fill("draft")
    composer.press("ArrowUp")
    expect(box).to_have_count(0)


def test_a_refused_edit_says_why_and_keeps_the_message(open_room, live_room, live):
    """Past the edit window Django refuses (403 `edit_window_passed`): the reason is shown as
    an alert in the message, and the message stays as it was for everyone."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    alice.send("too late to fix")
    expect(bob.message("too late to fix")).to_have_count(1)
    live.shell(
        "from datetime import timedelta\nfrom django.utils import timezone\n"
        "from chat.models import Message\n"
        f"Message.objects.filter(room__slug={live_room!r}, body='too late to fix')"
        ".update(sent_at=timezone.now() - timedelta(minutes=20))\n"
    )
    mine = alice.message("too late to fix")
    mine.get_by_role("button", name="Edit your message").focus()
    alice.page.keyboard.press("Enter")
    box = alice.page.get_by_role("textbox", name="Edit message")
    box.fill("too late, fixed")
    box.press("Enter")
    expect(mine.get_by_role("alert")).to_contain_text("15 minutes")
    box.press("Escape")
    expect(alice.message("too late to fix")).to_have_count(1)
    expect(bob.message("too late to fix").locator(".edited")).to_have_count(0)


def test_author_deletes_and_it_leaves_every_page_live_and_after_reload(open_room, live_room, live):
    """Delete asks once more in place (Keep and Escape keep the message); confirmed, the
    message leaves the author's page, a socket reader's and a long-polling reader's, and a
    reload shows the same. Others get no Delete action on it."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    poller = open_room(live_room, wait_live=False, before_load=refuse_websockets)
    expect(poller.state).to_have_text("Live (polling)")
    alice.send("take this back")
    alice.send("this stays")
    for page in (bob, poller):
        expect(page.message("this stays")).to_have_count(1)
        theirs = page.message("take this back")
        expect(theirs.get_by_role("button", name="Delete your message")).to_have_count(0)
    mine = alice.message("take this back")
    mine.hover()
    mine.get_by_role("button", name="Delete your message").click()
    mine.get_by_role("button", name="No, keep your message").click()
    mine.get_by_role("button", name="Delete your message").click()
    alice.page.keyboard.press("Escape")
    expect(mine.get_by_role("group", name="Delete this message?")).to_have_count(0)
    mine.get_by_role("button", name="Delete your message").click()
    mine.get_by_role("button", name="Yes, delete your message").click()
    for page in (alice, bob, poller):
        expect(page.message("take this back")).to_have_count(0)
        expect(page.message("this stays")).to_have_count(1)
    assert [m["body"] for m in live.stored_messages(live_room)] == ["this stays"]
    bob.page.reload()
    expect(bob.message("this stays")).to_have_count(1)
    expect(bob.message("take this back")).to_have_count(0)


def test_reactions_toggle_live_for_everyone_and_survive_a_reload(open_room, live_room):
    """Alice reacts from the palette and with a typed emoji, Bob (long polling) adds to the
    count from the chip, Alice takes hers back; counts, who reacted and the pressed state are
    live on both pages, a typed non-emoji is refused with the reason, and a reload shows the
    same."""
    alice = open_room(live_room)
    bob = open_room(live_room, wait_live=False, before_load=refuse_websockets)
    expect(bob.state).to_have_text("Live (polling)")
    bob.send("big news")
    news = alice.message("big news")
    expect(news).to_have_attribute("data-id", re.compile(r"^\d+$"))
    news.hover()
    news.get_by_role("button", name="Add a reaction").click()
    news.get_by_role("button", name="React with 👍").click()
    thumbs_alice = news.locator("button.reaction", has_text="👍")
    thumbs_bob = bob.message("big news").locator("button.reaction", has_text="👍")
    expect(thumbs_alice).to_have_attribute("aria-pressed", "true")
    expect(thumbs_bob).to_have_attribute("aria-pressed", "false")
    expect(thumbs_bob.locator(".reaction-count")).to_have_text("1")
    expect(thumbs_bob).to_have_attribute("title", alice.user_name)
    thumbs_bob.click()
    for chip in (thumbs_alice, thumbs_bob):
        expect(chip.locator(".reaction-count")).to_have_text("2")
    thumbs_alice.click()  # Alice takes hers back
    expect(thumbs_bob.locator(".reaction-count")).to_have_text("1")
    expect(thumbs_bob).to_have_attribute("title", bob.user_name)
    # Any single emoji can be typed; text that is not one emoji is refused with the reason.
    news.get_by_role("button", name="Add a reaction").click()
    typed = news.get_by_role("textbox", name="Any emoji")
    typed.fill("ab")
    typed.press("Enter")
    expect(news.get_by_role("alert")).to_have_text("A reaction is one emoji.")
    typed.fill("🦄")
    typed.press("Enter")
    expect(bob.message("big news").locator("button.reaction", has_text="🦄")).to_have_count(1)
    alice.page.reload()
    news = alice.message("big news")
    expect(news.locator("button.reaction", has_text="🦄")).to_have_attribute("aria-pressed", "true")
    expect(news.locator("button.reaction", has_text="👍").locator(".reaction-count")).to_have_text(
        "1"
    )
