"""``{% load chat_accounts %}``: where the chat app's pages send people to sign in.

The app may be one app of many: sign-in is whatever the host project's ``settings.LOGIN_URL``
names (a URL or a URL name), not the app's own optional sign-in view.
"""

from django import template
from django.conf import settings
from django.shortcuts import resolve_url

register = template.Library()


@register.simple_tag
def login_url() -> str:
    """``settings.LOGIN_URL``, reversed when it is a URL name."""
    return resolve_url(settings.LOGIN_URL)
