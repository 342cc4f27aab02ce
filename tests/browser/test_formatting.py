"""Message formatting in real Chromium, two readers (two contexts): what the sender typed is
rendered by Django once, shown identically live and after a reload, code blocks get a working,
keyboard-reachable copy button, and the hostile corpus (tests/support/xss.py) runs nothing.

The room page requires Trusted Types and forbids inline script (chat/views.py, settings): each
page records every CSP violation, so a payload that reached the DOM and was only stopped by the
policy still fails the test; the defences before the policy must hold on their own.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser import test_axe
from tests.browser.test_axe import assert_no_violations
from tests.browser.test_catchup import refuse_websockets
from tests.support.xss import CORPUS

pytestmark = pytest.mark.browser

# The axe tests' page fixture (a context that lets axe in past the CSP).
axe_page = test_axe.axe_page

FORMATTED = (
    "**bold** *italic* ~~struck~~ `inline <code>`\n"
    "> quoted\n"
    "\n"
    "- one\n"
    "- two\n"
    "\n"
    "```python\n"
    "print('a very long line that has to scroll sideways rather than wrap', 1 + 1) # "
    + "x"
    * 80
    + "\n"
    "```\n"
    "[docs](https://example.org/docs) and https://example.org/bare"
)

WATCH = """
window.__xss = 0;
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`);
});
"""

DOM_AUDIT = """() => {
  const list = document.querySelector("#message-list");
  const bad = [];
  for (const el of list.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      if (attr.name.toLowerCase().startsWith("on")) bad.push(`${el.tagName} ${attr.name}`);
    }
    if (["IMG", "SCRIPT", "IFRAME", "SVG", "MATH", "STYLE", "OBJECT", "EMBED", "FORM",
         "DETAILS"].includes(el.tagName.toUpperCase())) bad.push(el.tagName);
    if (el.tagName === "A" && el.hasAttribute("href")) {
      const protocol = new URL(el.getAttribute("href"), location.href).protocol;
      if (!["http:", "https:", "mailto:"].includes(protocol)) bad.push(`href ${protocol}`);
    }
  }
  return bad;
}"""


def watched(open_room, slug: str):
    """A reader whose page records, from before it loads: the XSS flag, every CSP violation
    (`window.__violations`) and console errors (`chat.console_errors`)."""
    errors: list[str] = []

    def before(context: BrowserContext, page: Page) -> None:
        page.add_init_script(WATCH)
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))

    chat = open_room(slug, before_load=before)
    chat.console_errors = errors
    return chat


def stored_item(chat, body_text: str):
    """The stored (`data-id`) item whose source (`data-body`) is `body_text`."""
    return chat.page.locator("#message-list > li.message[data-id]").filter(
        has=chat.page.locator(f".body[data-body={json_attr(body_text)}]")
    )


def json_attr(value: str) -> str:
    """A CSS attribute value literal for `value` (quotes and backslashes escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\a ")
    return f'"{escaped}"'


def body_html(chat, body_text: str) -> str:
    item = stored_item(chat, body_text)
    expect(item).to_have_count(1)
    return item.locator(".body").inner_html()


def assert_clean(chat) -> None:
    """Nothing ran, nothing was blocked, nothing dangerous is in the list."""
    assert chat.page.evaluate("window.__xss") == 0
    assert chat.page.evaluate("window.__violations") == []
    assert chat.dialogs == []
    assert chat.page.evaluate(DOM_AUDIT) == []
    assert chat.console_errors == []


def test_formatting_is_the_same_live_and_after_reload(open_room, live_room):
    """The sender's own copy (pending, then stored), the other readers' live copies (socket and
    long poll) and a reloaded page show the same body HTML, built from the server's rendering:
    every construct of the subset, links with rel/target, dir="auto", the code block's copy
    button."""
    alice = watched(open_room, live_room)
    bob = watched(open_room, live_room)
    poller = open_room(live_room, wait_live=False, before_load=refuse_websockets)
    expect(poller.state).to_have_text("Live (polling)")
    alice.send(FORMATTED)

    live_bob = body_html(bob, FORMATTED)
    assert body_html(poller, FORMATTED) == live_bob  # a long-poll answer carries the same html
    live_alice = body_html(alice, FORMATTED)
    body = stored_item(bob, FORMATTED).locator(".body")
    expect(body).to_have_attribute("dir", "auto")
    for selector, count in (
        ("strong", 1),
        ("em", 1),
        ("s", 1),
        ("p > code", 1),
        ("blockquote", 1),
        ("ul > li", 2),
        ("pre > code.language-python", 1),
        ("button.copy-code", 1),
    ):
        expect(body.locator(selector)).to_have_count(count)
    expect(body.locator("code").first).to_have_text("inline <code>")
    links = body.locator("a")
    expect(links).to_have_count(2)
    for index, href in enumerate(["https://example.org/docs", "https://example.org/bare"]):
        expect(links.nth(index)).to_have_attribute("href", href)
        expect(links.nth(index)).to_have_attribute("rel", "nofollow noopener noreferrer ugc")
        expect(links.nth(index)).to_have_attribute("target", "_blank")
    # The code block scrolls sideways instead of wrapping.
    pre = body.locator("pre")
    assert pre.evaluate("el => el.scrollWidth > el.clientWidth")
    assert pre.evaluate("el => getComputedStyle(el).overflowX") == "auto"

    bob.page.reload()
    bob.wait_live()
    assert body_html(bob, FORMATTED) == live_bob == live_alice
    for chat in (alice, bob):
        assert_clean(chat)


def test_an_edit_is_rendered_again_for_everyone(open_room, live_room):
    """Editing a formatted message: the edit box starts from the source (not the rendered
    text), and both readers then show the new rendering, the same as after a reload."""
    alice = watched(open_room, live_room)
    bob = watched(open_room, live_room)
    alice.send("*draft*")
    item = stored_item(alice, "*draft*")
    expect(item.locator(".body em")).to_have_text("draft")
    item.hover()
    item.get_by_role("button", name="Edit your message").click()
    box = alice.page.get_by_role("textbox", name="Edit message")
    expect(box).to_have_value("*draft*")
    box.fill("**final** `x`")
    box.press("Enter")
    for chat in (alice, bob):
        expect(stored_item(chat, "**final** `x`").locator(".body strong")).to_have_text("final")
    live_html = body_html(bob, "**final** `x`")
    bob.page.reload()
    bob.wait_live()
    assert body_html(bob, "**final** `x`") == live_html
    for chat in (alice, bob):
        assert_clean(chat)


def test_copy_button_copies_the_code_by_keyboard(open_room, live_room, live):
    """The copy button is a real button reached with Tab from the code block's message, works
    with Enter, and puts exactly the code (not the button's label) on the clipboard."""

    def clipboard(context: BrowserContext, page: Page) -> None:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.django_url)

    alice = open_room(live_room, before_load=clipboard)
    code = "git log --oneline | head -3\necho 'done'"
    alice.send(f"```sh\n{code}\n```")
    item = stored_item(alice, f"```sh\n{code}\n```")
    button = item.locator("button.copy-code")
    expect(button).to_have_count(1)
    expect(button).to_have_accessible_name("Copy code")
    pre = item.locator("pre")
    expect(pre).to_have_attribute("tabindex", "0")
    # From the code block, Shift+Tab reaches the button (it comes first in the block).
    pre.focus()
    alice.page.keyboard.press("Shift+Tab")
    expect(button).to_be_focused()
    alice.page.keyboard.press("Enter")
    expect(button).to_have_text("Copied")
    assert alice.page.evaluate("navigator.clipboard.readText()") == code + "\n"
    expect(button).to_have_text("Copy", timeout=5000)


def test_hostile_corpus_runs_nothing_live_or_after_reload(open_room, live_room, live):
    """Every body of the XSS corpus, typed by one reader: in the sender's page, the other
    reader's live page and after a reload, no script runs (flag, dialogs), the policy blocks
    nothing (nothing got that far), no element carries a handler or a script link, every
    message shows its text, and both pages keep working."""
    alice = watched(open_room, live_room)
    bob = watched(open_room, live_room)
    for body in CORPUS:
        alice.send(body)
    stored = bob.page.locator("#message-list > li.message[data-id]")
    expect(stored).to_have_count(len(CORPUS), timeout=90_000)
    expect(alice.page.locator("#message-list > li.pending")).to_have_count(0, timeout=30_000)
    assert sorted(m["body"] for m in live.stored_messages(live_room)) == sorted(
        body.strip() for body in CORPUS
    )
    for chat in (alice, bob):
        assert_clean(chat)
    empty = stored.evaluate_all(
        "items => items.filter(li => !li.querySelector('.body').textContent.trim()).length"
    )
    assert empty == 0
    live_html = stored.evaluate_all("items => items.map(li => li.querySelector('.body').innerHTML)")

    bob.page.reload()
    bob.wait_live()
    expect(stored).to_have_count(len(CORPUS))
    assert_clean(bob)
    assert (
        stored.evaluate_all("items => items.map(li => li.querySelector('.body').innerHTML)")
        == live_html
    )

    bob.send("still usable")
    expect(alice.message("still usable")).to_have_count(1)
    expect(bob.message("still usable")).to_have_count(1)
    assert re.fullmatch(r"\d+", stored_item(bob, "still usable").get_attribute("data-id") or "")
    for chat in (alice, bob):
        assert_clean(chat)


def test_room_page_refuses_html_strings_outside_the_client_policy(open_room, live_room):
    """Trusted Types are enforced on the room page: a plain string given to innerHTML or
    insertAdjacentHTML throws, and no second policy can be created (only the client's
    `chat-html`, already taken by richtext.js)."""
    alice = open_room(live_room)
    refused = alice.page.evaluate(
        """() => {
          const outcomes = {};
          const tries = {
            innerHTML: () => { document.createElement("div").innerHTML = "<b>x</b>"; },
            insertAdjacentHTML: () => document.body.insertAdjacentHTML("beforeend", "<b>x</b>"),
            otherPolicy: () => trustedTypes.createPolicy("other", { createHTML: (s) => s }),
            samePolicyAgain: () => trustedTypes.createPolicy("chat-html", { createHTML: (s) => s }),
          };
          for (const [name, attempt] of Object.entries(tries)) {
            try { attempt(); outcomes[name] = "allowed"; } catch (e) { outcomes[name] = e.name; }
          }
          return outcomes;
        }"""
    )
    assert refused == {
        "innerHTML": "TypeError",
        "insertAdjacentHTML": "TypeError",
        "otherPolicy": "TypeError",
        "samePolicyAgain": "TypeError",
    }


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_formatted_messages_have_no_axe_violations(axe_page, live, live_room, color_scheme):
    """A stored and a live formatted message (code block with its copy button, quote, list,
    links, inline code) pass every axe rule, contrast included, in light and dark mode."""
    live.store_messages(live_room, 1, body=FORMATTED + "\n\nstored")
    page = axe_page(f"{live.django_url}/chats/{live_room}/", color_scheme=color_scheme)
    expect(page.locator("#connection-state")).to_have_text("Live")
    box = page.locator("#composer-input")
    box.fill(FORMATTED)
    box.press("Enter")
    expect(page.locator("#message-list li.pending")).to_have_count(0)
    # (Both color schemes share the room: the slug is cut before the parameter.)
    for item in (
        page.locator("#message-list > li.message").first,
        page.locator("#message-list > li.message").last,
    ):
        expect(item.locator("button.copy-code")).to_have_count(1)
    assert_no_violations(page)
