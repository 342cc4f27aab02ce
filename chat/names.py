"""Display names: which characters a name may hold, and when two names are "the same name".

Every name (guest names, usernames at sign-up and in the admin) passes :func:`name_error`; two
names clash when their :func:`name_key` is equal. The key follows Unicode's own recipes rather
than a table of our own:

1. NFKC normalisation and full case folding (Unicode Standard, chapter 3.13, "Default Caseless
   Matching" / ``NFKC_Casefold`` in UAX #44), so ``Admin``, ``ADMIN`` and full-width ``ａｄｍｉｎ``
   are one name;
2. removal of every ``Default_Ignorable_Code_Point`` (UAX #44; zero-width space and joiner, bidi
   marks, variation selectors, ...), so invisible characters never make a name "different";
3. the confusable skeleton of UTS #39, "Unicode Security Mechanisms", section 4 "Confusable
   Detection" (https://www.unicode.org/reports/tr39/#Confusable_Detection), computed by ICU's
   ``SpoofChecker.getSkeleton`` (PyICU) from Unicode's ``confusables.txt``, so a Cyrillic ``а``
   in ``аdmin`` or ``rn`` for ``m`` cannot pass for ``admin``; then case folded once more, since
   some skeleton prototypes are capitals (``0`` becomes ``O``).

Case is folded before the skeleton is taken, so confusables that differ only by case (capital
``I`` and small ``l``) are compared as their folded forms (``i`` and ``l``, which differ).
"""

from __future__ import annotations

import unicodedata

import icu

MAX_KEY_LENGTH = 1024

# Bidi embeddings/overrides (U+202A-202E), isolates (U+2066-2069), the implicit marks LRM/RLM
# (U+200E/200F) and the Arabic letter mark (U+061C): UAX #9, "Unicode Bidirectional Algorithm",
# section 2 "Directional Formatting Characters". In a name they can reorder the text shown
# around it, so they are refused outright rather than only ignored when comparing.
BIDI_CONTROLS = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\u200e", "\u200f", "\u061c"]
)

_IGNORABLE = icu.UnicodeSet("[:Default_Ignorable_Code_Point:]")
_SPOOF = icu.SpoofChecker()


def name_error(name: str) -> str | None:
    """A human sentence saying why ``name`` cannot be a display name, or None when it can.

    Refused: control characters (general category ``Cc``, NUL included), bidi controls
    (:data:`BIDI_CONTROLS`), surrogate code points (category ``Cs``; PostgreSQL and UTF-8 cannot
    store a lone surrogate), and names with nothing visible left once default-ignorable
    characters and white space are removed. Length is the caller's rule.
    """
    for char in name:
        category = unicodedata.category(char)
        if category == "Cc":
            return "A name cannot contain control characters."
        if category == "Cs":
            return "A name cannot contain surrogate code points."
        if char in BIDI_CONTROLS:
            return "A name cannot contain bidirectional text controls."
    if not _strip_ignorable(unicodedata.normalize("NFKC", name)).strip():
        return "A name needs at least one visible character."
    return None


def _strip_ignorable(text: str) -> str:
    return "".join(char for char in text if not _IGNORABLE.contains(char))


def name_key(name: str) -> str:
    """The comparison key of a display name (see the module docstring for the steps).

    ``name_key(a) == name_key(b)`` means that ``a`` and ``b`` look like the same name and must
    not belong to two different people. The key is at most :data:`MAX_KEY_LENGTH` characters
    (NFKC may expand a character up to 18 times; a longer key is cut, which only makes more
    names clash). Surrounding white space is not part of a name.
    """
    folded = unicodedata.normalize("NFKC", name.strip()).casefold()
    folded = unicodedata.normalize("NFKC", folded)  # case folding may leave a non-NFKC string
    visible = _strip_ignorable(folded).strip()
    skeleton = _SPOOF.getSkeleton(0, visible)
    return unicodedata.normalize("NFKC", skeleton.casefold())[:MAX_KEY_LENGTH]
