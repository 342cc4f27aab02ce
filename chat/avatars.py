"""Avatars drawn from initials: the one rule, shared with the browser (client/avatar.js).

No uploads: an avatar is a person's initials on a coloured disc.

- **Colour**: FNV-1a, 32 bits (offset basis 2166136261, prime 16777619), over the UTF-8 bytes
  of the author's stable id (``u:<pk>`` or ``g:<16 hex>``; the name when a message has no id,
  as old guest rows do), modulo :data:`PALETTE_SIZE`. The id, not the name, so a rename keeps
  the colour and two people with similar names still differ. The colours themselves live only in
  static/chat/avatar.css, as classes ``avatar-c0`` ... ``avatar-c11``: a light-mode shade under
  white initials and a dark-mode shade under near-black initials, each pair at least 4.5:1
  (WCAG 2.x AA for text; checked by tests/chat/test_avatars.py).
- **Initials**: the first letter or digit (Unicode general category L* or N*) of the first and
  of the last word of the name that hold one (words are split on separators, general category
  Z*, and on tab, line feed, carriage return, ``-``, ``_`` and ``.``), upper-cased with Unicode's
  default case mapping (so ``ß`` becomes ``SS``); one letter for a one-word name. A name with
  no letter or digit shows its first non-separator character when that is a symbol (``So``,
  e.g. an emoji), else ``?``. Everything is counted in code points, never UTF-16 units.

tests/contract/avatar_vectors.json holds worked examples that this module and avatar.js must
both reproduce (tests/chat/test_avatars.py, tests/js/avatar.test.js).
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

PALETTE_SIZE = 12
FNV_OFFSET = 2166136261
FNV_PRIME = 16777619
_SEPARATORS = frozenset("\t\n\r-_.")


@dataclass(frozen=True)
class Avatar:
    """What a page draws: ``initials`` (1 to a few characters) on colour class ``colour``."""

    initials: str
    colour: int

    @property
    def css_class(self) -> str:
        """The colour's class in static/chat/avatar.css, e.g. ``avatar-c3``."""
        return f"avatar-c{self.colour}"


def fnv1a32(data: bytes) -> int:
    """32-bit FNV-1a of ``data`` (an unsigned integer below 2**32)."""
    value = FNV_OFFSET
    for byte in data:
        value = ((value ^ byte) * FNV_PRIME) & 0xFFFFFFFF
    return value


def colour_index(uid: str, name: str = "") -> int:
    """The palette index (0 to ``PALETTE_SIZE - 1``) of author ``uid`` (``name`` if no uid)."""
    return fnv1a32((uid or name).encode("utf-8")) % PALETTE_SIZE


def _is_separator(char: str) -> bool:
    return char in _SEPARATORS or unicodedata.category(char)[0] == "Z"


def _words(name: str) -> list[str]:
    words, current = [], ""
    for char in name:
        if _is_separator(char):
            if current:
                words.append(current)
            current = ""
        else:
            current += char
    if current:
        words.append(current)
    return words


def _first_alnum(word: str) -> str:
    for char in word:
        if unicodedata.category(char)[0] in "LN":
            return char
    return ""


def initials(name: str) -> str:
    """The initials of display name ``name`` (see the module docstring for the rule)."""
    words = _words(name)
    letters = [letter for letter in map(_first_alnum, words) if letter]
    if not letters:
        first = words[0][0] if words else ""
        return first if first and unicodedata.category(first) == "So" else "?"
    chosen = letters[0] + (letters[-1] if len(letters) > 1 else "")
    return chosen.upper()


def avatar(uid: str, name: str) -> Avatar:
    """The avatar of the author with stable id ``uid`` shown as ``name``."""
    return Avatar(initials=initials(name), colour=colour_index(uid, name))
