"""``{% load chat_time %}``: how long ago something happened, in the words a chat uses.

Django's ``timesince`` says "0 minutes" for the last minute; a chat says "just now".
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()

JUST_NOW = timedelta(minutes=1)


@register.filter
def ago(value: datetime | None, now: datetime | None = None) -> str:
    """``value`` (an aware datetime) as "just now" within the last minute (or a little in the
    future, from clock skew), else "<timesince> ago" ("5 minutes ago", "2 days, 3 hours ago");
    "" for None."""
    if value is None:
        return ""
    now = now or timezone.now()
    if now - value < JUST_NOW:
        return "just now"
    return f"{timesince(value, now)} ago"
