"""The twistd plugin's options: `twistd -n chatserver --port tcp:9000 --django-url URL`.

`twisted/plugins/chatserver_plugin.py` names this module; twistd and twist then use `Options`
and `makeService(options)` (the `IServiceMaker` hooks, as `twisted.web.tap` does for `twistd
web`). Each option overrides one or two environment variables: `Options` lays the options over
the environment and builds the config with `ChatServerConfig.from_environ`, the same parser the
tac uses, so defaults, validation and derived values (the internal port is `CHAT_PORT + 100`
unless `CHAT_INTERNAL_PORT` is set) are identical whichever way the server is started. Then
`chatserver.service.makeService`, the one composition root, builds the service.

Secrets are never options: every local user can read a process's command line (`ps`), so
`CHAT_SHARED_SECRET` and `CHAT_PREVIOUS_SHARED_SECRET` come from the environment only, and a URL
option carrying a password is refused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from twisted.python import usage

from chatserver import service
from chatserver.config import ChatServerConfig, ConfigError

# Plain options: option name -> the environment variable it overrides.
VARIABLES = {
    "django-url": "CHAT_DJANGO_URL",
    "allowed-origins": "CHAT_ALLOWED_ORIGINS",
    "redis-url": "CHAT_REDIS_URL",
    "redis-prefix": "CHAT_REDIS_PREFIX",
}
# Listening options: option name -> (port variable, interface variable).
LISTENERS = {
    "port": ("CHAT_PORT", "CHAT_INTERFACE"),
    "internal-port": ("CHAT_INTERNAL_PORT", "CHAT_INTERNAL_INTERFACE"),
}
# ASCII digits only (str.isdigit also accepts other scripts' digits and superscripts).
_PORT = re.compile(r"[0-9]{1,5}")
# Options whose value must not carry a password (it would be readable in `ps`).
URL_OPTIONS = ("django-url", "redis-url")

LONGDESC = """\
Runs the django-twisted-chat chat server, as `twistd -n -y chatserver.tac` does. Every
setting comes from the environment (the CHAT_* variables of docs/operations.md); an option given
here overrides its variable. CHAT_SHARED_SECRET (and CHAT_PREVIOUS_SHARED_SECRET while a secret
is rotated) are read from the environment only, never from the command line, which every local
user can read with ps. For the same reason a --django-url or --redis-url with a password is
refused: put such a URL in the environment instead. LISTEN is PORT or tcp:PORT[:interface=ADDRESS]
(escape colons in an IPv6 address with a backslash); without interface= the interface comes from
the environment (default 127.0.0.1, not every interface)."""


class Options(usage.Options):
    """`twistd chatserver` options, mapped onto `ChatServerConfig` through its variables.

    After parsing, `options.config` is the finished config (a parse error or a bad value raises
    `usage.UsageError`, which twistd and twist print with the usage text).
    """

    synopsis = "[options]"
    longdesc = LONGDESC
    optParameters = [
        [
            "port",
            None,
            None,
            "Public listener, a LISTEN (below): WebSockets, long polls, /healthz, control API. "
            "Overrides CHAT_PORT (default 9000) and CHAT_INTERFACE.",
        ],
        [
            "internal-port",
            None,
            None,
            "Internal listener, a LISTEN: detailed /healthz and /metrics. Overrides "
            "CHAT_INTERNAL_PORT (default: the public port + 100) and CHAT_INTERNAL_INTERFACE.",
        ],
        [
            "django-url",
            None,
            None,
            "Where the chat server reaches Django (overrides CHAT_DJANGO_URL, "
            "default http://127.0.0.1:8000).",
        ],
        [
            "allowed-origins",
            None,
            None,
            "Comma-separated browser origins allowed to connect (overrides CHAT_ALLOWED_ORIGINS).",
        ],
        [
            "redis-url",
            None,
            None,
            "redis://host[:port] for fan-out across chat servers, without a password "
            "(overrides CHAT_REDIS_URL).",
        ],
        [
            "redis-prefix",
            None,
            None,
            "Redis channel prefix (overrides CHAT_REDIS_PREFIX, default chat:).",
        ],
    ]
    optFlags = [
        [
            "behind-proxy",
            None,
            "Take the client address from the last X-Forwarded-For entry; only behind a proxy "
            "that appends to it (sets CHAT_BEHIND_PROXY=1).",
        ],
    ]

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        # twistd builds Options() with no argument: the process environment, as the tac reads.
        self.environ = os.environ if environ is None else environ
        self.config: ChatServerConfig | None = None

    def overrides(self) -> dict[str, str]:
        """The environment variables the given options set, with their values."""
        overrides: dict[str, str] = {}
        for option in URL_OPTIONS:
            value = self[option]
            if value is not None and _has_password(value):
                raise usage.UsageError(
                    f"--{option} must not carry a password: every local user can read a command "
                    f"line. Put the URL in {VARIABLES[option]} (the environment) instead."
                )
        for option, variable in VARIABLES.items():
            if self[option] is not None:
                overrides[variable] = self[option]
        for option, (port_variable, interface_variable) in LISTENERS.items():
            if self[option] is not None:
                port, interface = parse_listen(option, self[option])
                overrides[port_variable] = port
                if interface:
                    overrides[interface_variable] = interface
        if self["behind-proxy"]:
            overrides["CHAT_BEHIND_PROXY"] = "1"
        return overrides

    def postOptions(self) -> None:  # noqa: N802 (twisted API)
        overrides = self.overrides()
        try:
            self.config = ChatServerConfig.from_environ({**self.environ, **overrides})
        except ConfigError as exc:
            raise usage.UsageError(_name_option(str(exc), overrides)) from None


def parse_listen(option: str, description: str) -> tuple[str, str]:
    """`PORT` or `tcp:PORT[:interface=ADDRESS]` (strports syntax) -> (port, interface or "").

    Only the TCP form: the config holds a TCP port and an interface, and the listener is built
    from them. Twisted's own parser does not expose the fields it parses, hence these few lines;
    they follow its rules (`:` separates, `\\` escapes the next character).
    """
    fields = _split(description)
    if len(fields) == 1 and _PORT.fullmatch(fields[0]):
        fields = ["tcp", fields[0]]
    if fields[0] != "tcp":
        raise usage.UsageError(
            f"--{option} {description!r}: only PORT or tcp:PORT[:interface=ADDRESS] is supported"
        )
    values: dict[str, str] = {}
    positional = ["port", "interface"]  # Twisted's order: tcp:PORT:ADDRESS also works
    for field in fields[1:]:
        key, equals, value = field.partition("=")
        if not equals and positional:
            key, value = positional[0], field
        if key not in positional:
            raise usage.UsageError(
                f"--{option} {description!r}: unexpected {field!r} "
                "(accepted: tcp:PORT[:interface=ADDRESS])"
            )
        positional.remove(key)
        values[key] = value
    port = values.get("port", "")
    if not _PORT.fullmatch(port) or int(port) > 65535:
        raise usage.UsageError(f"--{option} {description!r}: the port must be 0 to 65535")
    return str(int(port)), values.get("interface", "")


def makeService(options: Options) -> service.ChatService:  # noqa: N802 (IServiceMaker API)
    """The `IServiceMaker` hook: the same service tree as the tac, from the parsed config."""
    assert options.config is not None  # set by postOptions before twistd calls this
    return service.makeService(options.config)


def _split(description: str) -> list[str]:
    fields, current, chars = [], [], iter(description)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(char)
    fields.append("".join(current))
    return fields


def _has_password(url: str) -> bool:
    try:
        return urlsplit(url).password is not None
    except ValueError:  # malformed: from_environ or the first request says so
        return False


def _name_option(message: str, overrides: Mapping[str, str]) -> str:
    """Say which option a config error came from when an option set the variable it names.

    `ConfigError` messages start with the variable they are about.
    """
    options = {variable: option for option, variable in VARIABLES.items()}
    for option, variables in LISTENERS.items():
        options.update(dict.fromkeys(variables, option))
    variable = message.split(" ", 1)[0]
    if variable in overrides and variable in options:
        return f"{message} (set by --{options[variable]})"
    return message
