"""``{% load chat_messages %}``: the parts of a message item the room page renders on the server
exactly as the browser client draws them live (static/chat/client/replies.js for the quote,
static/chat/client/lifecycle.js for reactions, static/chat/client/attachment-view.js for
attachments), so a reload looks like the live page.

Everything goes through ``format_html`` / ``format_html_join``: names, snippets and emoji are
escaped like any other text.
"""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from chat.models import Message

register = template.Library()

DELETED_QUOTE_TEXT = "Reply to a deleted message"

SIZE_UNITS = ("KB", "MB", "GB", "TB")
EXTENSION_RE = re.compile(r"\.([A-Za-z0-9]{1,8})$")


def _div_round(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up, in integers (as the client rounds)."""
    return (2 * numerator + denominator) // (2 * denominator)


def human_size(size: int) -> str:
    """A size in bytes in words, in binary units (1 KB = 1,024 bytes): "512 bytes", "1 byte",
    "2.4 MB", "48 KB" (one decimal below 10 units, whole numbers above). The client's
    ``formatSize`` (static/chat/client/attachment-view.js) says the same for the same number."""
    size = max(0, int(size or 0))
    if size < 1024:
        return f"{size} {'byte' if size == 1 else 'bytes'}"
    unit, scale = 0, 1024
    while unit < len(SIZE_UNITS) - 1 and size >= scale * 1024:
        unit += 1
        scale *= 1024
    tenths = _div_round(size * 10, scale)
    if tenths < 100:
        return f"{tenths // 10}.{tenths % 10} {SIZE_UNITS[unit]}"
    return f"{_div_round(size, scale)} {SIZE_UNITS[unit]}"


def type_label(attachment: dict[str, Any]) -> str:
    """The file's type as a reader says it: its extension in capitals ("PDF"), else its content
    type, else "File" (the client's ``typeLabel``)."""
    match = EXTENSION_RE.search(attachment.get("name") or "")
    if match:
        return match.group(1).upper()
    return attachment.get("content_type") or "File"


def _safe_url(url: Any) -> str:
    """A site-relative URL as is; anything else "#" (the client's ``safeUrl``)."""
    if isinstance(url, str) and url.startswith("/") and not url.startswith("//"):
        return url
    return "#"


def _attachment_shapes(message: Message) -> list[dict[str, Any]]:
    """The message's attachments in the protocol's shape, in upload order (the model's
    ``attachment_shapes``, the one place the shape is built; docs/protocol.md)."""
    shapes = getattr(message, "attachment_shapes", None)
    return list(shapes()) if callable(shapes) else []


def _attachment_html(attachment: dict[str, Any]) -> SafeString:
    thumb = attachment.get("thumbnail")
    if attachment.get("kind") == "image" and thumb and isinstance(thumb.get("url"), str):
        # The attributes in the order the client sets them (same markup, not only same look).
        return format_html(
            '<a href="{}" class="attachment attachment-image" target="_blank" rel="noopener">'
            '<img src="{}" alt="{}" width="{}" height="{}" loading="lazy"></a>',
            _safe_url(attachment.get("url")),
            _safe_url(thumb["url"]),
            attachment.get("name", ""),
            int(thumb.get("width") or 0),
            int(thumb.get("height") or 0),
        )
    return format_html(
        '<a href="{}" class="attachment attachment-file" download="">'
        '<span class="attachment-name" dir="auto">{}</span> '
        '<span class="attachment-meta">{}, {}</span></a>',
        _safe_url(attachment.get("url")),
        attachment.get("name", ""),
        human_size(attachment.get("size") or 0),
        type_label(attachment),
    )


@register.simple_tag
def reply_quote(message: Message) -> SafeString | str:
    """The quote of the message a reply answers (``""`` for a message that answers none): a
    button that shows the parent, or a plain note when the parent was deleted."""
    quote = message.reply_shape()
    if quote is None:
        return ""
    if quote["deleted"]:
        return format_html(
            '<div class="reply-quote deleted" data-reply-to="{}">{}</div>',
            quote["id"],
            DELETED_QUOTE_TEXT,
        )
    return format_html(
        '<button type="button" class="reply-quote" data-reply-to="{}" title="Show the message">'
        '<span class="visually-hidden">Reply to </span>'
        '<bdi class="reply-author" dir="auto">{}</bdi>: '
        '<span class="reply-snippet" dir="auto">{}</span></button>',
        quote["id"],
        quote["author"]["name"],
        quote["snippet"],
    )


@register.simple_tag
def reactions(message: Message, reader_uid: str) -> SafeString | str:
    """The message's reactions, one toggle per emoji, pressed when ``reader_uid`` reacted so
    (``""`` when it has none)."""
    chips = []
    for reaction in message.reaction_summary():
        names = ", ".join(user["name"] for user in reaction["users"])
        mine = any(user["id"] == reader_uid for user in reaction["users"])
        action = "Remove your reaction" if mine else f"React with {reaction['emoji']}"
        label = f"{reaction['emoji']} {reaction['count']}: {names}. {action}"
        chips.append(
            (
                label,
                reaction["emoji"],
                "true" if mine else "false",
                names,
                reaction["emoji"],
                reaction["count"],
            )
        )
    if not chips:
        return ""
    return format_html(
        '<div class="reactions" role="group" aria-label="Reactions">{}</div>',
        format_html_join(
            "",
            # The attributes in the order the client sets them (same markup, not only same look).
            '<button type="button" class="reaction" aria-label="{}" data-emoji="{}"'
            ' aria-pressed="{}" title="{}"><span class="reaction-emoji">{}</span>'
            ' <span class="reaction-count">{}</span></button>',
            chips,
        ),
    )


@register.simple_tag
def attachments(message: Message) -> SafeString | str:
    """The message's attachments under its body (``""`` when it has none): images as a link to
    the full image around the thumbnail (its size reserved), other files as a download card."""
    shapes = [
        a
        for a in _attachment_shapes(message)
        if isinstance(a.get("id"), str) and isinstance(a.get("url"), str)
    ]
    if not shapes:
        return ""
    return format_html(
        '<div class="attachments" data-ids="{}">{}</div>',
        " ".join(a["id"] for a in shapes),
        format_html_join("", "{}", ((_attachment_html(a),) for a in shapes)),
    )
