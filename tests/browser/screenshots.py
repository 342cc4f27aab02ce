"""Screenshots of a room for the docs: `.venv/bin/python -m tests.browser.screenshots`.

Starts the real system (tests.support.live) on free ports, seeds a short conversation, opens the
room in Debian's Chromium at desktop (1280x800) and phone (390x844) sizes, and at desktop size
with a dark colour-scheme preference, and writes docs/screenshots/room-desktop.png,
room-phone.png and room-dark.png.
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
CONVERSATION = [
    ("alice", "Morning all! Is the release still planned for Thursday?"),
    ("bob", "Yes, unless the migration test finds something.\nI'll know by noon."),
    ("carol", "Notes from yesterday are here: https://example.org/notes/2026-11-21"),
    ("alice", "Great, thanks. I'll prepare the announcement draft."),
    ("bob", "<b>Reminder</b>: bodies are plain text, so this shows the tags as typed."),
]

log = logging.getLogger("screenshots")


def seed(live: LiveSystem, slug: str) -> None:
    """Store the demo conversation through Django's internal batch API, as the chat server does."""
    items = [
        {
            "room": slug,
            "nonce": f"demo-{i}",
            "body": body,
            "name": name,
            "uid": f"g:{i:016x}",
            "user_id": None,
            "guest": True,
        }
        for i, (name, body) in enumerate(CONVERSATION)
    ]
    response = live.internal_post(live.django_url, "/internal/messages/batch/", {"messages": items})
    response.raise_for_status()


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
                    context = browser.new_context(
                        viewport=size, device_scale_factor=1, color_scheme=scheme
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
                    context.close()
                other.close()
            finally:
                browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
