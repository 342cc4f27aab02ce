"""Django settings: the only place the Django process reads environment variables.

Every value comes from the environment; there are no secrets in the repository. `make run` writes
development secrets into the ignored `.env` file; production refuses to start without them.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from pythonjsonlogger.core import RESERVED_ATTRS

BASE_DIR = Path(__file__).resolve().parent.parent
env = os.environ


def _bool(name: str, default: bool = False) -> bool:
    return env.get(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def _list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env.get(name, default).split(",") if item.strip()]


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def _required(name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Run `make run` once to generate development secrets into .env, "
            f"or set {name} in the environment."
        )
    return value


SECRET_KEY = _required("DJANGO_SECRET_KEY")
DEBUG = _bool("DJANGO_DEBUG")
ALLOWED_HOSTS = _list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = _list("DJANGO_CSRF_TRUSTED_ORIGINS", "")

# The chat server: the shared secret signs tickets and every service-to-service call.
CHAT_SHARED_SECRET = _required("CHAT_SHARED_SECRET")
# Accepted (never used to sign) while CHAT_SHARED_SECRET is being rotated.
CHAT_PREVIOUS_SHARED_SECRET = env.get("CHAT_PREVIOUS_SHARED_SECRET", "").strip()
# Where browsers reach the chat server; ws_url and poll_url are built from it.
CHAT_PUBLIC_URL = env.get("CHAT_PUBLIC_URL", "http://127.0.0.1:9000").rstrip("/")
# Where Django reaches the chat server's control API (defaults to the public URL).
CHAT_INTERNAL_URL = env.get("CHAT_INTERNAL_URL", CHAT_PUBLIC_URL).rstrip("/")
CHAT_TICKET_TTL = int(env.get("CHAT_TICKET_TTL", "60"))
# Seconds a guest keeps its name after it was last seen (no one else may take a look-alike).
CHAT_GUEST_NAME_HOLD = int(env.get("CHAT_GUEST_NAME_HOLD", "86400"))
CHAT_CONTROL_TIMEOUT = float(env.get("CHAT_CONTROL_TIMEOUT", "1.0"))
# Milliseconds the room page waits for a socket's hello before it long-polls instead (the socket
# goes on as a probe): a proxy that accepts WebSockets and never forwards them costs this much.
CHAT_SOCKET_GIVE_UP_MS = _int("CHAT_SOCKET_GIVE_UP_MS", 2000, minimum=100)
# Rules both processes apply read the same variable with the same default on both sides
# (chatserver/config.py; tests/contract/test_shared_rules.py checks that they agree). The longest
# message body, in characters after stripping surrounding white space; the room page hands it to
# the browser (composer maxlength, data-max-body).
CHAT_MAX_BODY = _int("CHAT_MAX_BODY", 4000, minimum=1)
# Accepted clock skew of signed service-to-service calls, seconds (each process checks the
# other's timestamps with it).
CHAT_SIGNATURE_WINDOW = _int("CHAT_SIGNATURE_WINDOW", 60, minimum=1)
# Seconds after sending during which the author may edit a message (staff may always).
CHAT_EDIT_WINDOW = _int("CHAT_EDIT_WINDOW", 900, minimum=0)
# Most distinct emoji one message may carry as reactions (a new one past it is refused).
CHAT_MAX_REACTIONS = _int("CHAT_MAX_REACTIONS", 20, minimum=1)
# Who may create an account: open (anyone), invite (with a sign-up invite staff made with
# `manage.py signupinvite`), closed (no one). Checked when the app starts (chat/conf.py).
CHAT_SIGNUP = env.get("CHAT_SIGNUP", "open").strip().lower()
# Seconds a sign-up invite stays valid (7 days).
CHAT_SIGNUP_INVITE_MAX_AGE = _int("CHAT_SIGNUP_INVITE_MAX_AGE", 7 * 86400, minimum=60)
# @here (docs/operations.md): who counts as "here", the room size above which only staff may,
# and how often one author may use it per room (seconds).
CHAT_HERE_WINDOW = _int("CHAT_HERE_WINDOW", 300, minimum=0)
CHAT_HERE_LARGE_ROOM = _int("CHAT_HERE_LARGE_ROOM", 20, minimum=0)
CHAT_HERE_INTERVAL = _int("CHAT_HERE_INTERVAL", 60, minimum=0)
CHAT_MENTION_RECENT = _int("CHAT_MENTION_RECENT", 7 * 86400, minimum=0)
# Attachments (chat/attachments.py, docs/operations.md "Attachments"). Bytes per file; files per
# message (the chat server reads the same CHAT_MAX_FILES_PER_MESSAGE with the same default,
# chatserver/config.py); bytes one user may upload per rolling 24 hours; the largest image, in
# pixels, Pillow is allowed to decode (a bigger one is refused as a decompression bomb); the
# longest side of a thumbnail, pixels.
CHAT_MAX_FILE_BYTES = _int("CHAT_MAX_FILE_BYTES", 10 * 1024 * 1024, minimum=1)
CHAT_MAX_FILES_PER_MESSAGE = _int("CHAT_MAX_FILES_PER_MESSAGE", 10, minimum=1)
CHAT_UPLOAD_BYTES_PER_DAY = _int("CHAT_UPLOAD_BYTES_PER_DAY", 200 * 1024 * 1024, minimum=1)
CHAT_MAX_IMAGE_PIXELS = _int("CHAT_MAX_IMAGE_PIXELS", 40_000_000, minimum=1)
CHAT_THUMBNAIL_SIZE = _int("CHAT_THUMBNAIL_SIZE", 320, minimum=16)
# Seconds an upload may wait for the message that sends it; older unsent uploads are purged.
CHAT_UNSENT_UPLOAD_TTL = _int("CHAT_UNSENT_UPLOAD_TTL", 86400, minimum=60)
# When set (e.g. /protected-media/), file answers carry X-Accel-Redirect to this prefix plus the
# storage name and no body: nginx serves the bytes from an `internal` location.
CHAT_FILES_ACCEL_REDIRECT = env.get("CHAT_FILES_ACCEL_REDIRECT", "").strip()
# `make run` signs the demo admin in with this generated password (kept in the ignored .env).
CHAT_DEMO_ADMIN_PASSWORD = env.get("CHAT_DEMO_ADMIN_PASSWORD", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "csp",
    "django_ratelimit",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Innermost: error answers under the chat app's api/ and internal/ URLs become JSON
    # (chat/middleware.py).
    "chat.middleware.JsonErrorsMiddleware",
]

ROOT_URLCONF = "django_twisted_chat.urls"
WSGI_APPLICATION = "django_twisted_chat.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own error pages (403.html, 404.html); the chat app's templates come from
        # chat/templates through APP_DIRS.
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Seconds a worker thread keeps its database connection between requests (0: a new one
        # per request). Opening and closing an SQLite connection per request was a fifth of
        # Django's CPU per stored message at 100 messages/s (docs/performance.md).
        conn_max_age=_int("DATABASE_CONN_MAX_AGE", 60),
        # A kept connection is checked before a request reuses it (a restarted PostgreSQL).
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so that
    # concurrent writers queue on busy_timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LOGIN_URL = "chat:login"
LOGIN_REDIRECT_URL = "/chats/"
LOGOUT_REDIRECT_URL = "/chats/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
# The chat app ships its static files (chat/static/chat/), found by the app directories finder.
STATIC_ROOT = Path(env.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
# Uploaded attachments (chat/attachments.py) go to the default storage: files under MEDIA_ROOT
# (`media/` in the checkout, ignored by git) unless a deployment configures another backend
# (docs/operations.md shows django-storages' S3). There is no MEDIA_URL: every file is answered
# by chat/attachment_views.py after the room's access check.
MEDIA_ROOT = Path(env.get("DJANGO_MEDIA_ROOT", BASE_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if _bool("DJANGO_MANIFEST_STATIC", default=not DEBUG)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# Production security switches. Plain http stays the default so `make run` and the tests work on
# localhost; DJANGO_SECURE=1 is what a deployment behind TLS sets (see docs/security.md).
SECURE = _bool("DJANGO_SECURE")
SECURE_SSL_REDIRECT = SECURE and _bool("DJANGO_SSL_REDIRECT", default=True)
# The chat servers call the internal API over plain http on the private network (CHAT_DJANGO_URL,
# signed, never through the proxy): redirecting them to https would stop every history read and
# every stored message.
SECURE_REDIRECT_EXEMPT = [r"^internal/"]
SECURE_HSTS_SECONDS = int(env.get("DJANGO_HSTS_SECONDS", "31536000")) if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE and _bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = SECURE and _bool("DJANGO_HSTS_PRELOAD", default=True)
if _bool("DJANGO_BEHIND_PROXY"):
    # Only behind a proxy that sets (and overwrites) X-Forwarded-Proto, as docs/operations.md's
    # nginx does; otherwise any client could claim https.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = SECURE or _bool("DJANGO_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SECURE or _bool("DJANGO_SECURE_COOKIES")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"


def _chat_origins(public_url: str) -> list[str]:
    """The chat server's http(s) and ws(s) origins, for connect-src."""
    parts = urlsplit(public_url)
    ws_scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return [f"{parts.scheme}://{parts.netloc}", f"{ws_scheme}://{parts.netloc}"]


# Content-Security-Policy (django-csp): no inline script or style anywhere, so an injected
# <script> or on*= attribute cannot run even if escaping were ever missed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", *_chat_origins(CHAT_PUBLIC_URL)],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
}

# E-mail (password reset links), through Django's e-mail backends. SMTP by default (Django's
# own default backend) with the standard variables; `make run` writes
# DJANGO_EMAIL_BACKEND=django.core.mail.backends.console.EmailBackend into .env, so mails are
# printed on the console in development. docs/operations.md, "E-mail".
EMAIL_BACKEND = env.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.get("EMAIL_HOST", "localhost")
EMAIL_PORT = _int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = _bool("EMAIL_USE_SSL")
EMAIL_TIMEOUT = _int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env.get("DEFAULT_FROM_EMAIL", "webmaster@localhost")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL cannot both be set")

# The cache holds the rate-limit counters. LocMemCache is per process: with several gunicorn
# workers each counts on its own. DJANGO_REDIS_URL gives every process one shared count.
REDIS_CACHE_URL = env.get("DJANGO_REDIS_URL", "").strip()
if REDIS_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Rate limits (django-ratelimit's counters, applied in chat/ratelimits.py): "<count>/<period>".
RATELIMIT_ENABLE = _bool("DJANGO_RATELIMIT_ENABLE", default=True)
RATELIMIT_TICKET = env.get("DJANGO_RATELIMIT_TICKET", "30/m")
# Full-text searches per user, guest session or address (chat/ratelimits.py).
RATELIMIT_SEARCH = env.get("DJANGO_RATELIMIT_SEARCH", "30/m")
# Rooms one user may create, and invitations (by username or link) one user may make.
RATELIMIT_ROOM_CREATE = env.get("DJANGO_RATELIMIT_ROOM_CREATE", "10/h")
RATELIMIT_INVITE = env.get("DJANGO_RATELIMIT_INVITE", "30/h")
# Attachment uploads per signed-in user (chat/attachment_views.py).
RATELIMIT_UPLOAD = env.get("DJANGO_RATELIMIT_UPLOAD", "60/m")
RATELIMIT_LOGIN_IP = env.get("DJANGO_RATELIMIT_LOGIN_IP", "10/m")
RATELIMIT_LOGIN_USER = env.get("DJANGO_RATELIMIT_LOGIN_USER", "10/m")
# Password reset requests per client address and per e-mail address (chat/ratelimits.py).
RATELIMIT_RESET_IP = env.get("DJANGO_RATELIMIT_RESET_IP", "10/h")
RATELIMIT_RESET_EMAIL = env.get("DJANGO_RATELIMIT_RESET_EMAIL", "3/h")
# New guest identities (cookie-less visits) per client address.
RATELIMIT_GUEST_IDENTITY = env.get("DJANGO_RATELIMIT_GUEST_IDENTITY", "20/10m")
RATELIMIT_IP_META_KEY = "chat.ratelimits.client_ip"
# Behind a proxy every request comes from the proxy's address, so the client address is the last
# X-Forwarded-For entry (the one our proxy appended; earlier entries are the client's own claim).
RATELIMIT_TRUST_X_FORWARDED_FOR = _bool("DJANGO_BEHIND_PROXY")
SILENCED_SYSTEM_CHECKS = [
    # django-ratelimit lists only memcached and django-redis. Django's own RedisCache increments
    # atomically too; LocMemCache works but counts per process (said in docs/security.md).
    "django_ratelimit.W001",
    *(["django_ratelimit.E003"] if not REDIS_CACHE_URL else []),
]

# DJANGO_LOG_FORMAT=json: one JSON object per line (python-json-logger), for a log collector.
LOG_FORMAT = env.get("DJANGO_LOG_FORMAT", "text").strip().lower() or "text"
if LOG_FORMAT not in {"text", "json"}:
    raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT must be text or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
            # django.request attaches the request object: its repr holds the query string, which
            # the text format never prints either.
            "reserved_attrs": [*RESERVED_ATTRS, "request"],
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env.get("DJANGO_LOG_LEVEL", "INFO").upper()},
    # SQL with parameters (message bodies, session data) is never logged, whatever the level.
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
