"""Django settings of the Channels peer: the only place it reads the environment.

- `BENCH_CHANNELS_DB`: path of its SQLite database (a temporary directory of the benchmark).
- `BENCH_CHANNELS_LAYER`: `memory` (the tutorial's `InMemoryChannelLayer`, default) or `redis`
  (`channels_redis.core.RedisChannelLayer`, as the tutorial recommends for real use).
- `BENCH_CHANNELS_REDIS_URL` (default `redis://127.0.0.1:6379`) and `BENCH_CHANNELS_PREFIX`: the
  Redis server and a key prefix unique to one run, so runs sharing a Redis never meet.
- `BENCH_CHANNELS_SAVE`: `1` to save every message as a row before broadcasting it, as seed
  tutorials that add history to the Channels chat do.
"""

from __future__ import annotations

import os
import secrets

SECRET_KEY = os.environ.get("BENCH_CHANNELS_SECRET_KEY") or secrets.token_urlsafe(32)
# Production-like: DEBUG would keep every SQL query in memory.
DEBUG = False
# The tutorial's AllowedHostsOriginValidator accepts Origin headers naming these hosts.
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "channels",
    "bench.channels_peer",
]
ROOT_URLCONF = "bench.channels_peer.urls"
ASGI_APPLICATION = "bench.channels_peer.asgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("BENCH_CHANNELS_DB", "channels-peer.sqlite3"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True

if os.environ.get("BENCH_CHANNELS_LAYER", "memory") == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [os.environ.get("BENCH_CHANNELS_REDIS_URL", "redis://127.0.0.1:6379")],
                "prefix": os.environ.get("BENCH_CHANNELS_PREFIX", "asgi"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

SAVE_MESSAGES = os.environ.get("BENCH_CHANNELS_SAVE", "") == "1"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
