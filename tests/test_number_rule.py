"""Contract: Django and the chat server parse numbers in URLs by the same rule (docs/protocol.md,
"Numbers in URLs"). Neither process imports the other, so the rule is checked here, on both."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chat.params import MAX_ID as DJANGO_MAX
from chat.params import parse_decimal as django_parse
from chatserver.admission import MAX_ID as CHAT_MAX
from chatserver.admission import parse_decimal as chat_parse

SAMPLES = ["0", "7", "00012", str(CHAT_MAX), str(CHAT_MAX + 1), "1" * 19, " 1", "+1", "1_0", "١"]


def _outcome(parse, raw: str):
    try:
        return parse(raw)
    except ValueError:
        return "refused"


@given(st.one_of(st.text(max_size=20), st.sampled_from(SAMPLES)))
@settings(max_examples=400, deadline=None)
def test_both_processes_accept_and_refuse_the_same_strings(raw):
    """Any string: both parsers give the same number, or both refuse it."""
    assert DJANGO_MAX == CHAT_MAX == 2**53 - 1
    assert _outcome(django_parse, raw) == _outcome(chat_parse, raw)
