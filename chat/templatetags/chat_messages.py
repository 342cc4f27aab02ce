"""``{% load chat_messages %}``: the parts of a message item the room page renders on the server
exactly as the browser client draws them live (static/chat/client/replies.js for the quote,
static/chat/client/lifecycle.js for reactions), so a reload looks like the live page.

Everything goes through ``format_html`` / ``format_html_join``: names, snippets and emoji are
escaped like any other text.
"""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from chat.models import Message

register = template.Library()

DELETED_QUOTE_TEXT = "Reply to a deleted message"


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
