"""Contract: the rules both processes apply are the same rules (docs/protocol.md, "Shapes").

Neither process imports the other, so each rule has one source per process (Django: its settings
or `chat/models.py`; the chat server: `chatserver/config.py` or the module that applies it), and
this file checks that the two sources agree: the same environment variable read with the same
default and the same refusals, and the same character rules for bodies, nonces and author ids.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from chat import internal_api as django_internal
from chat import models as django_rules
from chat import signing as django_signing
from chatserver import config as chat_config
from chatserver import control as chat_control
from chatserver import frames as chat_frames
from chatserver import ordering as chat_ordering
from chatserver import tickets as chat_tickets
from chatserver import web as chat_web
from chatserver.config import ChatServerConfig, ConfigError

SETTINGS_FILE = Path(__file__).resolve().parents[2] / "django_twisted_chat" / "settings.py"
SECRETS = {"DJANGO_SECRET_KEY": "contract-test", "CHAT_SHARED_SECRET": "contract-test"}


def django_setting(monkeypatch: pytest.MonkeyPatch, name: str, raw: str | None) -> object:
    """`name` as Django's settings module reads it from an environment where it is `raw`
    (None: unset). The module is run afresh, as a starting process would."""
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    if raw is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, raw)
    return runpy.run_path(str(SETTINGS_FILE))[name]


def chat_server_config(name: str, raw: str | None) -> ChatServerConfig:
    """The chat server's config from an environment where `name` is `raw` (None: unset)."""
    environ = dict(SECRETS)
    if raw is not None:
        environ[name] = raw
    return ChatServerConfig.from_environ(environ)


# Settings both processes read: variable -> (the chat server's config field, default).
SHARED_SETTINGS = {
    "CHAT_MAX_BODY": ("max_body", 4000),
    "CHAT_SIGNATURE_WINDOW": ("signature_window", 60),
    "CHAT_MAX_FILES_PER_MESSAGE": ("max_files", 10),
}


@pytest.mark.parametrize("name", SHARED_SETTINGS)
@pytest.mark.parametrize("raw", [None, "", "8000", " 120 ", "1"])
def test_both_processes_read_a_shared_setting_alike(monkeypatch, name, raw):
    """A shared setting unset (the defaults), empty or set: Django and the chat server end up
    with the same value."""
    field, default = SHARED_SETTINGS[name]
    django_value = django_setting(monkeypatch, name, raw)
    assert django_value == getattr(chat_server_config(name, raw), field)
    if raw is None:
        assert django_value == getattr(ChatServerConfig, field) == default


@pytest.mark.parametrize("name", SHARED_SETTINGS)
@pytest.mark.parametrize("raw", ["0", "-5", "4k", "1.5"])
def test_both_processes_refuse_the_same_bad_values(monkeypatch, name, raw):
    """A value one process would refuse at start-up is refused by the other too, and each error
    names the variable."""
    with pytest.raises(ImproperlyConfigured, match=name):
        django_setting(monkeypatch, name, raw)
    with pytest.raises(ConfigError, match=name):
        chat_server_config(name, raw)


def _chat_server_body_code(body: str, limit: int) -> str | None:
    try:
        chat_frames.validate_message({"body": body, "nonce": "n"}, limit)
    except chat_frames.FrameError as refused:
        return refused.code
    return None


BODIES = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.sampled_from(" \t\n\u3000\x00\ud800a\u202e"), max_size=12),
    st.integers(0, 45).map(lambda n: " " + "x" * n + "\n"),
)


@given(body=BODIES, limit=st.sampled_from([1, 10, 40]))
@settings(max_examples=300, deadline=None)
def test_a_body_gets_the_same_verdict_from_both_processes(body, limit):
    """Any body, any limit: Django's `body_error` and the chat server's frame check give the same
    code (`empty_body`, `body_too_long`, `bad_body`) or both accept it."""
    with override_settings(CHAT_MAX_BODY=limit):
        assert django_rules.body_error(body) == _chat_server_body_code(body, limit)


NONCES = st.one_of(
    st.text(max_size=70),
    st.text(alphabet=st.sampled_from("aZ09_-.+ é"), min_size=0, max_size=66),
    st.uuids().map(str),
)


@given(NONCES)
@settings(max_examples=300, deadline=None)
def test_a_nonce_gets_the_same_verdict_from_both_processes(nonce):
    """A nonce is 1 to 64 of `[A-Za-z0-9_-]` on both sides (a `\\n` before the end included)."""
    for candidate in (nonce, nonce + "\n"):
        chat_server_ok = chat_frames.NONCE_RE.fullmatch(candidate) is not None
        assert django_rules.is_valid_nonce(candidate) == chat_server_ok


@given(st.one_of(st.text(max_size=20), st.from_regex(r"g:[0-9a-fA-F]{15,17}", fullmatch=True)))
@settings(max_examples=300, deadline=None)
def test_a_guest_uid_gets_the_same_verdict_from_both_processes(uid):
    """`g:<16 lower-case hex>`: the shape Django stores and the chat server's rename call takes."""
    for candidate in (uid, uid + "\n"):
        assert (django_rules.GUEST_UID_RE.fullmatch(candidate) is None) == (
            chat_control.GUEST_UID_RE.fullmatch(candidate) is None
        )


@given(
    st.one_of(
        st.text(alphabet=st.characters(exclude_categories=()), max_size=12),
        st.text(alphabet=st.sampled_from("a\x00\ud800\udfff\ue000\U0001f600"), max_size=6),
    )
)
@settings(max_examples=300, deadline=None)
def test_storable_text_is_one_rule(text):
    """NUL and surrogates are unstorable on both sides; nothing else is."""
    assert django_rules.has_unstorable(text) == chat_frames.unstorable(text)


def test_name_length_is_the_same_number_on_both_sides():
    """A display name is 1 to 64 characters: Django's columns and checks, the chat server's ticket
    and rename checks."""
    assert django_rules.MAX_NAME_LENGTH == chat_tickets.MAX_NAME_LENGTH == 64


def test_the_chat_server_never_asks_django_for_more_than_it_answers():
    """The chat server's reads and batches stay within the internal API's caps: a catch-up page,
    a gap fill and a default history read are at most Django's page, a batch at most Django's
    batch, and settings beyond them are refused at start-up."""
    assert chat_config.DJANGO_PAGE_MAX == django_internal.INTERNAL_PAGE_MAX
    assert chat_config.DJANGO_BATCH_MAX == django_internal.MAX_BATCH_ITEMS
    assert chat_ordering.FILL_PAGE <= django_internal.INTERNAL_PAGE_MAX
    defaults = ChatServerConfig(shared_secret="x")
    assert defaults.catchup_page <= django_internal.INTERNAL_PAGE_MAX
    assert defaults.batch_size <= django_internal.MAX_BATCH_ITEMS
    for name in ("CHAT_CATCHUP_PAGE", "CHAT_BATCH_SIZE"):
        with pytest.raises(ConfigError, match=name):
            chat_server_config(name, "1001")


def test_signed_calls_have_one_body_cap_and_tickets_live_within_the_accepted_lifetime():
    """A signed call's body may be 1 MiB in either direction (413 past it), and a ticket Django
    mints with its default lifetime is never refused `too_long` by a default chat server."""
    assert django_signing.MAX_BODY_BYTES == chat_web.MAX_SIGNED_BODY == 1024 * 1024
    assert django_settings.CHAT_TICKET_TTL <= ChatServerConfig.max_ticket_ttl
