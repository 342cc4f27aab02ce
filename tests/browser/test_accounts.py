"""Accounts in real Chromium: the "Forgot password?" link through the mailed reset link to a new
password, and avatars beside messages (server-rendered and live) and in presence."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import Browser, expect

from chat.avatars import avatar
from tests.support.live import wait_until
from tests.support.wsclient import ChatClient

PASSWORD = "pw-accounts-123456789"
RESET_LINK = re.compile(r"https?://[^\s/]+(/accounts/reset/[^\s/]+/[^\s/]+/)")


def test_forgot_password_link_leads_to_a_reset_that_works_once(browser: Browser, live):
    """From the sign-in page, "Forgot password?" opens the reset form; the mailed link (the
    console backend writes it into Django's log) opens "Choose a new password"; the new password
    signs in, and the same link then says it does not work."""
    username = "reset" + secrets.token_hex(3)
    email = f"{username}@example.org"
    live.shell(
        "from django.contrib.auth import get_user_model\n"
        f"get_user_model().objects.create_user({username!r}, {email!r}, {PASSWORD!r})\n"
    )
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{live.django_url}/accounts/login/")
        page.get_by_role("link", name="Forgot password?").click()
        expect(page.get_by_role("heading", name="Reset your password")).to_be_visible()
        log_before = len(live.django.log_path.read_text(errors="replace"))
        page.fill("#id_email", email)
        page.get_by_role("button", name="Send the link").click()
        expect(page.get_by_role("heading", name="Check your e-mail")).to_be_visible()

        def mailed_link():
            text = live.django.log_path.read_text(errors="replace")[log_before:]
            found = RESET_LINK.findall(text) if f"To: {email}" in text else []
            return found[-1] if found else None

        link = live.django_url + wait_until(mailed_link, timeout=10)
        page.goto(link)
        expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
        new = "brand-new-pw-" + secrets.token_hex(4)
        page.fill("#id_new_password1", new)
        page.fill("#id_new_password2", new)
        page.get_by_role("button", name="Set the password").click()
        expect(page.get_by_role("heading", name="Your password was set")).to_be_visible()
        page.get_by_role("link", name="Sign in").last.click()
        page.fill("#id_username", username)
        page.fill("#id_password", new)
        page.locator("form.stacked-form button[type=submit]").click()
        expect(page.locator(".site-nav")).to_contain_text("Signed in as")
        page.goto(link)
        expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    finally:
        context.close()


def test_avatars_sit_beside_messages_and_in_presence(open_room, live, live_room):
    """A stored message (rendered by Django) and a live one (drawn by the client) both start
    with the author's avatar, the same initials and colour class chat/avatars.py gives for the
    author's id; presence entries carry them too. The initials are readable (contrast) in the
    page's computed colours."""
    stored = live.store_messages(live_room, 1, body="from the past")[0]
    reader = open_room(live_room)
    past = reader.message(stored["body"])
    expected = avatar(stored["user"]["id"], stored["user"]["name"])
    badge = past.locator(".avatar")
    expect(badge).to_have_text(expected.initials)
    expect(badge).to_have_class(f"avatar avatar-c{expected.colour}")
    assert past.evaluate("li => li.firstElementChild.classList.contains('avatar')")

    guest = live.guest_session(live_room)
    ticket = live.ticket(guest, live_room)
    sender = ChatClient(ticket["ws_url"], origin=live.origin)
    try:
        sender.wait_for(lambda f: f["type"] == "hello")
        sender.say("live with an avatar", "avatar-1")
        live_item = reader.message("live with an avatar")
        expect(live_item).to_have_count(1)
        mine = avatar(ticket["user"]["id"], ticket["user"]["name"])
        live_badge = live_item.locator(".avatar")
        expect(live_badge).to_have_text(mine.initials)
        expect(live_badge).to_have_class(f"avatar avatar-c{mine.colour}")
        assert live_badge.get_attribute("aria-hidden") == "true"
        entry = reader.page.locator(f'#presence li[data-id="{ticket["user"]["id"]}"] .avatar')
        expect(entry).to_have_class(f"avatar avatar-c{mine.colour}")
        colours = live_badge.evaluate(
            "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
        )
        assert colours[0] != colours[1]
    finally:
        sender.close()
