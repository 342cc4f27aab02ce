"""Django settings: the only place the Django process reads environment variables.

Every value comes from the environment; there are no secrets in the repository. `make run` writes
development secrets into the ignored `.env` file; production refuses to start without them.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = os.environ


def _bool(name: str, default: bool = False) -> bool:
    return env.get(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def _list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env.get(name, default).split(",") if item.strip()]


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
CHAT_CONTROL_TIMEOUT = float(env.get("CHAT_CONTROL_TIMEOUT", "1.0"))
CHAT_SIGNATURE_WINDOW = int(env.get("CHAT_SIGNATURE_WINDOW", "60"))
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
]

ROOT_URLCONF = "django_twisted_chat.urls"
WSGI_APPLICATION = "django_twisted_chat.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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
        env.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"), conn_max_age=60
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
    DATABASES["default"]["CONN_MAX_AGE"] = 0

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
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.get("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles"))
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

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = _bool("DJANGO_SECURE_COOKIES")
CSRF_COOKIE_SECURE = _bool("DJANGO_SECURE_COOKIES")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.get("DJANGO_LOG_LEVEL", "INFO")},
}
