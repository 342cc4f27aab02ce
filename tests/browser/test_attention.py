"""Attention in Chromium: @ autocomplete with the keyboard, the room list's badge updated live
from the personal feed, and desktop notifications for a mention in a hidden tab (never for
your own message, never asked for on load), and a direct message to a hidden room list (a
notification, the conversation added live with its badge)."""

from __future__ import annotations

import re
import secrets

from playwright.sync_api import expect

from tests.browser.people import fill_sign_in, new_user
from tests.support.live import wait_until

# Records every Notification constructed (and still builds the real one), counts permission
# requests, and (with `window.name === "hidden"`) makes the page think its tab is hidden.
RECORD_NOTIFICATIONS = """
(() => {
  window.__notes = [];
  window.__asked = 0;
  const Real = window.Notification;
  if (!Real) return;
  class Recording extends Real {
    constructor(title, options) {
      window.__notes.push({ title, body: (options && options.body) || "" });
      super(title, options);
    }
  }
  Object.defineProperty(Recording, "permission", { get: () => Real.permission });
  Recording.requestPermission = (...args) => {
    window.__asked += 1;
    return Real.requestPermission(...args);
  };
  window.Notification = Recording;
  if (window.name === "hidden") {
    Object.defineProperty(Document.prototype, "visibilityState", { get: () => "hidden" });
    Object.defineProperty(Document.prototype, "hidden", { get: () => true });
  }
})();
"""


def sign_in(live, username: str, hidden: bool = False):
    """A `before_load` hook: notifications granted, recorded; signed in through the form."""

    def hook(context, page) -> None:
        context.grant_permissions(["notifications"], origin=live.django_url)
        context.add_init_script(RECORD_NOTIFICATIONS)
        fill_sign_in(live, page, username)
        if hidden:
            page.evaluate("window.name = 'hidden'")

    return hook


def read_position(page, live, room: str) -> int:
    """Bob's stored read position in `room`, asked of Django from his page (0 when none)."""
    data = page.evaluate(
        "url => fetch(url).then(r => r.json())", f"{live.django_url}/api/attention/"
    )
    return next((r["last_read_id"] for r in data["rooms"] if r["room"] == room), 0)


def test_mention_autocomplete_with_the_keyboard(live, live_room, open_room):
    """Typing `@` and a prefix opens the listbox (announced in a status, the highlighted person
    the composer's active descendant); ArrowDown/Enter picks a person online; Escape closes;
    the sent mention is highlighted for its target."""
    bob, alice = new_user(live, "bob"), new_user(live, "alice")
    bob_page = open_room(live_room, before_load=sign_in(live, bob))
    alice_page = open_room(live_room, before_load=sign_in(live, alice))
    expect(alice_page.page.locator("#presence")).to_contain_text(bob)
    box = alice_page.page.locator("#composer-input")
    box.press_sequentially("hi @bo")
    options = alice_page.page.locator("#mention-options [role=option]")
    expect(options.first).to_have_text(f"@{bob}")
    status = alice_page.page.locator("#mention-status")
    expect(status).to_contain_text("to mention")
    expect(box).to_have_attribute("aria-activedescendant", "mention-option-0")
    box.press("Escape")
    expect(options).to_have_count(0)
    expect(status).to_have_text("")
    expect(box).not_to_have_attribute("aria-activedescendant", re.compile("."))
    box.press_sequentially("b")  # reopens with the prefix "bob"
    expect(options.first).to_have_text(f"@{bob}")
    box.press("Enter")  # picks, does not send
    expect(box).to_have_value(f"hi @{bob} ")
    expect(options).to_have_count(0)
    box.press_sequentially("there")
    box.press("Enter")  # sends
    sent = bob_page.messages.filter(has_text=f"hi @{bob} there")
    expect(sent).to_have_class(re.compile(r"\bmentions-me\b"))
    expect(sent.locator("span.mention-me")).to_have_text(f"@{bob}")
    expect(alice_page.messages.filter(has_text="there").locator("span.mention")).not_to_have_class(
        re.compile("mention-me")
    )


def test_room_list_badge_updates_live(live, live_room, open_room):
    """Bob opened the room once, then sits on the room list: Alice's message shows an unread
    badge at once and the title counts it; her mention adds the mention badge."""
    bob, alice = new_user(live, "bob"), new_user(live, "alice")
    first = open_room(live_room, before_load=sign_in(live, bob))
    first.page.goto(f"{live.django_url}/chats/")
    page = first.page
    expect(page.locator("#room-list-page")).to_have_attribute("data-feed-ready", "true")
    card = page.locator(f'.room-card[data-slug="{live_room}"]')
    alice_page = open_room(live_room, before_load=sign_in(live, alice))
    alice_page.send("news for the list")
    expect(card.locator(".unread-badge")).to_have_text("1")
    expect(page).to_have_title(re.compile(r"^\(1\) Rooms"))
    alice_page.send(f"@{bob} look")
    expect(card.locator(".unread-badge")).to_have_text("2")
    expect(card.locator(".mention-badge")).to_have_text("@1")
    expect(page).to_have_title(re.compile(r"^\(@1 · 2\) Rooms"))
    # Reading the room (opening it) clears the badge on the list, live.
    reader = first.context.new_page()
    reader.goto(f"{live.django_url}/chats/{live_room}/")
    expect(card.locator(".unread-badge")).to_be_hidden()
    expect(page).to_have_title(re.compile(r"^Rooms"))


def test_desktop_notification_for_a_hidden_tab_mention_not_for_own(live, live_room, open_room):
    """Bob's tab is hidden: Alice's mention of him raises one notification naming her; his own
    message mentioning himself raises none; nothing asked for permission on load."""
    bob, alice = new_user(live, "bob"), new_user(live, "alice")
    bob_page = open_room(live_room, before_load=sign_in(live, bob, hidden=True))
    page = bob_page.page
    assert page.evaluate("document.visibilityState") == "hidden"
    bob_page.send(f"@{bob} a note to myself")
    expect(bob_page.message(f"@{bob} a note to myself")).to_have_count(1)
    alice_page = open_room(live_room, before_load=sign_in(live, alice))
    alice_page.send(f"@{bob} are you there?")
    # Polled with evaluate: wait_for_function evaluates a string, which the page's CSP forbids.
    wait_until(lambda: page.evaluate("window.__notes.length") >= 1, timeout=20)
    notes = page.evaluate("window.__notes")
    assert len(notes) == 1, notes
    assert alice in notes[0]["title"] and notes[0]["body"] == f"@{bob} are you there?"
    assert page.evaluate("window.__asked") == 0


def test_new_messages_divider_jump_button_and_read_position_across_reloads(
    live, live_room, open_room
):
    """Bob read the room, left; Alice wrote three messages; on his return the first of them is
    marked "New messages"; scrolled up, "Jump to newest" shows and takes him down; once read,
    a reload shows no divider (the position is stored in Django, not in the tab)."""
    live.store_messages(live_room, 40, body="earlier")  # enough to scroll
    bob, alice = new_user(live, "bob"), new_user(live, "alice")
    bob_page = open_room(live_room, before_load=sign_in(live, bob))
    page = bob_page.page
    expect(bob_page.messages).to_have_count(40)
    newest = int(bob_page.messages.last.get_attribute("data-id"))
    wait_until(lambda: read_position(page, live, live_room) == newest)
    page.goto(f"{live.django_url}/chats/")
    alice_page = open_room(live_room, before_load=sign_in(live, alice))
    for n in range(3):
        alice_page.send(f"while you were away {n}")
    expect(alice_page.message("while you were away 2")).to_have_count(1)
    page.goto(f"{live.django_url}/chats/{live_room}/")
    bob_page.wait_live()
    first_new = page.locator("#message-list > li.first-unread")
    expect(first_new).to_have_count(1)
    expect(first_new.locator(".body")).to_have_text("while you were away 0")
    jump = page.locator("#jump-newest")
    page.locator("#message-list").evaluate("list => { list.scrollTop = 0; }")
    expect(jump).to_be_visible()
    jump.click()
    expect(jump).to_be_hidden()
    newest = int(bob_page.messages.last.get_attribute("data-id"))
    wait_until(lambda: read_position(page, live, live_room) == newest)
    page.reload()
    bob_page.wait_live()
    expect(page.locator("#message-list > li.first-unread")).to_have_count(0)


OPEN_DIRECT = """
async (url) => {
  const token = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  const response = await fetch(url, {
    method: "POST",
    headers: { "X-CSRFToken": decodeURIComponent(token.split("=")[1]) },
  });
  return response.url;
}
"""


def test_direct_message_to_a_hidden_room_list_notifies_and_shows_the_conversation(
    live, live_room, open_room
):
    """Bob's room list tab is hidden and has no direct conversations. Alice opens one with him
    and writes: his list shows the conversation live with its unread badge, and one desktop
    notification names her."""
    bob, alice = new_user(live, "bob"), new_user(live, "alice")
    first = open_room(live_room, before_load=sign_in(live, bob, hidden=True))
    page = first.page
    page.goto(f"{live.django_url}/chats/")
    expect(page.locator("#room-list-page")).to_have_attribute("data-feed-ready", "true")
    expect(page.locator('.room-card[data-kind="direct"]')).to_have_count(0)
    bob_id = page.locator("#room-list-page").get_attribute("data-user-id").split(":")[1]

    alice_page = open_room(live_room, before_load=sign_in(live, alice))
    where = alice_page.page.evaluate(OPEN_DIRECT, f"{live.django_url}/chats/direct/{bob_id}/")
    slug = where.rstrip("/").rsplit("/", 1)[1]
    alice_page.page.goto(where)
    alice_page.wait_live()
    alice_page.send("psst, Bob")

    card = page.locator(f'.room-card[data-kind="direct"][data-slug="{slug}"]')
    expect(card).to_have_count(1)
    expect(card.locator("a.room-link")).to_have_text(alice)
    expect(card.locator(".unread-badge")).to_have_text("1")
    wait_until(lambda: page.evaluate("window.__notes.length") >= 1, timeout=20)
    notes = page.evaluate("window.__notes")
    assert len(notes) == 1, notes
    assert alice in notes[0]["title"] and notes[0]["body"] == "psst, Bob"


def test_invitation_shows_on_the_room_list_live(live, live_room, open_room):
    """Bob sits on the room list; Alice makes a private room and invites him by username: the
    invitation appears on his list at once, with its Accept button."""
    bob, alice = new_user(live, "bob"), new_user(live, "alice")
    sign_bob = sign_in(live, bob)
    sign_alice = sign_in(live, alice)
    bob_page = open_room(live_room, before_load=sign_bob)
    page = bob_page.page
    page.goto(f"{live.django_url}/chats/")
    expect(page.locator("#room-list-page")).to_have_attribute("data-feed-ready", "true")
    alice_page = open_room(live_room, before_load=sign_alice).page
    alice_page.goto(f"{live.django_url}/chats/new/")
    name = f"Plans {secrets.token_hex(3)}"
    alice_page.fill("#id_name", name)
    alice_page.locator("input[name=visibility][value=private]").check()
    alice_page.locator("form button[type=submit]").last.click()
    alice_page.wait_for_url(lambda url: url.rstrip("/").endswith(name.lower().replace(" ", "-")))
    alice_page.goto(alice_page.url.rstrip("/") + "/members/")
    alice_page.fill("input[name=username]", bob)
    alice_page.locator("form:has(input[name=username]) button[type=submit]").click()
    invitation = page.locator(".room-card.invitation").filter(has_text=name)
    expect(invitation).to_have_count(1)
    expect(invitation.get_by_role("button", name="Accept")).to_be_visible()
