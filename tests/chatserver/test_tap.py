"""The twistd plugin's options -> ChatServerConfig: the environment is the default, an option
overrides its variable, and bad command lines are usage errors naming the option."""

from __future__ import annotations

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python.usage import UsageError

from chatserver import tap
from chatserver.config import ChatServerConfig

ENV = {"CHAT_SHARED_SECRET": "s"}


def parse(args: list[str], environ: dict[str, str] | None = None) -> ChatServerConfig:
    options = tap.Options({**ENV, **(environ or {})})
    options.parseOptions(args)
    assert options.config is not None
    return options.config


def test_without_options_the_config_is_the_environments():
    """No option: exactly what the tac builds from the same environment."""
    environ = {
        **ENV,
        "CHAT_PORT": "9001",
        "CHAT_DJANGO_URL": "http://django:8000",
        "CHAT_RATE": "2",
        "CHAT_PREVIOUS_SHARED_SECRET": "old",
    }
    assert parse([], environ) == ChatServerConfig.from_environ(environ)
    assert parse([]) == ChatServerConfig.from_environ(ENV)


def test_each_option_overrides_its_variable():
    """Every option wins over the variable it names; the other variables still apply."""
    environ = {
        "CHAT_PORT": "9001",
        "CHAT_INTERFACE": "10.0.0.1",
        "CHAT_INTERNAL_PORT": "9201",
        "CHAT_INTERNAL_INTERFACE": "10.0.0.2",
        "CHAT_DJANGO_URL": "http://env:8000",
        "CHAT_ALLOWED_ORIGINS": "https://env.example",
        "CHAT_REDIS_URL": "redis://env",
        "CHAT_REDIS_PREFIX": "env:",
        "CHAT_BEHIND_PROXY": "0",
        "CHAT_RATE": "2",
    }
    config = parse(
        [
            "--port",
            "tcp:9500:interface=0.0.0.0",
            "--internal-port",
            "tcp:9600:interface=127.0.0.2",
            "--django-url",
            "http://option:8000/",
            "--allowed-origins",
            "https://a.example, https://b.example/",
            "--redis-url",
            "redis://option:6380",
            "--redis-prefix",
            "opt:",
            "--behind-proxy",
        ],
        environ,
    )
    assert (config.port, config.interface) == (9500, "0.0.0.0")
    assert (config.internal_port, config.internal_interface) == (9600, "127.0.0.2")
    assert config.django_url == "http://option:8000"  # normalised by from_environ, as the tac's
    assert config.allowed_origins == ("https://a.example", "https://b.example")
    assert (config.redis_url, config.redis_prefix) == ("redis://option:6380", "opt:")
    assert config.behind_proxy is True
    assert config.rate == 2.0 and config.shared_secret == "s"


def test_the_listen_forms():
    """PORT and tcp:PORT keep the environment's interface (loopback by default, not every
    interface); interface= and Twisted's positional form set it; IPv6 colons are escaped."""
    assert (parse(["--port", "9500"]).port, parse(["--port", "9500"]).interface) == (
        9500,
        "127.0.0.1",
    )
    assert parse(["--port", "tcp:9500"], {"CHAT_INTERFACE": "10.0.0.1"}).interface == "10.0.0.1"
    assert parse(["--port", "tcp:port=9500:interface=10.0.0.3"]).interface == "10.0.0.3"
    assert parse(["--port", "tcp:9500:10.0.0.4"]).interface == "10.0.0.4"
    assert parse(["--port", r"tcp:9500:interface=\:\:1"]).interface == "::1"
    assert parse(["--port", "tcp:0"]).port == 0


def test_the_internal_port_follows_the_rules_of_the_environment():
    """--port moves the default internal port with it (port + 100) unless CHAT_INTERNAL_PORT or
    --internal-port says otherwise."""
    assert parse(["--port", "tcp:9001"]).internal_port == 9101
    assert parse(["--port", "tcp:9001"], {"CHAT_INTERNAL_PORT": "9300"}).internal_port == 9300
    assert parse(["--port", "9001", "--internal-port", "9400"]).internal_port == 9400


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "unix:/run/chat.sock"], "--port 'unix:/run/chat.sock': only PORT or tcp:PORT"),
        (["--port", "ssl:443"], "only PORT or tcp:PORT"),
        (["--port", "tcp:http"], "--port 'tcp:http': the port must be 0 to 65535"),
        (["--port", "tcp:\u0663"], "the port must be 0 to 65535"),
        (["--port", "\u00b2"], "only PORT or tcp:PORT"),
        (["--port", "tcp:"], "the port must be 0 to 65535"),
        (["--internal-port", "tcp:65536"], "--internal-port 'tcp:65536': the port must be 0 to"),
        (["--port", "tcp:9000:backlog=5"], "unexpected 'backlog=5'"),
        (["--port", "tcp:9000:a:b"], "unexpected 'b'"),
        (["--port", "tcp:9000:interface=a:interface=b"], "unexpected 'interface=b'"),
        (["--port", "9000", "--internal-port", "9000"], "CHAT_INTERNAL_PORT must differ"),
        (["--redis-url", "r:6379"], "CHAT_REDIS_URL must look like redis://host:6379"),
        (["--redis-url", "redis://:pw@r:6379"], "--redis-url must not carry a password"),
        (["--redis-url", "redis://user:pw@r"], "--redis-url must not carry a password"),
        (["--django-url", "http://u:pw@d:8000"], "--django-url must not carry a password"),
        (["--shared-secret", "s"], "option --shared-secret not recognized"),
        (["--previous-shared-secret", "s"], "option --previous-shared-secret not recognized"),
        (["--bogus"], "option --bogus not recognized"),
    ],
)
def test_bad_command_lines_are_usage_errors(args, message):
    """Each mistake raises UsageError (twistd prints it with the usage text) saying what is wrong
    and with which option; a refused password is never repeated."""
    with pytest.raises(UsageError) as refused:
        parse(args)
    assert message in str(refused.value)
    assert "pw" not in str(refused.value)


def test_a_config_error_names_the_option_that_caused_it():
    """A value from an option that from_environ refuses is reported with the option's name; the
    same mistake in the environment alone is reported without one."""
    with pytest.raises(UsageError, match=r"CHAT_REDIS_URL .* \(set by --redis-url\)$"):
        parse(["--redis-url", "r:6379"])
    with pytest.raises(UsageError, match=r"CHAT_REDIS_URL must look like .*'r:6379'$"):
        parse([], {"CHAT_REDIS_URL": "r:6379"})
    with pytest.raises(UsageError, match="CHAT_SHARED_SECRET is not set"):
        tap.Options({}).parseOptions(["--port", "9000"])


def test_the_plugin_is_installed_and_names_these_options():
    """`pip install -e .` made `twisted/plugins/chatserver_plugin.py` part of Twisted's plugin
    package: twistd finds a `chatserver` service maker whose options are `chatserver.tap`'s."""
    makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
    maker = makers["chatserver"]
    assert maker.options is tap.Options
    assert maker.makeService is tap.makeService
