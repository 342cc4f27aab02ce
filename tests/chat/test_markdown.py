"""The message renderer (chat/markdown.py): each construct of the subset, the link scheme
allowlist against every spelling of `javascript:`, raw HTML as text, no images, and bounded
output on pathological nesting.

The output is read back with :class:`html.parser.HTMLParser`, so an assertion about tags and
attributes sees what a browser would parse, not what a substring search happens to match.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from chat import markdown
from chat.markdown import ALLOWED_TAGS, LINK_REL, MAX_NESTING, link_allowed, render, sanitize
from tests.support.xss import CORPUS, RAW_AND_TRICKS, SCRIPT_LINKS

SAFE_SCHEMES = ("http:", "https:", "mailto:")


class Parsed(HTMLParser):
    """Tags (with attributes), text and the deepest element nesting of an HTML fragment."""

    VOID = {"br"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.depth = 0
        self.max_depth = 0
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record the tag; count nesting for non-void elements."""
        self.tags.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.depth += 1
            self.max_depth = max(self.max_depth, self.depth)

    def handle_endtag(self, tag: str) -> None:
        """Leave an element."""
        if tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        """Collect the text a reader sees."""
        self.text += data

    def names(self) -> list[str]:
        return [tag for tag, _ in self.tags]

    def links(self) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == "a"]


def assert_harmless(html: str) -> Parsed:
    """Only allowlisted tags, no on* attribute, no link outside http/https/mailto."""
    parsed = Parsed(html)
    assert set(parsed.names()) <= ALLOWED_TAGS, html
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")], html
        assert "style" not in attrs and "src" not in attrs, html
        if tag == "a" and "href" in attrs:
            assert (attrs["href"] or "").lower().startswith(SAFE_SCHEMES), html
    return parsed


# Each construct of the subset.


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("**bold** and __bold__", "<p><strong>bold</strong> and <strong>bold</strong></p>"),
        ("*italic* and _italic_", "<p><em>italic</em> and <em>italic</em></p>"),
        ("~~gone~~", "<p><s>gone</s></p>"),
        ("use `a < b` here", "<p>use <code>a &lt; b</code> here</p>"),
        ("*a **b** c*", "<p><em>a <strong>b</strong> c</em></p>"),
        ("one\ntwo", "<p>one<br>\ntwo</p>"),
        ("> quoted\n> text", "<blockquote>\n<p>quoted<br>\ntext</p>\n</blockquote>"),
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
        ("3. c\n4. d", '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>'),
        ("```\nx = 1\n```", "<pre><code>x = 1\n</code></pre>"),
        ("```python\nx = 1\n```", '<pre><code class="language-python">x = 1\n</code></pre>'),
        ("~~~\n**not bold**\n~~~", "<pre><code>**not bold**\n</code></pre>"),
        ("plain text", "<p>plain text</p>"),
    ],
)
def test_each_construct_renders(source, html):
    """Bold, italic, strikethrough, inline and fenced code, quotes, lists, line breaks."""
    assert render(source) == html


def test_links_and_autolinks_get_rel_and_target():
    """Inline links, `<...>` autolinks and bare http(s) URLs are links with
    rel="nofollow noopener noreferrer ugc", opening in a new tab; sentence punctuation after a
    bare URL stays outside it."""
    parsed = assert_harmless(
        render("[docs](https://example.org/a) <http://example.org/b> see https://example.org/c.")
    )
    links = parsed.links()
    assert [link["href"] for link in links] == [
        "https://example.org/a",
        "http://example.org/b",
        "https://example.org/c",
    ]
    for link in links:
        assert link["rel"] == LINK_REL == "nofollow noopener noreferrer ugc"
        assert link["target"] == "_blank"
    assert parsed.text.endswith("https://example.org/c.")


@pytest.mark.parametrize(
    "source",
    ["[mail](mailto:a@example.org)", "<mailto:a@example.org>", "<a@example.org>"],
)
def test_mailto_links_are_allowed(source):
    """mailto: is the third allowed scheme (an explicit link or an autolink)."""
    [link] = assert_harmless(render(source)).links()
    assert link["href"] == "mailto:a@example.org"


def test_fuzzy_links_stay_text():
    """Only URLs with a scheme become links, as before formatting: no `file.py` or bare
    domain or address turned into a link."""
    assert render("open file.py, www.example.org or a@example.org") == (
        "<p>open file.py, www.example.org or a@example.org</p>"
    )


def test_off_constructs_stay_text():
    """Headings, indented code and thematic breaks are not part of a chat's subset."""
    assert render("# not a heading") == "<p># not a heading</p>"
    assert "<h" not in render("title\n===")
    assert "<pre>" not in render("    four spaces")
    assert "<hr" not in render("---\n\nx")


# Links: the scheme allowlist.


@pytest.mark.parametrize("source", SCRIPT_LINKS)
def test_no_script_link_in_any_spelling(source):
    """Inline, reference and autolinks to javascript:, in any case, entity-encoded, after
    spaces or control characters, and data:/vbscript:/file:/relative destinations never become
    an href; the text stays visible."""
    parsed = assert_harmless(render(source))
    assert [link for link in parsed.links() if "href" in link] == []
    assert "script" not in render(source).split(">", 1)[0]  # nothing before the first text
    assert parsed.text.strip()


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://example.org", True),
        ("HTTP://example.org", True),
        ("mailto:a@example.org", True),
        ("javascript:alert(1)", False),
        ("JaVaScRiPt:alert(1)", False),
        (" \x01\x1fjavascript:alert(1)", False),
        ("java\tscript:alert(1)", False),
        ("java\nscript:alert(1)", False),
        ("javascript\r:alert(1)", False),
        ("\x00https://example.org", True),
        ("vbscript:x", False),
        ("data:text/html,x", False),
        ("file:///etc/passwd", False),
        ("/relative", False),
        ("//example.org", False),
        ("", False),
    ],
)
def test_link_allowed_reads_urls_as_a_browser_does(url, allowed):
    """Controls and spaces at the ends and tabs/newlines inside are ignored, case too."""
    assert link_allowed(url) is allowed


# Raw HTML, images, nesting.


@pytest.mark.parametrize("source", RAW_AND_TRICKS)
def test_raw_html_and_tricks_are_harmless(source):
    """Raw HTML is shown as text, never parsed; code spans and blocks keep it as text; quote
    characters cannot break out of an attribute."""
    assert_harmless(render(source))


def test_raw_html_is_shown_as_text():
    """What a reader typed is what every reader sees, tags included."""
    assert render('<b>hi</b> <img src=x onerror="alert(1)">') == (
        '<p>&lt;b&gt;hi&lt;/b&gt; &lt;img src=x onerror="alert(1)"&gt;</p>'
    )
    assert render("<script>alert(1)</script>") == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"


@pytest.mark.parametrize(
    "source",
    [
        "![alt](https://example.org/x.png)",
        "![alt](https://example.org/x.png 'title')",
        "![alt][i]\n\n[i]: https://example.org/x.png",
        "[![alt](https://example.org/x.png)](https://example.org/)",
        "<img src=https://example.org/x.png>",
    ],
)
def test_images_never_become_img(source):
    """Image syntax renders as text and at most a plain link, never an <img>."""
    html = render(source)
    assert "<img" not in html
    assert "img" not in Parsed(html).names()


def test_image_syntax_leaves_a_plain_link():
    """`![alt](url)` shows "!" and a link to the image: nothing is loaded."""
    assert render("![cat](https://example.org/cat.png)") == (
        '<p>!<a href="https://example.org/cat.png" target="_blank" rel="'
        + LINK_REL
        + '">cat</a></p>'
    )


def test_emphasis_around_script_stays_text():
    """Nested emphasis around a <script> tag: the emphasis renders, the tag is text."""
    assert render("***<script>**alert(1)**</script>***") == (
        "<p><em><strong>&lt;script&gt;<strong>alert(1)</strong>&lt;/script&gt;</strong></em></p>"
    )


@pytest.mark.parametrize(
    "source", ["```\nnever closed\n<script>x</script>", "text\n```js\nopen", "> ```\n> inside"]
)
def test_unclosed_fences_run_to_the_end_as_code(source):
    """An unclosed fence is code to the end of its container (CommonMark 4.5): no markup
    inside it is parsed."""
    parsed = assert_harmless(render(source))
    assert "pre" in parsed.names()
    assert "<script>" not in render(source)


PATHOLOGICAL = [
    ">" * 4000,
    "> " * 2000,
    "- " * 2000,
    "1. " * 1333,
    "> - " * 1000,
    "*" * 4000,
    "_" * 4000,
    "*a " * 1333,
    "**" * 2000,
    "~~" * 2000,
    "[" * 4000,
    "[a](" * 1000,
    "![[" * 1333,
    "`" * 4000,
    "<" * 4000,
    "&#" * 2000,
    "*_" * 2000,
    " " * 3999 + "x",
]


@pytest.mark.parametrize("source", PATHOLOGICAL, ids=lambda s: repr(s[:8]))
def test_pathological_nesting_is_bounded(source):
    """4,000 characters built to nest: the output's element nesting stays within the parser's
    cap (MAX_NESTING, plus the innermost paragraph), so the parser's work is bounded too, and the
    output stays small."""
    assert len(source) >= 3999
    html = render(source)
    parsed = assert_harmless(html)
    assert parsed.max_depth <= MAX_NESTING + 1
    assert len(html) <= 5 * len(source)


def test_nesting_cap_applies():
    """Below the cap quotes nest; beyond it the rest is text (the cap is really in force)."""
    assert Parsed(render("> " * 5 + "x")).max_depth == 6  # five quotes and a paragraph
    assert Parsed(render("> " * 100 + "x")).max_depth <= MAX_NESTING + 1


# The second step on its own.


def test_sanitizer_is_a_second_allowlist():
    """Even HTML the parser would never emit is cut to the allowlist by nh3: handlers,
    styles, images, scripts, frames, relative and script links, odd classes and starts."""
    html = sanitize(
        '<a href="javascript:x" onclick="y">a</a><img src=x onerror=z><script>s()</script>'
        '<iframe src="x"></iframe><p style="x" class="y" title="t">p</p><a href="/r">r</a>'
        '<code class="language-x onclick">c</code><ol start="3x"><li>l</li></ol>'
        '<a href="https://example.org" rel="opener" target="_self">ok</a>'
    )
    parsed = assert_harmless(html)
    assert parsed.text == "aprclok"
    assert [link.get("href") for link in parsed.links()] == [None, None, "https://example.org"]
    for link in parsed.links():
        assert link["rel"] == LINK_REL and link["target"] == "_blank"
    assert ("code", {}) in parsed.tags and ("ol", {}) in parsed.tags and ("p", {}) in parsed.tags


@pytest.mark.parametrize("source", CORPUS)
def test_whole_corpus_is_harmless(source):
    """Every hostile body of the shared corpus (also sent by the browser test)."""
    assert_harmless(render(source))


def test_parser_is_configured_without_html():
    """The first step alone already refuses raw HTML (html: False), so the sanitizer is a
    second line, not the only one."""
    parser_output = markdown._parser().render("<b>x</b><script>y</script>")
    assert "<b>" not in parser_output and "<script>" not in parser_output


# --- mentions -----------------------------------------------------------------------------------


def test_mentions_become_marked_spans_outside_code_and_links():
    """`@name` in text is a mention span (lower-cased name) for mentions.js to mark; not inside
    code, not inside a link, not in an e-mail address; a trailing dot is punctuation."""
    assert render("hi @Bob.") == ('<p>hi <span class="mention" data-mention="bob">@Bob</span>.</p>')
    html = render("`@code` [see @y](https://e.org) a@b.org https://e.org/@z")
    assert "mention" not in html
    assert render("**@here**") == (
        '<p><strong><span class="mention" data-mention="here">@here</span></strong></p>'
    )


def test_only_the_mention_span_survives_the_sanitizer():
    """A span keeps only class="mention" and a name-shaped data-mention; nothing else."""
    cleaned = sanitize(
        '<span class="mention evil" data-mention="a b" onclick="x()" style="x">@a</span>'
    )
    assert cleaned == "<span>@a</span>"
    assert sanitize('<span class="mention" data-mention="bob">@bob</span>') == (
        '<span class="mention" data-mention="bob">@bob</span>'
    )
