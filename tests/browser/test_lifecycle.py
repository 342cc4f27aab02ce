"""Editing and deleting your own messages, reactions and replies in real browsers (two or three
contexts): the actions on hover and focus, Enter saves, Escape cancels, Up-arrow in the empty
composer edits the newest own message, Delete asks once more, a refusal is shown, a reply quotes
its parent and follows its edits and deletion, a quote leads to its parent, and every reader (a
socket one and a long-polling one) sees the change live and after a reload; on a phone the
actions are in the ⋯ menu and behind a long press."""

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
    mine.hover()
    mine.get_by_role("button", name="Delete your message").click()
    alice.page.keyboard.press("Escape")
    expect(mine.get_by_role("group", name="Delete this message?")).to_have_count(0)
    mine.hover()
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
    news.get_by_role("button", name="React to this message").click()
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
    news.hover()
    news.get_by_role("button", name="React to this message").click()
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


def quote_of(page, text: str):
    """The quote shown in the message whose body is `text`."""
    return page.message(text).locator(".reply-quote")


def test_a_reply_carries_a_live_quote_of_its_parent_for_everyone(open_room, live_room, live):
    """Bob (long polling) replies to Alice's message from its Reply action: the composer says
    what he replies to (Escape and the cancel button leave the reply), Alice (socket) sees the
    reply with the quote; Alice edits, then deletes the parent: Bob's quote follows live, and a
    reload shows exactly what the live page shows."""
    alice = open_room(live_room)
    bob = open_room(live_room, wait_live=False, before_load=refuse_websockets)
    expect(bob.state).to_have_text("Live (polling)")
    alice.send("lunch at noon?")
    parent = bob.message("lunch at noon?")
    expect(parent).to_have_attribute("data-id", re.compile(r"^\d+$"))
    parent.hover()
    parent.get_by_role("button", name="Reply to this message").click()
    composer = bob.page.locator("#composer-input")
    bar = bob.page.locator("#reply-bar")
    expect(bar).to_have_text(f"Replying to {alice.user_name}: lunch at noon?✕")
    expect(composer).to_be_focused()
    composer.press("Escape")
    expect(bar).to_be_hidden()
    parent.get_by_role("button", name="Reply to this message").focus()
    bob.page.keyboard.press("Enter")
    expect(bar).to_be_visible()
    bob.page.get_by_role("button", name="Cancel the reply (Escape)").click()
    expect(bar).to_be_hidden()
    # With a mouse the actions take pointer events while the message is hovered (as a hand does).
    parent.hover()
    parent.get_by_role("button", name="Reply to this message").click()
    bob.send("yes, see you")
    expect(bar).to_be_hidden()
    for page in (alice, bob):
        quote = quote_of(page, "yes, see you")
        expect(quote).to_have_text(f"Reply to {alice.user_name}: lunch at noon?")
        expect(quote).to_have_attribute("data-reply-to", parent.get_attribute("data-id"))
    [stored] = [m for m in live.stored_messages(live_room) if m["body"] == "yes, see you"]
    assert stored["reply_to"]["snippet"] == "lunch at noon?"
    # The parent is edited: the quote on Bob's page follows, and a reload agrees.
    mine = alice.message("lunch at noon?")
    mine.hover()
    mine.get_by_role("button", name="Edit your message").click()
    box = alice.page.get_by_role("textbox", name="Edit message")
    box.fill("lunch at one?")
    box.press("Enter")
    expect(quote_of(bob, "yes, see you")).to_have_text(f"Reply to {alice.user_name}: lunch at one?")
    live_html = quote_of(bob, "yes, see you").evaluate("el => el.outerHTML")
    bob.page.reload()
    expect(quote_of(bob, "yes, see you")).to_have_text(f"Reply to {alice.user_name}: lunch at one?")
    assert quote_of(bob, "yes, see you").evaluate("el => el.outerHTML") == live_html
    expect(bob.state).to_have_text("Live (polling)")
    # The parent is deleted: "deleted" live on both pages, nothing of its text, and after reload.
    mine = alice.message("lunch at one?")
    mine.hover()
    mine.get_by_role("button", name="Delete your message").click()
    mine.get_by_role("button", name="Yes, delete your message").click()
    for page in (alice, bob):
        quote = quote_of(page, "yes, see you")
        expect(quote).to_have_text("Reply to a deleted message")
        expect(quote).to_have_class(re.compile(r"\bdeleted\b"))
    live_html = quote_of(bob, "yes, see you").evaluate("el => el.outerHTML")
    bob.page.reload()
    expect(quote_of(bob, "yes, see you")).to_have_text("Reply to a deleted message")
    assert quote_of(bob, "yes, see you").evaluate("el => el.outerHTML") == live_html


def test_reactions_are_rendered_by_the_server_as_the_client_draws_them(open_room, live_room):
    """A reload shows the reactions the live page showed, in the same markup (pressed state,
    who reacted, count)."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    alice.send("vote here")
    for page, emoji in ((alice, "👍"), (bob, "👍"), (bob, "🎉")):
        news = page.message("vote here")
        expect(news).to_have_attribute("data-id", re.compile(r"^\d+$"))
        news.hover()
        news.get_by_role("button", name="React to this message").click()
        news.get_by_role("button", name=f"React with {emoji}", exact=True).click()
        expect(news.locator(".reaction-picker")).to_have_count(0)
    chips = bob.message("vote here").locator(".reactions")
    expect(chips.locator("button.reaction")).to_have_count(2)
    expect(chips.locator("button.reaction", has_text="👍").locator(".reaction-count")).to_have_text(
        "2"
    )
    live_html = chips.evaluate("el => el.outerHTML")
    bob.page.reload()
    bob.wait_live()
    expect(chips.locator("button.reaction")).to_have_count(2)
    assert chips.evaluate("el => el.outerHTML") == live_html


def store_reply_far_back(live, slug: str, between: int) -> int:
    """Stores "the plan", `between` other messages, then a reply to "the plan" (straight
    through Django, before anyone opens the room); returns the plan's id."""
    [plan] = live.store_messages(slug, 1, body="the plan")
    live.store_messages(slug, between, body="chatter")
    item = {
        "room": slug,
        "nonce": f"reply-{plan['id']}",
        "body": "agreed",
        "name": "bulk",
        "uid": "g:" + "0" * 16,
        "user_id": None,
        "guest": True,
        "reply_to": plan["id"],
    }
    answer = live.internal_post(live.django_url, "/internal/messages/batch/", {"messages": [item]})
    assert answer.json()["results"][0]["ok"], answer.text
    return plan["id"]


@pytest.mark.parametrize("between", [150, 600], ids=["older-pages", "around"])
def test_clicking_a_quote_loads_its_parent_and_scrolls_to_it(open_room, live_room, live, between):
    """The parent is not on the page: a click on the quote (or Enter on it) loads older history
    until it is there (a few pages: the list keeps every message in between), or opens the room
    around it when it is further back; the parent is scrolled into view, marked and focused."""
    plan_id = store_reply_far_back(live, live_room, between)
    reader = open_room(live_room)
    plan = reader.page.locator(f'#message-list > li.message[data-id="{plan_id}"]')
    expect(plan).to_have_count(0)
    quote = quote_of(reader, "agreed")
    expect(quote).to_have_text("Reply to bulk: the plan 0")
    quote.focus()
    reader.page.keyboard.press("Enter")
    expect(plan).to_be_in_viewport()
    expect(plan).to_be_focused()
    expect(plan).to_have_attribute("aria-current", "true")
    if between == 150:
        expect(plan).to_have_class(re.compile(r"\breply-target\b"))
        # Nothing in between is missing: every message from the plan to the reply is listed.
        expect(reader.messages).to_have_count(between + 2)
    else:
        assert f"around={plan_id}" in reader.page.url


PHONE = {"width": 390, "height": 844}


def long_press(page, target) -> None:
    """A finger resting on `target`: a touch pointerdown now, the pointerup only once the menu
    is open (the page decides when a press is long; the test waits for its answer)."""
    box = target.bounding_box()
    point = {"clientX": box["x"] + 10, "clientY": box["y"] + 5}
    init = {"pointerType": "touch", "isPrimary": True, "bubbles": True, **point}
    target.dispatch_event("pointerdown", init)
    expect(page.get_by_role("menu", name="Message actions")).to_be_visible()
    target.dispatch_event("pointerup", init)


def test_on_a_phone_the_actions_are_in_a_menu_behind_more_actions_and_a_long_press(
    open_room, live_room
):
    """At phone width the toolbar gives way to a labelled ⋯ button: it opens a menu (keyboard:
    arrows move, Escape closes and returns the focus) whose items run the actions; a long
    press on a message opens the same menu."""
    alice = open_room(live_room, viewport=PHONE)
    bob = open_room(live_room)
    bob.send("are you on the train?")
    theirs = alice.message("are you on the train?")
    expect(theirs).to_have_attribute("data-id", re.compile(r"^\d+$"))
    expect(theirs.get_by_role("button", name="Reply to this message")).to_be_hidden()
    more = theirs.get_by_role("button", name="More actions")
    expect(more).to_be_visible()
    expect(more).to_have_attribute("aria-haspopup", "menu")
    more.click()
    menu = alice.page.get_by_role("menu", name="Message actions")
    items = menu.get_by_role("menuitem")
    expect(items).to_have_text(["React to this message", "Reply to this message"])
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(items.first).to_be_focused()
    alice.page.keyboard.press("ArrowDown")
    expect(items.nth(1)).to_be_focused()
    alice.page.keyboard.press("Escape")
    expect(menu).to_have_count(0)
    expect(more).to_be_focused()
    expect(more).to_have_attribute("aria-expanded", "false")
    # Keyboard all the way: open, move to Reply, choose it.
    alice.page.keyboard.press("Enter")
    alice.page.keyboard.press("End")
    alice.page.keyboard.press("Enter")
    expect(alice.page.locator("#reply-bar")).to_contain_text("Replying to")
    expect(alice.page.locator("#composer-input")).to_be_focused()
    alice.send("yes, almost there")
    expect(quote_of(bob, "yes, almost there")).to_contain_text("are you on the train?")
    # A long press on her own message: its menu has her actions too; Delete from it.
    mine = alice.message("yes, almost there")
    expect(mine).to_have_attribute("data-id", re.compile(r"^\d+$"))
    long_press(alice.page, mine.locator(".body"))
    expect(menu.get_by_role("menuitem")).to_have_text(
        [
            "React to this message",
            "Reply to this message",
            "Edit your message",
            "Delete your message",
        ]
    )
    menu.get_by_role("menuitem", name="Delete your message").click()
    mine.get_by_role("button", name="Yes, delete your message").click()
    expect(bob.message("yes, almost there")).to_have_count(0)
