"""Screenshots of a room for the docs: `.venv/bin/python -m tests.browser.screenshots`.

Starts the real system (tests.support.live) on free ports, seeds a short conversation, opens the
room in Debian's Chromium at desktop (1280x800) and phone (390x844) sizes, and at desktop size
with a dark colour-scheme preference, and writes docs/screenshots/room-desktop.png,
room-phone.png (and room-phone-menu.png, its menu open) and room-dark.png. The conversation
starts yesterday (a day divider) and has runs of one author (grouped under one name).
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.live import LiveSystem

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
# name -> (viewport, preferred colour scheme)
SHOTS = {
    "desktop": (DESKTOP, "light"),
    "phone": ({"width": 390, "height": 844}, "light"),
    "dark": (DESKTOP, "dark"),
}
# (name, body); the first YESTERDAY messages are back-dated to yesterday evening.
CONVERSATION = [
    ("carol", "Meeting notes are up: https://example.org/notes/2026-11-30"),
    ("carol", "Anything I missed, add it there."),
    ("alice", "Morning all! Is the release still planned for Thursday?"),
    ("bob", "Yes, unless the migration test finds something."),
    ("bob", "I'll know by noon."),
    ("alice", "Great, thanks. I'll prepare the announcement draft."),
    ("alice", "Who wants to review it?"),
    ("bob", "**Me**: I'll check `make test` on a clean clone. <b>Raw HTML</b> stays text."),
]
YESTERDAY = 2
NAMES = sorted({name for name, _ in CONVERSATION})

log = logging.getLogger("screenshots")


def seed(live: LiveSystem, slug: str) -> None:
    """Store the demo conversation through Django's internal batch API, as the chat server does."""
    items = [
        {
            "room": slug,
            "nonce": f"demo-{i}",
            "body": body,
            "name": name,
            "uid": f"g:{NAMES.index(name):016x}",
            "user_id": None,
            "guest": True,
        }
        for i, (name, body) in enumerate(CONVERSATION)
    ]
    response = live.internal_post(live.django_url, "/internal/messages/batch/", {"messages": items})
    response.raise_for_status()
    ids = [r["message"]["id"] for r in response.json()["results"]]
    # Yesterday evening, minutes apart (the ORM, as an operator's data fix would).
    live.shell(
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from chat.models import Message\n"
        "evening = timezone.localtime().replace(hour=18, minute=40) - timedelta(days=1)\n"
        f"for n, pk in enumerate({ids[:YESTERDAY]!r}):\n"
        "    Message.objects.filter(pk=pk).update(sent_at=evening + timedelta(minutes=n))\n"
    )


def main() -> int:
    """Write every screenshot; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not CHROMIUM.exists():
        log.error("Chromium not found at %s: run `make browser-deps`.", CHROMIUM)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    slug = "lobby"
    with tempfile.TemporaryDirectory() as tmp, LiveSystem(Path(tmp)) as live:
        live.create_room(slug, name="Lobby", guests=True)
        seed(live, slug)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            try:
                other = browser.new_context()
                other_page = other.new_page()
                other_page.goto(f"{live.django_url}/chats/{slug}/")
                expect(other_page.locator("#connection-state")).to_have_text("Live")
                for name, (size, scheme) in SHOTS.items():
                    # The server's zone (UTC): "Yesterday" is the day the seed back-dated.
                    context = browser.new_context(
                        viewport=size,
                        device_scale_factor=1,
                        color_scheme=scheme,
                        locale="en-US",
                        timezone_id="UTC",
                    )
                    page = context.new_page()
                    page.goto(f"{live.django_url}/chats/{slug}/")
                    expect(page.locator("#connection-state")).to_have_text("Live")
                    if name == "desktop":
                        page.locator("#composer-input").fill("Sounds good, see you there.")
                        page.locator("#composer-input").press("Enter")
                    expect(page.locator("#message-list li.pending")).to_have_count(0)
                    # Someone else typing, so the indicator is in the picture. Clients send a
                    # typing notice at most every 2 s, so type for longer than that.
                    other_page.locator("#composer-input").press_sequentially(
                        "ok, on my way", delay=250
                    )
                    expect(page.locator("#typing-indicator")).not_to_have_text("")
                    other_page.locator("#composer-input").fill("")
                    path = OUT / f"room-{name}.png"
                    page.screenshot(path=str(path))
                    log.info("wrote %s", path.relative_to(ROOT))
                    if name == "phone":
                        page.get_by_role("button", name="Menu").click()
                        expect(page.locator("#room-menu")).to_be_visible()
                        path = OUT / f"room-{name}-menu.png"
                        page.screenshot(path=str(path))
                        log.info("wrote %s", path.relative_to(ROOT))
                    context.close()
                other.close()
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
