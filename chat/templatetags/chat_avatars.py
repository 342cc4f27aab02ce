"""``{% load chat_avatars %}``: ``{% avatar uid name %}`` draws a person's avatar.

The rule is chat/avatars.py; the markup is chat/templates/chat/includes/avatar.html.
"""

from __future__ import annotations

from typing import Any

from django import template

from chat.avatars import avatar as avatar_of

register = template.Library()


@register.inclusion_tag("chat/includes/avatar.html")
def avatar(uid: str, name: str, large: bool = False) -> dict[str, Any]:
    """The avatar of author ``uid`` shown as ``name`` (``large`` for the profile page)."""
    return {"avatar": avatar_of(uid or "", name or ""), "large": large}
