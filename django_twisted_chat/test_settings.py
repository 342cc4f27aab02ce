"""Settings for the in-process Django test suite.

Supplies throw-away secrets when the environment has none, then loads the real settings, so the
tests exercise the same configuration code as production.
"""

import os
import secrets

os.environ.setdefault("DJANGO_SECRET_KEY", "test-" + secrets.token_urlsafe(32))
os.environ.setdefault("CHAT_SHARED_SECRET", "test-" + secrets.token_urlsafe(32))
os.environ.setdefault("DJANGO_MANIFEST_STATIC", "0")

from .settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Static files come from the finders in tests; nothing is collected into STATIC_ROOT.
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
