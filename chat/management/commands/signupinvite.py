"""``manage.py signupinvite [--base-url URL]``: print a sign-up invite link
(chat/signup_invites.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.urls import reverse

from chat.signup_invites import mint_invite


class Command(BaseCommand):
    """Make one sign-up invite and print the link to hand out (valid for
    ``CHAT_SIGNUP_INVITE_MAX_AGE`` seconds; used while ``CHAT_SIGNUP`` is ``invite``)."""

    help = "Print a sign-up invite link (for CHAT_SIGNUP=invite)."

    def add_arguments(self, parser: CommandParser) -> None:
        """``--base-url``: the site's address, e.g. https://chat.example.org (else a path)."""
        parser.add_argument("--base-url", default="", help="e.g. https://chat.example.org")

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the link; warn when sign-up is not in invite mode (the link would not help)."""
        link = f"{reverse('chat:signup')}?{urlencode({'invite': mint_invite()})}"
        self.stdout.write(options["base_url"].rstrip("/") + link)
        if settings.CHAT_SIGNUP != "invite":
            self.stderr.write(
                f"Note: CHAT_SIGNUP is {settings.CHAT_SIGNUP!r}; the invite only matters when it "
                "is 'invite'."
            )
        hours = settings.CHAT_SIGNUP_INVITE_MAX_AGE / 3600
        self.stderr.write(f"The link is valid for {hours:g} hours.")
