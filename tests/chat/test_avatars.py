"""Avatars: one rule on both sides (chat/avatars.py here, static/chat/client/avatar.js in
tests/js/avatar.test.js, both against tests/contract/avatar_vectors.json), colours that keep the
initials readable in light and dark mode, and the server-rendered page drawing them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.test import Client

from chat.avatars import PALETTE_SIZE, avatar, fnv1a32
from chat.models import Message

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests/contract/avatar_vectors.json").read_text("utf-8"))
CSS = (ROOT / "chat/static/chat/avatar.css").read_text("utf-8")


def test_fnv1a32_matches_published_and_shared_vectors():
    """FNV-1a 32 (published values for "a" and "foobar"), and every shared vector."""
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968
    for vector in VECTORS["fnv1a32"]:
        assert fnv1a32(vector["text"].encode()) == vector["hash"]


@pytest.mark.parametrize("vector", VECTORS["avatars"], ids=lambda v: f"{v['uid']}-{v['name']}")
def test_avatar_of_each_worked_example(vector):
    """Initials and colour of each worked example (the browser checks the same file)."""
    assert avatar(vector["uid"], vector["name"]) == type(avatar("", ""))(
        vector["initials"], vector["colour"]
    )


def test_colour_follows_the_id_not_the_name():
    """A rename keeps the colour; the name decides only when there is no id (old rows)."""
    assert avatar("u:5", "alice").colour == avatar("u:5", "Zed").colour
    assert avatar("", "alice").colour == avatar("", "alice").colour
    assert {avatar(f"u:{n}", "x").colour for n in range(1, 200)} == set(range(PALETTE_SIZE))


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2.x contrast ratio of two #rrggbb colours."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _palette(css: str) -> tuple[str, dict[int, str]]:
    text = re.search(r"\.avatar \{[^}]*?color: (#[0-9a-f]{6});", css).group(1)
    colours = {
        int(n): c for n, c in re.findall(r"\.avatar-c(\d+) \{ background: (#[0-9a-f]{6}); \}", css)
    }
    return text, colours


def test_every_palette_colour_keeps_initials_readable_in_light_and_dark_mode():
    """Each of the 12 classes, light and dark, is at least 4.5:1 against its initials' colour."""
    light_css, dark_css = CSS.split("@media (prefers-color-scheme: dark)")
    for css in (light_css, dark_css):
        text, colours = _palette(css)
        assert sorted(colours) == list(range(PALETTE_SIZE))
        for index, background in colours.items():
            assert contrast(text, background) >= 4.5, (index, text, background)


def test_contrast_helper_can_fail():
    """The check above is not vacuous: a pale colour under white initials fails it."""
    assert contrast("#ffffff", "#fcd34d") < 4.5


def test_the_room_page_draws_each_authors_avatar_beside_the_message(lobby):
    """Server-rendered messages start with the author's avatar (hidden from screen readers)."""
    Message.objects.create(
        room=lobby, author_name="Bob Builder", author_uid="u:77", body="hi", nonce="n1"
    )
    html = Client().get("/chats/lobby/").content.decode()
    expected = avatar("u:77", "Bob Builder")
    assert (
        f'<span class="avatar avatar-c{expected.colour}" aria-hidden="true">BB</span>'
        '<bdi class="author" dir="auto">Bob Builder</bdi>'
    ) in html
