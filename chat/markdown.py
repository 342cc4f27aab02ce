"""Message formatting: a message body (Markdown source) -> the HTML every reader is shown.

Called once when a message is stored (``Message.save``, and the internal batch endpoint for its
``bulk_create``) and again when its body is edited; the result is stored beside the source
(``Message.html``) and passed through the chat server untouched. ``body`` stays the source: the
edit box, search and notifications read it.

Two steps, each with a well-kept library, so neither has to be right alone:

1. **Parse** with markdown-it-py, a CommonMark parser, with raw HTML off: HTML blocks and inline
   HTML are text (CommonMark 0.31, sections 4.6 and 6.6, https://spec.commonmark.org/0.31.2/).
   Only a chat's subset is on: emphasis, strong, inline code, fenced code, block quotes, lists,
   links and autolinks (CommonMark), strikethrough (GitHub Flavored Markdown's extension,
   https://github.github.com/gfm/#strikethrough-extension-), and bare ``http(s)://`` URLs made
   links by linkify-it-py (https://github.com/markdown-it/linkify-it; no "fuzzy" links, so
   ``file.py`` stays text, as before this module). Headings, tables, thematic breaks and
   indented code are off (a line starting with ``#`` or four spaces is just text in a chat);
   images are off, so ``![alt](url)`` is text followed by a plain link, never an ``<img>``. A
   line break in the source is a line break (``breaks``), as chat products do. Nesting of
   block quotes, lists and emphasis is capped (``maxNesting``, ``MAX_NESTING``): deeper input
   is left as text, which also bounds the parser's work on pathological input.
2. **Sanitize** the parser's output with nh3 (the ammonia HTML sanitizer) against an allowlist:
   the tags and attributes above and nothing else, link schemes ``http``, ``https`` and
   ``mailto`` only (OWASP Cross Site Scripting Prevention Cheat Sheet, "Rule #7" and the HTML
   sanitization section, https://cheatsheetseries.owasp.org/cheatsheets/
   Cross_Site_Scripting_Prevention_Cheat_Sheet.html), and every link gets
   ``rel="nofollow noopener noreferrer ugc"`` (HTML Standard link types, and ``ugc`` for
   user-generated content) and ``target="_blank"``.

The parser's own link check is replaced by the same scheme allowlist, applied the way a browser
reads a URL (WHATWG URL Standard, "basic URL parser": leading and trailing C0 controls and
spaces are dropped, tabs and newlines anywhere are removed, the scheme is case-insensitive; the
destination has already had its character references decoded by the parser, so
``jav&#x61;script:`` is judged as ``javascript:``). A refused destination, and a relative one,
leaves the link as text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from html import escape

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.token import Token

# Block quotes in lists in emphasis...: deeper than this is left as text (markdown-it's own
# bound on its token nesting; the "commonmark" preset uses 20). It bounds the output's element
# nesting and the parser's work whatever the input.
MAX_NESTING = 20
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener noreferrer ugc"

# The parser rules this subset leaves off (markdown-it-py's rule names).
_OFF = ("table", "code", "hr", "html_block", "heading", "lheading", "image", "html_inline")

ALLOWED_TAGS = frozenset(
    {"p", "br", "strong", "em", "s", "code", "pre", "blockquote", "ul", "ol", "li", "a", "span"}
)
# No attribute on any other tag ("*": none, not even nh3's default `lang` and `title`).
_ALLOWED_ATTRIBUTES = {
    "*": set(),
    "a": {"href", "title"},
    "ol": {"start"},
    "code": {"class"},
    "span": {"class", "data-mention"},
}
# `@name` mentions a person (chat/attention.py records them with this rule; the client's
# render.js draws rows without html with the same one): not after a letter, digit, `_` or `@`,
# so `a@b.org` is no mention; a trailing dot is punctuation, not part of the name.
MENTION_RE = re.compile(r"(?<![\w@])@([\w.+-]{1,150})")
_MENTION_NAME_RE = re.compile(r"[\w.+-]{1,150}")
# A fenced block's info string becomes `class="language-<word>"`; anything else is dropped.
_LANGUAGE_CLASS_RE = re.compile(r"language-[A-Za-z0-9_+#.-]{1,40}")
_START_RE = re.compile(r"[0-9]{1,9}")
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_TAB_OR_NEWLINE_RE = re.compile(r"[\t\n\r]")
# C0 controls and space, which a URL parser strips from both ends.
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))


def link_allowed(url: str) -> bool:
    """True when ``url`` (a link destination) has an allowed scheme (``LINK_SCHEMES``).

    Read as a browser would (see the module docstring): ``" \\x01JaVa\\tScript:x"`` is a
    ``javascript:`` URL and is refused; a relative URL (no scheme) is refused too.
    """
    cleaned = _TAB_OR_NEWLINE_RE.sub("", url).strip(_C0_OR_SPACE)
    match = _SCHEME_RE.match(cleaned)
    return match is not None and match.group(1).lower() in LINK_SCHEMES


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    # Called by nh3 for every attribute the allowlist kept.
    if tag == "code" and attribute == "class":
        return value if _LANGUAGE_CLASS_RE.fullmatch(value) else None
    if tag == "ol" and attribute == "start":
        return value if _START_RE.fullmatch(value) else None
    if tag == "a" and attribute == "href":
        return value if link_allowed(value) else None
    if tag == "span" and attribute == "class":
        return value if value == "mention" else None
    if tag == "span" and attribute == "data-mention":
        return value if _MENTION_NAME_RE.fullmatch(value) else None
    return value


def _mention_tokens(state: StateCore) -> None:
    """markdown-it core rule: each ``@name`` in plain text (not in code, not in a link) becomes
    ``<span class="mention" data-mention="name">@name</span>`` (the name lower-cased), which
    mentions.js marks when it names the reader. The span is built here, escaped; the sanitizer
    still checks it like any other HTML."""
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        children = []
        in_link = 0
        for token in block.children:
            if token.type == "link_open":
                in_link += 1
            elif token.type == "link_close":
                in_link -= 1
            if token.type != "text" or in_link or "@" not in token.content:
                children.append(token)
                continue
            text, last = token.content, 0
            for match in MENTION_RE.finditer(text):
                name = match.group(1).rstrip(".")
                if not name:
                    continue
                if match.start() > last:
                    children.append(_text_token(text[last : match.start()]))
                span = Token("html_inline", "", 0)
                span.content = (
                    f'<span class="mention" data-mention="{escape(name.lower())}">'
                    f"@{escape(name)}</span>"
                )
                children.append(span)
                last = match.start() + 1 + len(name)
            if last < len(text):
                children.append(_text_token(text[last:]))
        block.children = children


def _text_token(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    parser = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": True, "breaks": True, "maxNesting": MAX_NESTING},
    )
    parser.enable(["strikethrough", "linkify"])
    parser.disable(list(_OFF))
    # Bare URLs only with a scheme (`https://x.org`, not `x.org` or `a@b.org`), as before.
    parser.linkify.set({"fuzzy_link": False, "fuzzy_email": False})
    parser.validateLink = link_allowed
    parser.core.ruler.push("mentions", _mention_tokens)
    return parser


@lru_cache(maxsize=1)
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in _ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter,
        url_schemes=set(LINK_SCHEMES),
        link_rel=LINK_REL,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


def sanitize(html: str) -> str:
    """``html`` reduced to the allowlist (step 2): only ``ALLOWED_TAGS``, their listed
    attributes, links with an allowed scheme and ``rel``/``target`` set; the content of
    anything else is kept as text (``<script>`` and ``<style>`` content is dropped)."""
    return _cleaner().clean(html)


def render(body: str) -> str:
    """The sanitized HTML of a message body (Markdown source, at most ``CHAT_MAX_BODY``
    characters); deterministic, never raises for any string. The result holds only
    ``ALLOWED_TAGS``; it is an HTML fragment meant for a ``<div>`` (it may hold block elements).
    """
    return sanitize(_parser().render(body)).strip()
