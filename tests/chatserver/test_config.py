"""ChatServerConfig.from_environ: names, defaults, errors."""

import pytest

from chatserver.config import ChatServerConfig, ConfigError


def test_defaults_and_required_secret():
    """Only the secret is required; defaults match the documented values."""
    config = ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s"})
    assert config.port == 9000 and config.interface == "127.0.0.1"
    assert config.allowed_origins == ("http://127.0.0.1:8000", "http://localhost:8000")
    assert (config.max_payload, config.max_body, config.history_size) == (65536, 4000, 50)
    assert config.secrets == ("s",)
    with pytest.raises(ConfigError, match="CHAT_SHARED_SECRET"):
        ChatServerConfig.from_environ({})


def test_every_variable_is_read():
    """Each documented variable changes its field."""
    env = {
        "CHAT_SHARED_SECRET": "new",
        "CHAT_PREVIOUS_SHARED_SECRET": "old",
        "CHAT_PORT": "9100",
        "CHAT_INTERFACE": "0.0.0.0",
        "CHAT_DJANGO_URL": "http://d:1/",
        "CHAT_RATE": "1.5",
        "CHAT_ALLOWED_ORIGINS": "https://a.example/, https://b.example",
        "CHAT_BURST": "3",
        "CHAT_BATCH_DELAY_MS": "7",
        "CHAT_POLL_GRACE": "5",
        "CHAT_REDIS_URL": "redis://r",
        "CHAT_MAX_OUTGOING_BUFFER": "10",
        "CHAT_FLOOD_CLOSE": "4",
        "CHAT_QUEUE_LIMIT": "9",
        "CHAT_ROOM_QUEUE_LIMIT": "4",
    }
    config = ChatServerConfig.from_environ(env)
    assert config.secrets == ("new", "old")
    assert config.port == 9100 and config.interface == "0.0.0.0"
    assert config.django_url == "http://d:1"
    assert config.allowed_origins == ("https://a.example", "https://b.example")
    assert (config.rate, config.burst, config.batch_delay_ms) == (1.5, 3, 7.0)
    assert (config.poll_grace, config.redis_url, config.max_outgoing_buffer) == (
        5.0,
        "redis://r",
        10,
    )
    assert (config.flood_close, config.queue_limit, config.room_queue_limit) == (4, 9, 4)


def test_malformed_numbers_name_the_variable():
    """A non-numeric value raises ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="CHAT_PORT"):
        ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s", "CHAT_PORT": "x"})
    with pytest.raises(ConfigError, match="CHAT_BATCH_SIZE"):
        ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s", "CHAT_BATCH_SIZE": "0"})


def test_redis_settings():
    """The Redis variables are read; a URL that is not redis:// is refused by name."""
    config = ChatServerConfig.from_environ(
        {
            "CHAT_SHARED_SECRET": "s",
            "CHAT_REDIS_URL": "redis://:pw@r:6380/2",
            "CHAT_REDIS_PREFIX": "test-1:",
            "CHAT_REDIS_GAP_WAIT_MS": "50",
            "CHAT_REDIS_PRESENCE_INTERVAL": "2",
        }
    )
    assert (config.redis_prefix, config.redis_gap_wait_ms) == ("test-1:", 50.0)
    assert config.redis_presence_interval == 2.0
    defaults = ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s"})
    assert (defaults.redis_url, defaults.redis_prefix) == ("", "chat:")
    with pytest.raises(ConfigError, match="CHAT_REDIS_URL"):
        ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s", "CHAT_REDIS_URL": "r:6379"})


def test_redis_url_parts():
    """Host, port (6379 by default) and password come from the URL."""
    from chatserver.redisbus import parse_redis_url

    assert parse_redis_url("redis://:s%40cret@cache:6380/3") == ("cache", 6380, "s@cret")
    assert parse_redis_url("redis://127.0.0.1") == ("127.0.0.1", 6379, None)


def test_limit_variables_change_their_fields_and_bad_values_name_the_variable():
    """The limits of issue 10 (per identity and address, heads, presence, log throttle)."""
    env = {
        "CHAT_SHARED_SECRET": "s",
        "CHAT_ADDRESS_RATE": "7.5",
        "CHAT_ADDRESS_BURST": "30",
        "CHAT_MAX_CONNECTIONS": "4",
        "CHAT_MAX_ADDRESS_CONNECTIONS": "40",
        "CHAT_BEHIND_PROXY": "1",
        "CHAT_PRESENCE_INTERVAL": "2",
        "CHAT_MAX_HEAD_BYTES": "4096",
        "CHAT_MAX_HEAD_LINES": "50",
        "CHAT_LOG_BURST": "3",
        "CHAT_LOG_INTERVAL": "10",
    }
    config = ChatServerConfig.from_environ(env)
    assert (config.address_rate, config.address_burst) == (7.5, 30)
    assert (config.max_connections, config.max_address_connections) == (4, 40)
    assert config.behind_proxy is True and config.presence_interval == 2.0
    assert (config.max_head_bytes, config.max_head_lines) == (4096, 50)
    assert (config.log_burst, config.log_interval) == (3, 10.0)
    assert ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s"}).behind_proxy is False
    for name, value in (
        ("CHAT_BEHIND_PROXY", "maybe"),
        ("CHAT_MAX_CONNECTIONS", "0"),
        ("CHAT_MAX_HEAD_BYTES", "100"),
    ):
        with pytest.raises(ConfigError, match=name):
            ChatServerConfig.from_environ({"CHAT_SHARED_SECRET": "s", name: value})
