"""How the conversation reads (issue 13, "The room page"): day dividers ("Today", "Yesterday",
or the date) and author groups, the same live and after a reload; a grouped message's full time
is still reachable by keyboard; times of day without a leading zero in 12-hour locales and in
the 24-hour form elsewhere (Intl.DateTimeFormat, hour "numeric").
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

ZONE = "America/New_York"

# What the list shows, top to bottom: ("day", label) or ("msg", body, continued).
LIST_SHAPE = """() => [...document.querySelectorAll("#message-list > li")].map((li) =>
  li.classList.contains("day-divider")
    ? ["day", li.textContent.trim()]
    : ["msg", li.querySelector(".body").textContent, li.classList.contains("continued")])"""


def set_sent_at(live, ids_and_times: dict[int, datetime]) -> None:
    """Back-date stored messages (the ORM, as an operator's data fix would)."""
    lines = ["from datetime import datetime", "from chat.models import Message"]
    for message_id, when in ids_and_times.items():
        lines.append(
            f"Message.objects.filter(id={message_id})"
            f".update(sent_at=datetime.fromisoformat({when.isoformat()!r}))"
        )
    live.shell("\n".join(lines) + "\n")


def date_label(day: datetime, today: datetime) -> str:
    """The divider's words for an older day in en-US ("Saturday, November 28")."""
    label = f"{day:%A}, {day:%B} {day.day}"
    return label if day.year == today.year else f"{label}, {day.year}"


def test_day_dividers_and_groups_live_and_after_reload(open_room, live_room, live):
    """Three messages of one author three days ago within two minutes (one group), one
    yesterday, and today's: dividers with the date, "Yesterday" and "Today", each once; live
    messages join today's part (a run of the reader's own forms a group), and a reload draws
    exactly the same list. Tab reaches a grouped message's time, which then shows with its full
    date."""
    zone = ZoneInfo(ZONE)
    today = datetime.now(zone)
    old = (today - timedelta(days=3)).replace(hour=10, minute=0, second=0, microsecond=0)
    yesterday = (today - timedelta(days=1)).replace(hour=23, minute=30, second=0, microsecond=0)
    stored = live.store_messages(live_room, 4, body="early")
    set_sent_at(
        live,
        {
            stored[0]["id"]: old,
            stored[1]["id"]: old + timedelta(minutes=1),
            stored[2]["id"]: old + timedelta(minutes=2),
            stored[3]["id"]: yesterday,
        },
    )
    reader = open_room(live_room, locale="en-US", timezone_id=ZONE)
    other = open_room(live_room, locale="en-US", timezone_id=ZONE)
    other.send("from someone else")
    expect(reader.message("from someone else")).to_have_count(1)
    reader.send("mine, first")
    reader.send("mine, second")
    expect(reader.message("mine, second")).to_have_count(1)
    expect(reader.page.locator("#message-list li.pending")).to_have_count(0)

    expected = [
        ["day", date_label(old, today)],
        ["msg", "early 0", False],
        ["msg", "early 1", True],
        ["msg", "early 2", True],
        ["day", "Yesterday"],
        ["msg", "early 3", False],
        ["day", "Today"],
        ["msg", "from someone else", False],
        ["msg", "mine, first", False],
        ["msg", "mine, second", True],
    ]
    reader.page.wait_for_function(
        f"(expected) => JSON.stringify(({LIST_SHAPE})()) === JSON.stringify(expected)",
        arg=expected,
        timeout=10_000,
    )
    reader.page.reload()
    reader.wait_live()
    assert reader.page.evaluate(LIST_SHAPE) == expected

    # The grouped message hides its name line, but its time is one Tab away and shows itself.
    page = reader.page
    grouped = reader.message("early 1")
    time = grouped.locator("time")
    assert time.evaluate("el => getComputedStyle(el).opacity") == "0"
    reader.message("early 0").locator("time").focus()
    # Past the previous message's own controls (its React button) to this one's time.
    for _ in range(4):
        page.keyboard.press("Tab")
        if time.evaluate("el => el === document.activeElement"):
            break
    expect(time).to_be_focused()
    assert time.evaluate("el => getComputedStyle(el).opacity") == "1"
    title = time.get_attribute("title") or ""
    assert str(old.year) in title and "10:01" in title
    assert title in time.evaluate("el => getComputedStyle(el, '::after').content")
    # Screen readers still get the author of every message.
    expect(grouped.locator(".author")).to_have_text("bulk")


@pytest.mark.parametrize(
    ("locale", "morning", "afternoon"),
    [
        ("en-US", r"9:05\sAM", r"2:30\sPM"),
        ("en-GB", r"0?9:05", r"14:30"),
        ("de-DE", r"0?9:05", r"14:30"),
    ],
)
def test_times_of_day_follow_the_locale_without_a_leading_zero_in_12_hour_ones(
    open_room, live_room, live, locale, morning, afternoon
):
    """A 12-hour locale shows "9:05 AM" (never "09:05 AM"); 24-hour locales their own 24-hour
    form ("14:30"; Chromium writes "9:05" for en-GB and de-DE)."""
    zone = ZoneInfo(ZONE)
    day = datetime.now(zone).replace(second=0, microsecond=0)
    # One room for every locale (live_room's slug is cut short): each its own messages.
    stored = live.store_messages(live_room, 2, body=f"timed-{locale}")
    set_sent_at(
        live,
        {
            stored[0]["id"]: day.replace(hour=9, minute=5),
            stored[1]["id"]: day.replace(hour=14, minute=30),
        },
    )
    reader = open_room(live_room, locale=locale, timezone_id=ZONE)
    expect(reader.message(f"timed-{locale} 0").locator("time")).to_have_text(
        re.compile(rf"^{morning}$")
    )
    # The second is grouped (hidden until focused) but carries the same kind of label.
    expect(reader.message(f"timed-{locale} 1").locator("time")).to_have_text(
        re.compile(rf"^{afternoon}$")
    )
