"""Two real browsers in one room: chatting, presence, typing, and safe rendering of hostile text."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.test_catchup import refuse_websockets

pytestmark = pytest.mark.browser


def test_two_guests_chat_both_ways_and_see_each_other(open_room, live_room, live):
    """Two guests (separate sessions) exchange messages both ways, each shown once, in both
    pages, after the sender's own copy went from "sending" to sent; both appear in presence."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    assert alice.user_name and bob.user_name and alice.user_name != bob.user_name

    for page in (alice, bob):
        expect(page.page.locator("#presence li", has_text=alice.user_name)).to_have_count(1)
        expect(page.page.locator("#presence li", has_text=bob.user_name)).to_have_count(1)

    alice.send("hello from alice")
    bob.send("hi alice,\nhow are you?")

    for page in (alice, bob):
        expect(page.message("hello from alice")).to_have_count(1)
        expect(page.message("hi alice,\nhow are you?")).to_have_count(1)
        # Acknowledged: no message is left in the "sending" state, and each has its real id.
        expect(page.page.locator("#message-list li.pending")).to_have_count(0)
        expect(page.message("hello from alice")).to_have_attribute("data-id", re.compile(r"^\d+$"))

    sent = alice.message("hello from alice")
    expect(sent.locator(".author")).to_have_text(alice.user_name)
    expect(bob.message("hello from alice").locator(".author")).to_have_text(alice.user_name)
    # The datetime attribute keeps the ISO time; the label is local time.
    expect(sent.locator("time")).to_have_attribute("datetime", re.compile(r"Z$"))

    stored = [m["body"] for m in live.stored_messages(live_room)]
    assert stored.count("hello from alice") == 1
    assert stored.count("hi alice,\nhow are you?") == 1


def test_typing_is_shown_to_the_other_reader(open_room, live_room):
    """Typing in one page shows "<name> is typing…" in the other, never in the typist's own."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    alice.page.locator("#composer-input").press_sequentially("hel", delay=30)
    expect(bob.page.locator("#typing-indicator")).to_have_text(f"{alice.user_name} is typing…")
    expect(alice.page.locator("#typing-indicator")).to_have_text("")


def keep_typing_until_shown(typist, reader, deadline: float = 30.0) -> None:
    """Type into `typist`'s composer, a key at a time, until `reader` shows its typing notice.

    Typing notices are best effort on purpose (docs/protocol.md): one that reaches a long
    poller between two of its polls is not kept, and the next one (the client sends one every
    2 s while typing) reaches it. So the test types as a person does, on and on, and waits for
    the notice with a deadline instead of betting on the first one.
    """
    notice = reader.page.locator("#typing-indicator")
    ends = time.monotonic() + deadline
    while True:
        typist.page.locator("#composer-input").press_sequentially("hey", delay=30)
        try:
            expect(notice).to_have_text(f"{typist.user_name} is typing…", timeout=2500)
            return
        except AssertionError:
            if time.monotonic() > ends:
                raise


def test_typing_is_shown_both_ways_while_one_reader_long_polls(open_room, live_room):
    """A reader whose sockets are refused (long polling) sees the other's typing notice, and
    its own typing reaches the socket reader (a POST of the typing frame); neither page shows
    its own notice."""
    poller = open_room(live_room, wait_live=False, before_load=refuse_websockets)
    expect(poller.state).to_have_text("Live (polling)")
    socket = open_room(live_room)
    keep_typing_until_shown(socket, poller)
    keep_typing_until_shown(poller, socket)
    expect(poller.page.locator("#typing-indicator")).not_to_contain_text(poller.user_name)
    expect(socket.page.locator("#typing-indicator")).not_to_contain_text(socket.user_name)


def test_hostile_message_is_shown_as_text_and_runs_nothing(open_room, live_room):
    """HTML in a message body is displayed literally: no element is created from it and no
    script runs (no dialog opens, no `img` appears in the list) in the sender's or reader's page."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    hostile = "<img src=x onerror=alert(1)> <script>alert(2)</script> https://example.org/?q=<b>"
    alice.send(hostile)

    for page in (alice, bob):
        expect(page.message(hostile)).to_have_count(1)
        assert page.page.locator("#message-list img, #message-list script").count() == 0
        # The URL becomes a real link, built safely and opening in a new tab without referrer.
        link = page.message(hostile).locator("a")
        expect(link).to_have_count(1)
        expect(link).to_have_attribute("rel", "nofollow noopener noreferrer ugc")
        # The link stops where HTML-like text starts; the rest stays text.
        expect(link).to_have_attribute("href", "https://example.org/?q=")

    # A later message proves the pages kept running after rendering the hostile one.
    bob.send("still here")
    expect(alice.message("still here")).to_have_count(1)
    assert alice.dialogs == [] and bob.dialogs == []


def test_empty_input_is_ignored_and_shift_enter_adds_a_line(open_room, live_room, live):
    """Enter on blank input sends nothing; Shift+Enter inserts a newline instead of sending."""
    alice = open_room(live_room)
    box = alice.page.locator("#composer-input")
    box.fill("   ")
    box.press("Enter")
    box.fill("")
    box.press_sequentially("line one")
    box.press("Shift+Enter")
    box.press_sequentially("line two")
    expect(box).to_have_value("line one\nline two")
    box.press("Enter")
    expect(alice.message("line one\nline two")).to_have_count(1)
    expect(box).to_have_value("")
    # The bubble appears before the message is stored: wait for its acknowledgement (stored).
    expect(alice.page.locator("#message-list li.pending")).to_have_count(0)
    assert [m["body"] for m in live.stored_messages(live_room)] == ["line one\nline two"]


def test_older_history_loads_when_scrolling_up(open_room, live_room, live):
    """With more stored messages than the first page, scrolling to the top loads older ones once
    each, in id order, until the beginning of the conversation."""
    payload = {
        "messages": [
            {
                "room": live_room,
                "nonce": f"seed-{i}",
                "body": f"seed message {i}",
                "name": "seeder",
                "uid": "g:5eed5eed5eed5eed",
                "user_id": None,
                "guest": True,
            }
            for i in range(120)
        ]
    }
    response = live.internal_post(live.django_url, "/internal/messages/batch/", payload)
    assert response.status_code == 200, response.text
    reader = open_room(live_room)
    expect(reader.message("seed message 119")).to_have_count(1)
    expect(reader.message("seed message 0")).to_have_count(0)

    listing = reader.page.locator("#message-list")
    for _ in range(4):
        before = reader.messages.count()
        if before >= 120:
            break
        first_id = reader.messages.first.get_attribute("data-id")
        # Setting scrollTop to 0 is what the reader's scrolling does; the event makes it explicit
        # for the case where the list already sits at the top.
        listing.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")
        expect(reader.messages).not_to_have_count(before)
        # The view stays on what the reader was looking at instead of jumping to the new top.
        assert listing.evaluate("el => el.scrollTop") > 0
        older = reader.page.locator(f'#message-list > li[data-id="{first_id}"]')
        assert older.evaluate("(li) => li.previousElementSibling !== null")
    expect(reader.message("seed message 0")).to_have_count(1)
    expect(reader.page.locator(".load-older")).to_be_hidden()
    ids = [int(i) for i in reader.messages.evaluate_all("els => els.map(e => e.dataset.id)")]
    assert ids == sorted(ids) and len(ids) == len(set(ids)) == 120


# Headless pages are always "visible"; this lets a test say when the reader looks away.
CONTROLLABLE_VISIBILITY = """
Object.defineProperty(document, "visibilityState", {
  configurable: true, get: () => window.__testVisibility || "visible",
});
window.__setVisibility = (state) => {
  window.__testVisibility = state;
  document.dispatchEvent(new Event("visibilitychange"));
};
"""


def test_unread_count_shows_in_title_while_hidden(open_room, live_room):
    """Messages from others that arrive while the tab is hidden are counted in the title as
    "(n) ..."; the count goes away when the tab is visible again."""
    reader = open_room(
        live_room, before_load=lambda context, page: page.add_init_script(CONTROLLABLE_VISIBILITY)
    )
    writer = open_room(live_room)
    title = reader.page.title()
    reader.page.evaluate("() => window.__setVisibility('hidden')")
    writer.send("one")
    writer.send("two")
    expect(reader.message("two")).to_have_count(1)
    expect(reader.page).to_have_title(f"(2) {title}")
    reader.page.evaluate("() => window.__setVisibility('visible')")
    expect(reader.page).to_have_title(title)


def test_moderated_message_is_marked_deleted_for_readers(open_room, live_room, live):
    """When a moderator deletes a message (stored flag + chat server notified, as the admin
    does), open pages remove it without a reload, as a reload would (never listed again)."""
    alice = open_room(live_room)
    bob = open_room(live_room)
    alice.send("regrettable remark")
    alice.send("fine remark")
    expect(bob.message("fine remark")).to_have_count(1)
    live.shell(
        "from chat.models import Message\nfrom chat import actions\n"
        f"m = Message.objects.get(room__slug={live_room!r}, body='regrettable remark')\n"
        "m.is_deleted = True\nm.save()\n"
        f"actions.message_deleted({live_room!r}, m.id)\n"
    )
    for page in (alice, bob):
        expect(page.message("regrettable remark")).to_have_count(0)
        expect(page.message("fine remark")).to_have_count(1)
    bob.page.reload()
    expect(bob.message("fine remark")).to_have_count(1)
    expect(bob.message("regrettable remark")).to_have_count(0)


def test_refused_message_shows_failure_with_discard_not_retry(open_room, live_room, live):
    """A message the server refuses for good (here: over 4,000 characters, left in the outbox by
    an older page) is shown as failed with a reason and a Discard button, and no Retry (a resend
    can never succeed); Discard
    removes it from the page and from localStorage. Nothing is stored."""
    reader = open_room(live_room)
    key = f"dtc.outbox.{live_room}"
    entry = {"nonce": "too-long-1", "body": "x" * 4001, "created": "2026-11-22T09:00:00.000Z"}
    reader.page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)", [key, json.dumps([entry])]
    )
    reader.page.reload()
    failed = reader.page.locator("#message-list li.failed")
    expect(failed).to_have_count(1)
    # The limit it names is the page's (CHAT_MAX_BODY via data-max-body), not a literal.
    expect(failed.locator(".message-state")).to_contain_text("too long (4,000 characters at most)")
    expect(failed.get_by_role("button", name="Retry sending this message")).to_have_count(0)
    failed.get_by_role("button", name="Discard this unsent message").click()
    expect(failed).to_have_count(0)
    assert reader.page.evaluate("(key) => localStorage.getItem(key)", key) is None
    assert live.stored_messages(live_room) == []
