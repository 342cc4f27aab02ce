"""Chat server configuration: the only place the chat server reads environment variables.

`ChatServerConfig.from_environ(os.environ)` turns the environment into a frozen dataclass; every
other module receives the config object and never looks at `os.environ`. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class ConfigError(ValueError):
    """The environment holds a missing or malformed setting; the message names the variable."""


def _text(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(environ: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclass(frozen=True)
class ChatServerConfig:
    """Every knob of the chat server, with the defaults documented in docs/protocol.md."""

    shared_secret: str
    previous_shared_secret: str = ""
    port: int = 9000
    interface: str = "127.0.0.1"
    django_url: str = "http://127.0.0.1:8000"
    allowed_origins: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")
    max_payload: int = 65536
    max_body: int = 4000
    rate: float = 5.0
    burst: int = 20
    flood_close: int = 30
    # Browsers send a typing notice every 2 s at most; the server's floor is a little lower so
    # network jitter between two notices never drops a legitimate one.
    typing_interval: float = 1.5
    batch_size: int = 200
    batch_delay_ms: float = 5.0
    max_in_flight: int = 2
    queue_limit: int = 10000
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    handshake_timeout: float = 10.0
    # A quiet keep-alive HTTP connection (long poll, control API) is closed after this.
    http_idle_timeout: float = 60.0
    max_outgoing_buffer: int = 1024 * 1024
    history_size: int = 50
    recent_buffer: int = 200
    poll_timeout: float = 25.0
    poll_grace: float = 35.0
    shutdown_timeout: float = 10.0
    django_timeout: float = 10.0
    redis_url: str = ""
    redis_prefix: str = "chat:"
    redis_gap_wait_ms: float = 200.0
    redis_presence_interval: float = 5.0
    # Longest ticket lifetime accepted (exp - iat), seconds; revocations are kept this long.
    max_ticket_ttl: float = 3600.0

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret a signature or ticket may be verified with (current first)."""
        if self.previous_shared_secret:
            return (self.shared_secret, self.previous_shared_secret)
        return (self.shared_secret,)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ChatServerConfig:
        """Build the config from an environment mapping; raise `ConfigError` on bad values."""
        secret = environ.get("CHAT_SHARED_SECRET", "").strip()
        if not secret:
            raise ConfigError(
                "CHAT_SHARED_SECRET is not set. It must equal Django's CHAT_SHARED_SECRET "
                "(`make run` generates one into .env)."
            )
        origins = tuple(
            origin.strip().rstrip("/")
            for origin in _text(
                environ, "CHAT_ALLOWED_ORIGINS", ",".join(cls.allowed_origins)
            ).split(",")
            if origin.strip()
        )
        return cls(
            shared_secret=secret,
            previous_shared_secret=environ.get("CHAT_PREVIOUS_SHARED_SECRET", "").strip(),
            port=_int(environ, "CHAT_PORT", cls.port),
            interface=_text(environ, "CHAT_INTERFACE", cls.interface),
            django_url=_text(environ, "CHAT_DJANGO_URL", cls.django_url).rstrip("/"),
            allowed_origins=origins,
            max_payload=_int(environ, "CHAT_MAX_PAYLOAD", cls.max_payload, minimum=1),
            max_body=_int(environ, "CHAT_MAX_BODY", cls.max_body, minimum=1),
            rate=_float(environ, "CHAT_RATE", cls.rate),
            burst=_int(environ, "CHAT_BURST", cls.burst, minimum=1),
            flood_close=_int(environ, "CHAT_FLOOD_CLOSE", cls.flood_close, minimum=1),
            typing_interval=_float(environ, "CHAT_TYPING_INTERVAL", cls.typing_interval),
            batch_size=_int(environ, "CHAT_BATCH_SIZE", cls.batch_size, minimum=1),
            batch_delay_ms=_float(environ, "CHAT_BATCH_DELAY_MS", cls.batch_delay_ms),
            max_in_flight=_int(environ, "CHAT_MAX_IN_FLIGHT", cls.max_in_flight, minimum=1),
            queue_limit=_int(environ, "CHAT_QUEUE_LIMIT", cls.queue_limit, minimum=1),
            ping_interval=_float(environ, "CHAT_PING_INTERVAL", cls.ping_interval),
            ping_timeout=_float(environ, "CHAT_PING_TIMEOUT", cls.ping_timeout),
            handshake_timeout=_float(environ, "CHAT_HANDSHAKE_TIMEOUT", cls.handshake_timeout),
            http_idle_timeout=_float(environ, "CHAT_HTTP_IDLE_TIMEOUT", cls.http_idle_timeout),
            max_outgoing_buffer=_int(
                environ, "CHAT_MAX_OUTGOING_BUFFER", cls.max_outgoing_buffer, minimum=1
            ),
            history_size=_int(environ, "CHAT_HISTORY_SIZE", cls.history_size, minimum=1),
            recent_buffer=_int(environ, "CHAT_RECENT_BUFFER", cls.recent_buffer, minimum=1),
            poll_timeout=_float(environ, "CHAT_POLL_TIMEOUT", cls.poll_timeout),
            poll_grace=_float(environ, "CHAT_POLL_GRACE", cls.poll_grace),
            shutdown_timeout=_float(environ, "CHAT_SHUTDOWN_TIMEOUT", cls.shutdown_timeout),
            django_timeout=_float(environ, "CHAT_DJANGO_TIMEOUT", cls.django_timeout),
            redis_url=_redis_url(environ),
            redis_prefix=_text(environ, "CHAT_REDIS_PREFIX", cls.redis_prefix),
            redis_gap_wait_ms=_float(environ, "CHAT_REDIS_GAP_WAIT_MS", cls.redis_gap_wait_ms),
            redis_presence_interval=_float(
                environ,
                "CHAT_REDIS_PRESENCE_INTERVAL",
                cls.redis_presence_interval,
                minimum=0.1,
            ),
            max_ticket_ttl=_float(environ, "CHAT_MAX_TICKET_TTL", cls.max_ticket_ttl, minimum=1),
        )


def _redis_url(environ: Mapping[str, str]) -> str:
    url = environ.get("CHAT_REDIS_URL", "").strip()
    if url and not url.startswith("redis://"):
        raise ConfigError(f"CHAT_REDIS_URL must look like redis://host:6379, got {url!r}")
    return url
