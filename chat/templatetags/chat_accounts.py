"""``{% load chat_accounts %}``: where the chat app's pages send people to sign in or up, and the
name a signed-in user is shown under.

The app may be one app of many: sign-in is whatever the host project's ``settings.LOGIN_URL``
names (a URL or a URL name), not the app's own optional sign-in view; sign-up is the app's view
when the project includes it and ``CHAT_SIGNUP`` is not ``closed``.
"""

from django import template
from django.conf import settings
from django.shortcuts import resolve_url
from django.urls import NoReverseMatch, reverse

from chat.identity import shown_name as _shown_name

register = template.Library()


@register.simple_tag
def login_url() -> str:
    """``settings.LOGIN_URL``, reversed when it is a URL name."""
    return resolve_url(settings.LOGIN_URL)


@register.simple_tag
def signup_url() -> str:
    """The sign-up page's URL, or "" when sign-up is closed or the project has no such page."""
    if settings.CHAT_SIGNUP == "closed":
        return ""
    try:
        return reverse("chat:signup")
    except NoReverseMatch:
        return ""


@register.simple_tag
def shown_name(user) -> str:
    """The name a signed-in user is shown under (display name, else username)."""
    return _shown_name(user)
