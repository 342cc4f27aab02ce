"""Client frame validation."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatserver.frames import FrameError, parse_client_frame


@pytest.mark.parametrize(
    "raw, code",
    [
        (b"{", "bad_json"),
        (b"[1]", "bad_frame"),
        (b'{"type":1}', "bad_frame"),
        (b'{"type":"dance"}', "unknown_type"),
        (b'{"type":"message","body":"hi"}', "bad_frame"),
        (b'{"type":"message","body":"hi","nonce":"a b"}', "bad_nonce"),
        (b'{"type":"message","body":"hi","nonce":""}', "bad_nonce"),
        (b'{"type":"message","body":"   ","nonce":"n"}', "empty_body"),
        (b'{"type":"message","body":5,"nonce":"n"}', "bad_frame"),
    ],
)
def test_refusals_have_the_documented_codes(raw, code):
    """Each kind of bad frame maps to its error code."""
    with pytest.raises(FrameError) as info:
        parse_client_frame(raw, 4000)
    assert info.value.code == code


def test_body_limit_counts_stripped_characters_and_nonce_is_echoed():
    """4000 characters (after stripping) pass, 4001 fail with the nonce echoed."""
    ok = parse_client_frame(
        orjson.dumps({"type": "message", "body": " " + "é" * 4000 + " ", "nonce": "n_1-A"}), 4000
    )
    assert ok.body == "é" * 4000 and ok.nonce == "n_1-A"
    with pytest.raises(FrameError) as info:
        parse_client_frame(
            orjson.dumps({"type": "message", "body": "x" * 4001, "nonce": "n"}), 4000
        )
    assert info.value.code == "body_too_long" and info.value.nonce == "n"


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise_anything_but_frame_error(raw):
    """Any payload either parses or raises FrameError (never another exception)."""
    try:
        frame = parse_client_frame(raw, 4000)
    except FrameError as exc:
        assert exc.code in {
            "bad_json",
            "bad_frame",
            "unknown_type",
            "bad_nonce",
            "empty_body",
            "body_too_long",
        }
    else:
        assert frame.type in {"message", "typing", "ping"}


@given(st.text(min_size=1, max_size=64, alphabet=st.characters(codec="ascii")))
def test_nonce_alphabet_property(nonce):
    """A nonce is accepted exactly when it is 1-64 of [A-Za-z0-9_-]."""
    valid = all(c.isascii() and (c.isalnum() or c in "_-") for c in nonce)
    try:
        parse_client_frame(orjson.dumps({"type": "message", "body": "b", "nonce": nonce}), 10)
        accepted = True
    except FrameError:
        accepted = False
    assert accepted == valid
