"""The chat app's settings: the ``CHAT_*`` (and its ``RATELIMIT_*``) names and their defaults.

A host project sets only what differs from the defaults below in its own settings module; the
app fills in the rest when Django starts (:func:`apply_defaults`, from ``ChatConfig.ready``), so
every module keeps reading ``django.conf.settings``. ``CHAT_SHARED_SECRET`` has no safe default:
without it Django refuses to start with ImproperlyConfigured naming it. This repository's own
project reads all of them from the environment in django_twisted_chat/settings.py.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Accepted (never used to sign) while CHAT_SHARED_SECRET is rotated.
    "CHAT_PREVIOUS_SHARED_SECRET": "",
    # Where browsers reach the chat server; the ticket's ws_url and poll_url are built from it.
    "CHAT_PUBLIC_URL": "http://127.0.0.1:9000",
    # Where Django reaches the chat server's control API; None means CHAT_PUBLIC_URL.
    "CHAT_INTERNAL_URL": None,
    "CHAT_TICKET_TTL": 60,
    "CHAT_GUEST_NAME_HOLD": 86400,
    "CHAT_CONTROL_TIMEOUT": 1.0,
    # Must equal the chat server's CHAT_MAX_BODY.
    "CHAT_MAX_BODY": 4000,
    "CHAT_SIGNATURE_WINDOW": 60,
    # Seconds after sending during which an author may edit (staff always).
    "CHAT_EDIT_WINDOW": 900,
    # Most different emoji one message may carry as reactions.
    "CHAT_MAX_REACTIONS": 20,
    # How long the room page waits for a socket's hello before it long-polls, milliseconds.
    "CHAT_SOCKET_GIVE_UP_MS": 2000,
    # @here: people who had the room open within this many seconds count as "here"; more than
    # CHAT_HERE_LARGE_ROOM of them and only staff may; at most once per CHAT_HERE_INTERVAL
    # seconds per author and room.
    "CHAT_HERE_WINDOW": 300,
    "CHAT_HERE_LARGE_ROOM": 20,
    "CHAT_HERE_INTERVAL": 60,
    # @ autocomplete offers readers seen in the room within this many seconds (and people online).
    "CHAT_MENTION_RECENT": 7 * 86400,
    # Only `manage.py ensuredemo` (this repository's `make run`) reads it.
    "CHAT_DEMO_ADMIN_PASSWORD": "",
    # Who may create an account: "open" (anyone), "invite" (with a sign-up invite staff made,
    # chat/signup_invites.py) or "closed" (no one; the sign-up page answers 403, its links
    # disappear).
    "CHAT_SIGNUP": "open",
    # Seconds a sign-up invite stays valid after it was made (7 days).
    "CHAT_SIGNUP_INVITE_MAX_AGE": 7 * 86400,
    # Attachments: bytes per file, files per message (must equal the chat server's
    # CHAT_MAX_FILES_PER_MESSAGE), bytes per user per rolling 24 hours, the largest image decoded
    # (pixels), a thumbnail's longest side (pixels), seconds an unsent upload is kept, and the
    # X-Accel-Redirect prefix ("" serves the bytes from Django).
    "CHAT_MAX_FILE_BYTES": 10 * 1024 * 1024,
    "CHAT_MAX_FILES_PER_MESSAGE": 10,
    "CHAT_UPLOAD_BYTES_PER_DAY": 200 * 1024 * 1024,
    "CHAT_MAX_IMAGE_PIXELS": 40_000_000,
    "CHAT_THUMBNAIL_SIZE": 320,
    "CHAT_UNSENT_UPLOAD_TTL": 86400,
    "CHAT_FILES_ACCEL_REDIRECT": "",
    "RATELIMIT_UPLOAD": "60/m",
    # django-ratelimit rates ("<count>/<period>") of the ticket endpoint, the app's sign-in view
    # and new guest identities; whether the last X-Forwarded-For entry is the client address.
    "RATELIMIT_TICKET": "30/m",
    "RATELIMIT_LOGIN_IP": "10/m",
    "RATELIMIT_LOGIN_USER": "10/m",
    "RATELIMIT_GUEST_IDENTITY": "20/10m",
    "RATELIMIT_SEARCH": "30/m",
    # Rooms one user may create, and invitations (by username or link) one user may make.
    "RATELIMIT_ROOM_CREATE": "10/h",
    "RATELIMIT_INVITE": "30/h",
    # Password reset requests per client address and per e-mail address asked for.
    "RATELIMIT_RESET_IP": "10/h",
    "RATELIMIT_RESET_EMAIL": "3/h",
    "RATELIMIT_TRUST_X_FORWARDED_FOR": False,
}

REQUIRED = ("CHAT_SHARED_SECRET",)
SIGNUP_POLICIES = ("open", "invite", "closed")


def apply_defaults(settings: Any) -> None:
    """Give every chat setting the project left out its default; refuse a missing secret."""
    for name in REQUIRED:
        value = getattr(settings, name, "")
        if not isinstance(value, str) or not value.strip():
            raise ImproperlyConfigured(
                f"{name} is not set. The chat app signs socket tickets and every call between "
                f"Django and the chat server with it: set {name} in your settings to a long "
                "random string, the same value the chat server reads from its environment "
                "(docs/adding-chat.md)."
            )
    for name, default in DEFAULTS.items():
        if not hasattr(settings, name):
            setattr(settings, name, default)
    if settings.CHAT_SIGNUP not in SIGNUP_POLICIES:
        raise ImproperlyConfigured(
            f"CHAT_SIGNUP must be one of {', '.join(SIGNUP_POLICIES)}, not {settings.CHAT_SIGNUP!r}"
        )
    if settings.CHAT_INTERNAL_URL is None:
        settings.CHAT_INTERNAL_URL = settings.CHAT_PUBLIC_URL
