"""Chat server configuration: the only place the chat server reads environment variables.

`ChatServerConfig.from_environ(os.environ)` turns the environment into a frozen dataclass; every
other module receives the config object and never looks at `os.environ`. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# The caps of Django's internal API (docs/protocol.md): one history read returns at most this many
# messages and one batch holds at most this many items. The chat server's own settings stay
# within them (CHAT_CATCHUP_PAGE, CHAT_BATCH_SIZE); tests/contract/test_shared_rules.py checks
# them against Django's constants.
DJANGO_PAGE_MAX = 1000
DJANGO_BATCH_MAX = 1000

# twisted.logger's level names, lowest first.
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


class ConfigError(ValueError):
    """The environment holds a missing or malformed setting; the message names the variable."""


def _text(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip()
    return value or default


def _int(
    environ: Mapping[str, str],
    name: str,
    default: int,
    minimum: int = 0,
    maximum: int | None = None,
) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")


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
    # Detailed /healthz and /metrics listen here only (default: CHAT_PORT + 100 on loopback).
    internal_port: int = 9100
    internal_interface: str = "127.0.0.1"
    # How long the internal /healthz reuses Django's health answer, seconds.
    health_cache: float = 5.0
    django_url: str = "http://127.0.0.1:8000"
    allowed_origins: tuple[str, ...] = ("http://127.0.0.1:8000", "http://localhost:8000")
    max_payload: int = 65536
    # The longest message body, characters after stripping: Django reads the same CHAT_MAX_BODY
    # with the same default (django_twisted_chat/settings.py), so both processes apply one limit.
    max_body: int = 4000
    # Most attachment ids one message may name: Django reads the same CHAT_MAX_FILES_PER_MESSAGE
    # with the same default (django_twisted_chat/settings.py).
    max_files: int = 10
    # Accepted clock skew of Django's signed control calls, seconds; Django reads the same
    # CHAT_SIGNATURE_WINDOW with the same default for the calls it receives.
    signature_window: int = 60
    # Frames per second and burst per identity (all its sockets and long polls together).
    rate: float = 5.0
    burst: int = 20
    # The same per client address (many people may share one address behind a NAT).
    address_rate: float = 50.0
    address_burst: int = 200
    # Open sockets plus held long polls per identity and per client address.
    max_connections: int = 20
    max_address_connections: int = 500
    # Take the client address from the last X-Forwarded-For entry (behind our own proxy only).
    behind_proxy: bool = False
    flood_close: int = 30
    # Presence frames per room are coalesced: at most one per interval (seconds).
    presence_interval: float = 0.5
    # Request heads: bytes and lines (front door, and twisted.web for every request).
    max_head_bytes: int = 16 * 1024
    max_head_lines: int = 100
    # Log lines caused by unauthenticated clients: this many per kind per interval (seconds).
    log_burst: int = 20
    log_interval: float = 60.0
    # Least level written (debug adds socket open/close lines) and the line format: text, or
    # json for one JSON object per line (Twisted's JSON observer).
    log_level: str = "info"
    log_format: str = "text"
    # Browsers send a typing notice every 2 s at most; the server's floor is a little lower so
    # network jitter between two notices never drops a legitimate one.
    typing_interval: float = 1.5
    batch_size: int = 200
    batch_delay_ms: float = 5.0
    max_in_flight: int = 2
    queue_limit: int = 10000
    # One room's share of the persistence queue (queued plus in flight): a flooding room gets
    # `busy` while the others keep flowing. Effective value: at most queue_limit.
    room_queue_limit: int = 2000
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    handshake_timeout: float = 10.0
    # A quiet keep-alive HTTP connection (long poll, control API) is closed after this.
    http_idle_timeout: float = 60.0
    max_outgoing_buffer: int = 1024 * 1024
    history_size: int = 50
    recent_buffer: int = 200
    # Catch-up is paged: one hello / history frame / poll answer carries at most this many
    # messages (Django's internal API reads at most 1,000 per request) ...
    catchup_page: int = 200
    # ... and at most about this many bytes of encoded messages (always at least one message).
    catchup_bytes: int = 256 * 1024
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
        port = _int(environ, "CHAT_PORT", cls.port)
        return cls(
            shared_secret=secret,
            previous_shared_secret=environ.get("CHAT_PREVIOUS_SHARED_SECRET", "").strip(),
            port=port,
            interface=_text(environ, "CHAT_INTERFACE", cls.interface),
            internal_port=_internal_port(environ, port),
            internal_interface=_text(environ, "CHAT_INTERNAL_INTERFACE", cls.internal_interface),
            health_cache=_float(environ, "CHAT_HEALTH_CACHE", cls.health_cache),
            django_url=_text(environ, "CHAT_DJANGO_URL", cls.django_url).rstrip("/"),
            allowed_origins=origins,
            max_payload=_int(environ, "CHAT_MAX_PAYLOAD", cls.max_payload, minimum=1),
            max_body=_int(environ, "CHAT_MAX_BODY", cls.max_body, minimum=1),
            max_files=_int(environ, "CHAT_MAX_FILES_PER_MESSAGE", cls.max_files, minimum=1),
            signature_window=_int(
                environ, "CHAT_SIGNATURE_WINDOW", cls.signature_window, minimum=1
            ),
            rate=_float(environ, "CHAT_RATE", cls.rate),
            burst=_int(environ, "CHAT_BURST", cls.burst, minimum=1),
            address_rate=_float(environ, "CHAT_ADDRESS_RATE", cls.address_rate),
            address_burst=_int(environ, "CHAT_ADDRESS_BURST", cls.address_burst, minimum=1),
            max_connections=_int(environ, "CHAT_MAX_CONNECTIONS", cls.max_connections, minimum=1),
            max_address_connections=_int(
                environ, "CHAT_MAX_ADDRESS_CONNECTIONS", cls.max_address_connections, minimum=1
            ),
            behind_proxy=_bool(environ, "CHAT_BEHIND_PROXY", cls.behind_proxy),
            flood_close=_int(environ, "CHAT_FLOOD_CLOSE", cls.flood_close, minimum=1),
            presence_interval=_float(environ, "CHAT_PRESENCE_INTERVAL", cls.presence_interval),
            max_head_bytes=_int(environ, "CHAT_MAX_HEAD_BYTES", cls.max_head_bytes, minimum=1024),
            max_head_lines=_int(environ, "CHAT_MAX_HEAD_LINES", cls.max_head_lines, minimum=8),
            log_burst=_int(environ, "CHAT_LOG_BURST", cls.log_burst, minimum=1),
            log_interval=_float(environ, "CHAT_LOG_INTERVAL", cls.log_interval, minimum=0.1),
            log_level=_log_level(environ, cls.log_level),
            log_format=_choice(environ, "CHAT_LOG_FORMAT", cls.log_format, ("text", "json")),
            typing_interval=_float(environ, "CHAT_TYPING_INTERVAL", cls.typing_interval),
            batch_size=_int(
                environ, "CHAT_BATCH_SIZE", cls.batch_size, minimum=1, maximum=DJANGO_BATCH_MAX
            ),
            batch_delay_ms=_float(environ, "CHAT_BATCH_DELAY_MS", cls.batch_delay_ms),
            max_in_flight=_int(environ, "CHAT_MAX_IN_FLIGHT", cls.max_in_flight, minimum=1),
            queue_limit=_int(environ, "CHAT_QUEUE_LIMIT", cls.queue_limit, minimum=1),
            room_queue_limit=_int(
                environ, "CHAT_ROOM_QUEUE_LIMIT", cls.room_queue_limit, minimum=1
            ),
            ping_interval=_float(environ, "CHAT_PING_INTERVAL", cls.ping_interval),
            ping_timeout=_float(environ, "CHAT_PING_TIMEOUT", cls.ping_timeout),
            handshake_timeout=_float(environ, "CHAT_HANDSHAKE_TIMEOUT", cls.handshake_timeout),
            http_idle_timeout=_float(environ, "CHAT_HTTP_IDLE_TIMEOUT", cls.http_idle_timeout),
            max_outgoing_buffer=_int(
                environ, "CHAT_MAX_OUTGOING_BUFFER", cls.max_outgoing_buffer, minimum=1
            ),
            history_size=_int(environ, "CHAT_HISTORY_SIZE", cls.history_size, minimum=1),
            recent_buffer=_int(environ, "CHAT_RECENT_BUFFER", cls.recent_buffer, minimum=1),
            catchup_page=_int(
                environ, "CHAT_CATCHUP_PAGE", cls.catchup_page, minimum=1, maximum=DJANGO_PAGE_MAX
            ),
            catchup_bytes=_int(environ, "CHAT_CATCHUP_BYTES", cls.catchup_bytes, minimum=1),
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


def _internal_port(environ: Mapping[str, str], port: int) -> int:
    """`CHAT_INTERNAL_PORT`, by default `CHAT_PORT + 100` (so instances on 9000 and 9001 get 9100
    and 9101 without more settings; 0 when CHAT_PORT is 0, an ephemeral port)."""
    default = port + 100 if port else 0
    value = _int(environ, "CHAT_INTERNAL_PORT", default)
    if value > 65535:
        raise ConfigError(f"CHAT_INTERNAL_PORT must be at most 65535, got {value} (set it)")
    if value and value == port:
        raise ConfigError("CHAT_INTERNAL_PORT must differ from CHAT_PORT")
    return value


def _log_level(environ: Mapping[str, str], default: str) -> str:
    """`CHAT_LOG_LEVEL`: a twisted.logger level name (`warning` too, as DJANGO_LOG_LEVEL says)."""
    if environ.get("CHAT_LOG_LEVEL", "").strip().lower() == "warning":
        return "warn"
    return _choice(environ, "CHAT_LOG_LEVEL", default, LOG_LEVELS)


def _redis_url(environ: Mapping[str, str]) -> str:
    url = environ.get("CHAT_REDIS_URL", "").strip()
    if url and not url.startswith("redis://"):
        raise ConfigError(f"CHAT_REDIS_URL must look like redis://host:6379, got {url!r}")
    return url
