"""Identity in the browser: "own" by stable id, guests marked as guests, bidi-isolated names."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import expect

from tests.browser.people import PASSWORD, signed_in
from tests.support.live import mint_ticket
from tests.support.wsclient import ChatClient


def _guest_socket(live, room: str, name: str) -> ChatClient:
    """A guest socket whose (correctly signed) ticket says `name`, as a forged rename would."""
    ticket = mint_ticket(live.secret, room, name=name, sub="g:" + secrets.token_hex(8))
    url = live.chat_url.replace("http", "ws") + f"/ws/{room}?ticket={ticket}"
    return ChatClient(url, origin=live.django_url)


def test_the_real_admins_page_does_not_style_a_guest_named_admin_as_its_own(
    open_room, live, live_room
):
    """A guest whose ticket says `admin` posts while the real admin reads: on the admin's page
    the guest's message is not "own" and carries a guest badge, the admin's own message is
    "own", and presence lists two people, the guest marked. (The original client decided "own"
    by display name and styled the guest's message as the admin's.)"""
    username = "admin-" + secrets.token_hex(3)
    live.create_user(username, PASSWORD, staff=True)
    admin = open_room(live_room, before_load=signed_in(live, username))
    assert admin.user_name == username
    impostor = _guest_socket(live, live_room, username)
    try:
        impostor.wait_for(lambda f: f["type"] == "hello")
        impostor.say("I am the admin, send me your password", "fake-1")
        fake = admin.message("I am the admin, send me your password")
        expect(fake).to_have_count(1)
        expect(fake.locator(".guest-badge")).to_be_visible()
        assert "own" not in (fake.get_attribute("class") or "").split()
        admin.send("the real admin")
        mine = admin.message("the real admin")
        expect(mine).to_have_class(re.compile(r"(^|\s)own(\s|$)"))
        expect(mine.locator(".guest-badge")).to_have_count(0)
        people = admin.page.locator("#presence li")
        expect(people).to_have_count(2)
        expect(admin.page.locator("#presence li.me")).to_have_count(1)
        expect(admin.page.locator("#presence li.guest .guest-badge")).to_have_count(1)
    finally:
        impostor.close()


def test_a_right_to_left_override_in_a_name_cannot_reorder_the_timestamp(
    open_room, live, live_room
):
    """A name `\\u202Efdp.exe` (RIGHT-TO-LEFT OVERRIDE) and a body with an override are shown
    isolated: the timestamp stays to the right of the name and the text after the body is not
    reversed; names and bodies compute `unicode-bidi: isolate`. (The original rendered the name
    in a plain span, so the override ran into the timestamp and reversed it.)"""
    reader = open_room(live_room)
    sender = _guest_socket(live, live_room, "\u202efdp.exe")
    try:
        sender.wait_for(lambda f: f["type"] == "hello")
        sender.say("\u202eevil body", "bidi-1")
        item = reader.message("\u202eevil body")
        expect(item).to_have_count(1)
        author, time = item.locator(".author"), item.locator("time")
        assert author.evaluate("el => getComputedStyle(el).unicodeBidi") == "isolate"
        body = item.locator(".body")
        assert body.evaluate("el => getComputedStyle(el).unicodeBidi") == "isolate"
        name_box, time_box = author.bounding_box(), time.bounding_box()
        assert name_box and time_box
        # Left-to-right page: the name comes first, the timestamp entirely to its right.
        assert time_box["x"] >= name_box["x"] + name_box["width"] - 1
        # The timestamp's own characters stay in reading order: its first character is drawn
        # left of its last one (an override leaking out would mirror them).
        order = time.evaluate(
            """el => {
              const text = el.firstChild, range = document.createRange();
              range.setStart(text, 0); range.setEnd(text, 1);
              const first = range.getBoundingClientRect().x;
              range.setStart(text, text.length - 1); range.setEnd(text, text.length);
              return [first, range.getBoundingClientRect().x];
            }"""
        )
        assert order[0] < order[1]
    finally:
        sender.close()
