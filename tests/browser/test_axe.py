"""axe-core (installed from npm by `make js-deps`, version pinned in package.json) run inside
real Chromium on the site's pages: any violation fails the test, with axe's own report.

The pages' CSP allows no inline script, so these contexts bypass CSP to inject axe; nothing else
about the pages changes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.people import fill_sign_in, new_user

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
# 1280x800 at 200 % zoom: a 640x400 CSS viewport at device scale factor 2.
ZOOM200 = {"width": 640, "height": 400}


@pytest.fixture
def axe_page(browser: Browser) -> Iterator:
    """Opens a page (own context) ready for axe; closes every context afterwards."""
    if not AXE.exists():
        pytest.fail(
            f"axe-core not found at {AXE}: run `make js-deps` (npm ci). It is not optional."
        )
    contexts = []

    def _open(url: str, viewport=None, color_scheme: str = "light") -> Page:
        size = viewport or DESKTOP
        context = browser.new_context(
            viewport=size,
            device_scale_factor=2 if size == ZOOM200 else 1,
            color_scheme=color_scheme,
            bypass_csp=True,
        )
        contexts.append(context)
        page = context.new_page()
        page.goto(url)
        return page

    yield _open
    for context in contexts:
        context.close()


def assert_no_violations(page: Page) -> None:
    """Runs axe on the whole page (every rule axe enables by default, and WCAG 2.5.3 "label in
    name", which axe ships as experimental and off) and fails on any violation, listing each
    rule with the elements it found."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => await axe.run(document, "
        "{rules: {'label-content-name-mismatch': {enabled: true}}})"
    )
    violations = [
        {
            "id": v["id"],
            "impact": v["impact"],
            "help": v["help"],
            "nodes": [
                {"target": n["target"], "summary": n.get("failureSummary", "")}
                for n in v["nodes"][:5]
            ],
        }
        for v in result["violations"]
    ]
    assert violations == [], json.dumps(violations, indent=2)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_room_list_has_no_axe_violations(axe_page, live, live_room, color_scheme):
    page = axe_page(f"{live.django_url}/", color_scheme=color_scheme)
    expect(page.locator("main")).to_be_visible()
    assert_no_violations(page)


@pytest.mark.parametrize(
    ("viewport", "color_scheme"),
    [
        (DESKTOP, "light"),
        (DESKTOP, "dark"),
        (PHONE, "light"),
        (PHONE, "dark"),
        (ZOOM200, "light"),
    ],
    ids=["desktop-light", "desktop-dark", "phone-light", "phone-dark", "zoom200-light"],
)
def test_room_page_has_no_axe_violations(axe_page, live, live_room, viewport, color_scheme):
    """The room page with messages (a guest's group with a day divider, and the reader's own),
    presence and the composer, once live; near the body limit (the counter shows); on small
    windows also with the menu open."""
    live.store_messages(live_room, 3, body="stored")
    page = axe_page(
        f"{live.django_url}/chats/{live_room}/", viewport=viewport, color_scheme=color_scheme
    )
    expect(page.locator("#connection-state")).to_have_text("Live")
    box = page.locator("#composer-input")
    box.fill("my own message")
    box.press("Enter")
    expect(page.locator("#message-list li.pending")).to_have_count(0)
    expect(page.locator("#presence li")).to_have_count(1)
    expect(page.locator("#message-list li.day-divider")).to_have_count(1)
    limit = int(page.locator("#message-list").get_attribute("data-max-body") or "0")
    box.fill("z" * (limit - 5))
    expect(page.locator("#composer-limit")).to_be_visible()
    if viewport != PHONE:
        # A message's tools show on hover (phones use the "⋯" menu): axe judges what is shown.
        page.locator("#message-list li.message").first.hover()
        tool = page.locator("#message-list li.message .message-tool.react").first
        expect(tool).to_be_visible()
    assert_no_violations(page)
    menu = page.get_by_role("button", name="Menu")
    if viewport != DESKTOP:
        menu.click()
        expect(page.locator("#room-menu")).to_be_visible()
        assert_no_violations(page)
    else:
        expect(menu).to_be_hidden()


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_signed_in_room_page_with_mentions_open_has_no_axe_violations(
    axe_page, live, live_room, color_scheme
):
    """What a signed-in reader adds to the room page: the attach button, a message's tools on
    hover, and the list of people to mention open under the composer."""
    username = new_user(live, "axe")
    page = axe_page(f"{live.django_url}/accounts/login/", color_scheme=color_scheme)
    fill_sign_in(live, page, username)
    page.goto(f"{live.django_url}/chats/{live_room}/")
    expect(page.locator("#connection-state")).to_have_text("Live")
    box = page.locator("#composer-input")
    box.fill("hello all")
    box.press("Enter")
    expect(page.locator("#message-list li.pending")).to_have_count(0)
    page.locator("#message-list li.message").first.hover()
    box.press_sequentially("@he")
    expect(page.locator("#mention-options [role=option]")).to_have_text(["@here"])
    assert_no_violations(page)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_search_page_has_no_axe_violations(axe_page, live, live_room, color_scheme):
    """The search page with results (highlighted words, links into the room)."""
    live.store_messages(live_room, 2, body="axe-findable words")
    page = axe_page(f"{live.django_url}/search/?q=findable", color_scheme=color_scheme)
    expect(page.locator(".search-result").first).to_be_visible()
    assert_no_violations(page)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_sign_in_page_has_no_axe_violations(axe_page, live, color_scheme):
    page = axe_page(f"{live.django_url}/accounts/login/", color_scheme=color_scheme)
    expect(page.locator("form")).to_be_visible()
    assert_no_violations(page)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize(
    "path", ["/accounts/password-reset/", "/accounts/password-reset/done/", "/accounts/signup/"]
)
def test_account_pages_have_no_axe_violations(axe_page, live, path, color_scheme):
    """The pages reached from "Forgot password?" and "Sign up", signed out."""
    page = axe_page(f"{live.django_url}{path}", color_scheme=color_scheme)
    expect(page.locator("main h1")).to_be_visible()
    assert_no_violations(page)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("path", ["/accounts/profile/", "/accounts/password-change/"])
def test_signed_in_account_pages_have_no_axe_violations(axe_page, live, path, color_scheme):
    """The profile (avatar, display name form with a refused name's error shown) and the
    password change form, signed in."""
    username = "axe" + secrets.token_hex(3)
    live.create_user(username, "pw-axe-123456789")
    page = axe_page(f"{live.django_url}/accounts/login/", color_scheme=color_scheme)
    page.fill("#id_username", username)
    page.fill("#id_password", "pw-axe-123456789")
    page.locator("form.stacked-form button[type=submit]").click()
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    page.goto(f"{live.django_url}{path}")
    if path == "/accounts/profile/":
        page.fill("#id_display_name", "\u202eevil")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".errorlist")).to_be_visible()
        expect(page.locator(".avatar-large")).to_be_visible()
    expect(page.locator("main h1")).to_be_visible()
    assert_no_violations(page)
