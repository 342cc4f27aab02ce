"""Rooms and membership in a real Chromium: a signed-in user creates a private room, invites one
person by username and another by link, both accept and they chat; a direct conversation opens
from a name in the presence list (and the message list)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser

PASSWORD = "pw-rooms-123456789"


@pytest.fixture
def person(browser: Browser, live) -> Iterator[Callable[[str], Page]]:
    """Signs a new user in, in its own browser context; any JavaScript error fails the test."""
    contexts, errors = [], []

    def _person(prefix: str) -> Page:
        username = f"{prefix}-{secrets.token_hex(3)}"
        live.create_user(username, PASSWORD)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{live.django_url}/accounts/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        page.locator("form button[type=submit], form input[type=submit]").first.click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        page.username = username  # type: ignore[attr-defined]
        return page

    yield _person
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def live_state(page: Page):
    expect(page.locator("#connection-state")).to_have_text("Live")


def say(page: Page, text: str) -> None:
    box = page.locator("#composer-input")
    box.fill(text)
    box.press("Enter")


def shows(page: Page, text: str):
    expect(page.locator("#message-list > li.message .body", has_text=text)).to_have_count(1)


def create_room(page: Page, live, prefix: str, visibility: str = "Private: members only") -> str:
    """Creates a room with the new-room form (``visibility`` is its radio's label) and waits for
    its page to be live; returns the room's URL."""
    page.goto(f"{live.django_url}/chats/new/")
    page.get_by_label("Name").fill(f"{prefix} {secrets.token_hex(2)}")
    page.get_by_label(visibility).check()
    page.get_by_role("button", name="Create room").click()
    live_state(page)
    return page.url


def test_private_room_invite_by_username_and_by_link_then_chat(person, live):
    """Create a private room from the room list; invite by username (accepted from the
    invitee's room list) and by a single-use link (accepted on the link's page); all three
    chat; the link, used once, admits nobody else, for whom the room is "Not found"."""
    owner, invited, linked = person("owner"), person("invited"), person("linked")
    owner.goto(f"{live.django_url}/chats/")
    owner.get_by_role("link", name="New room").click()
    owner.get_by_label("Name").fill("Plans " + secrets.token_hex(2))
    owner.get_by_label("Private: members only").check()
    owner.get_by_role("button", name="Create room").click()
    live_state(owner)
    room_url = owner.url
    owner.get_by_role("link", name=re.compile("Members")).click()
    owner.get_by_label("Invite by username").fill(invited.username)
    owner.get_by_role("button", name="Invite", exact=True).click()
    expect(owner.locator(".flash")).to_contain_text("is invited")
    owner.get_by_role("button", name="Make an invitation link").click()
    link = owner.locator("#new-invite-link").input_value()
    assert "/chats/invite/" in link

    invited.goto(f"{live.django_url}/chats/")
    invitation = invited.locator(".invitation")
    expect(invitation).to_have_count(1)
    invitation.get_by_role("button", name="Accept").click()
    live_state(invited)
    assert invited.url == room_url

    linked.goto(link)
    linked.get_by_role("button", name=re.compile("^Join ")).click()
    live_state(linked)

    owner.goto(room_url)
    live_state(owner)
    say(owner, "welcome both")
    shows(invited, "welcome both")
    shows(linked, "welcome both")
    say(invited, "thanks")
    shows(owner, "thanks")
    shows(linked, "thanks")

    late = person("late")
    late.goto(link)
    expect(late.get_by_role("alert")).to_contain_text("has been used")
    # Outside the room, it does not exist (nobody can probe private names).
    late.goto(room_url)
    expect(late.locator("h1")).to_have_text("Not found")


def test_direct_message_from_a_name_in_presence(person, live, live_room):
    """In a shared room, one reader presses "Message" beside the other's name in the presence
    list: a direct conversation opens, live; the other finds it under "Direct messages" on the
    room list and they talk. The names on messages carry the same button."""
    ann, ben = person("ann"), person("ben")
    for page in (ann, ben):
        page.goto(f"{live.django_url}/chats/{live_room}/")
        live_state(page)
    say(ben, "hello room")
    shows(ann, "hello room")
    on_message = ann.locator("#message-list").get_by_role(
        "button", name=f"Message {ben.username} directly"
    )
    expect(on_message).to_have_count(1)
    presence_button = ann.locator("#presence").get_by_role(
        "button", name=f"Message {ben.username} directly"
    )
    # Nobody messages themselves, and guests have no button.
    expect(
        ann.locator("#presence").get_by_role("button", name=re.compile(ann.username))
    ).to_have_count(0)
    presence_button.click()
    ann.wait_for_url(re.compile(r"/chats/dm-"))
    live_state(ann)
    expect(ann.locator(".room-tools")).to_contain_text("Direct conversation")
    say(ann, "just between us")

    ben.goto(f"{live.django_url}/chats/")
    direct = ben.locator(".direct-rooms")
    expect(direct).to_contain_text(ann.username)
    direct.get_by_role("link", name=ann.username).click()
    live_state(ben)
    shows(ben, "just between us")
    say(ben, "sure")
    shows(ann, "sure")


def test_a_removed_member_is_told_at_once(person, live):
    """The owner removes a member whose room page is open: within moments that page says it
    cannot join, its composer stops taking text, and it does not reconnect."""
    owner, member = person("owner"), person("member")
    room_url = create_room(owner, live, "Removal")
    owner.get_by_role("link", name=re.compile("Members")).click()
    owner.get_by_label("Invite by username").fill(member.username)
    owner.get_by_role("button", name="Invite", exact=True).click()
    member.goto(f"{live.django_url}/chats/")
    member.locator(".invitation").get_by_role("button", name="Accept").click()
    live_state(member)
    assert member.url == room_url
    owner.reload()
    owner.get_by_role("button", name=f"Remove {member.username}").click()
    expect(owner.locator(".flash")).to_contain_text("was removed")
    expect(member.locator("#connection-state")).to_have_text("You cannot join this room")
    expect(member.locator("#composer-input")).not_to_be_editable()


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_room_pages_have_no_axe_violations(browser, live, color_scheme):
    """axe finds nothing on the signed-in room list (with an invitation, a direct conversation
    and Join buttons), the new-room form, an owner's members page showing a new link, and the
    room's settings page."""
    from tests.browser.test_axe import AXE, assert_no_violations

    assert AXE.exists(), "run `make js-deps`"
    owner, guest_name = f"axe-{secrets.token_hex(3)}", f"axe-{secrets.token_hex(3)}"
    live.create_user(owner, PASSWORD)
    live.create_user(guest_name, PASSWORD)
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=color_scheme, bypass_csp=True
    )
    try:
        page = context.new_page()
        page.goto(f"{live.django_url}/accounts/login/")
        page.fill("#id_username", owner)
        page.fill("#id_password", PASSWORD)
        page.locator("form button[type=submit], form input[type=submit]").first.click()
        page.wait_for_url(lambda url: "/accounts/login/" not in url)
        page.goto(f"{live.django_url}/chats/new/")
        assert_no_violations(page)
        page.get_by_label("Name").fill("Axe " + secrets.token_hex(2))
        page.get_by_label("Private: members only").check()
        page.get_by_role("button", name="Create room").click()
        live_state(page)
        page.get_by_role("link", name=re.compile("Members")).click()
        page.get_by_label("Invite by username").fill(guest_name)
        page.get_by_role("button", name="Invite", exact=True).click()
        page.get_by_role("button", name="Make an invitation link").click()
        expect(page.locator("#new-invite-link")).to_be_visible()
        assert_no_violations(page)
        page.goto(page.url.replace("/members/", "/settings/"))
        expect(page.get_by_role("button", name="Save")).to_be_visible()
        assert_no_violations(page)
        live.shell(
            "from django.contrib.auth import get_user_model\nfrom chat.direct import open_direct\n"
            "from chat.invites import invite_user\nfrom chat.models import Room\n"
            f"U = get_user_model()\na, b = U.objects.get(username={owner!r}), "
            f"U.objects.get(username={guest_name!r})\nopen_direct(a, b.pk)\n"
            "room = Room.objects.create(name='Invited', slug='inv-' + b.username, "
            "visibility='private')\nfrom chat.membership import Membership\n"
            "Membership.objects.create(room=room, user=b, role='owner')\ninvite_user(room, b, a)\n"
        )
        page.goto(f"{live.django_url}/chats/")
        expect(page.locator(".direct-rooms")).to_be_visible()
        expect(page.locator(".invitation")).to_have_count(1)
        assert_no_violations(page)
    finally:
        context.close()


def test_joining_from_the_list_and_changing_a_room_from_its_menu(person, live):
    """An owner makes a sign-in room; another user joins it with the room list's Join button
    (counted, "you are a member") and follows it: the owner's next message shows as unread on
    that user's list. The owner renames it from the room page's menu ("Room settings") and makes
    it private: the member's open page stays live, the new name shows on the page."""
    owner, joiner = person("owner"), person("joiner")
    slug = create_room(owner, live, "Open", "Open to signed-in users").rstrip("/").rsplit("/", 1)[1]

    joiner.goto(f"{live.django_url}/chats/")
    card = joiner.locator(f'.room-card[data-slug="{slug}"]')
    expect(card).to_contain_text("1 member")
    card.get_by_role("button", name=re.compile("^Join ")).click()
    card = joiner.locator(f'.room-card[data-slug="{slug}"]')
    expect(card).to_contain_text("2 members")
    expect(card).to_contain_text("you are a member")
    say(owner, "news for members")
    expect(card.locator(".unread-badge")).to_have_text("1")

    joiner.goto(f"{live.django_url}/chats/{slug}/")
    live_state(joiner)
    owner.get_by_role("link", name="Room settings").click()
    owner.get_by_label("Name").fill("Renamed room")
    owner.get_by_label("Private: members only").check()
    owner.get_by_role("button", name="Save").click()
    expect(owner.locator("h1")).to_have_text("Renamed room")
    live_state(owner)
    # The member was cut off with everyone (scope all) and came back with a fresh ticket.
    say(owner, "still here?")
    shows(joiner, "still here?")
