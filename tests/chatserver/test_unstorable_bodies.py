"""Bodies no store can take (NUL, UTF-16 surrogates) are refused `bad_body` on both transports.

The rule is docs/protocol.md's "storable text": U+0000 and U+D800..U+DFFF are refused anywhere in
the body; the refusal carries the nonce so the client can mark that very message as failed, and
nothing reaches the persistence queue (one such item must never reach Django's batch).
"""

from __future__ import annotations

import pytest

from chatserver.frames import FrameError, parse_client_frame, unstorable
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from tests.chatserver.support import (
    ORIGIN,
    WsClient,
    body_json,
    client_frame,
    make_hub,
    render,
    ticket,
    web_request,
)

# Raw JSON text of bodies: escapes exactly as a hostile client would write them.
UNSTORABLE_BODIES = [
    r"a\u0000b",  # NUL
    r"\ud800",  # a lone high surrogate
    r"tail \udfff",  # a lone low surrogate
    r"\udc00\ud800 reversed pair",  # a low surrogate before a high one is not a pair
]


def _frame(body_json_text: str, nonce: str = "n1") -> bytes:
    return ('{"type":"message","body":"' + body_json_text + '","nonce":"' + nonce + '"}').encode()


@pytest.mark.parametrize("body", UNSTORABLE_BODIES)
def test_validator_refuses_unstorable_bodies_with_bad_body_and_nonce(body):
    """NUL and every unpaired surrogate give `bad_body` with the message's nonce."""
    with pytest.raises(FrameError) as info:
        parse_client_frame(_frame(body), 4000)
    assert (info.value.code, info.value.nonce) == ("bad_body", "n1")


def test_paired_surrogates_and_other_controls_are_kept():
    """A real pair escape (one astral character) and non-NUL controls are ordinary text."""
    frame = parse_client_frame(_frame(r"smile \ud83d\ude00 \u0007 \u202e end"), 4000)
    assert frame.body == "smile \U0001f600 \x07 \u202e end"
    assert not unstorable(frame.body)


def test_malformed_json_with_escapes_is_still_bad_json():
    """The lenient second parse only rescues surrogate escapes, never broken JSON or NaN."""
    for raw in (b'{"body":"\\ud800"', b'{"x":NaN,"y":"\\u0041"}', b'{"a":"\\uZZZZ"}'):
        with pytest.raises(FrameError) as info:
            parse_client_frame(raw, 4000)
        assert info.value.code == "bad_json"


@pytest.mark.parametrize("body", UNSTORABLE_BODIES)
def test_socket_answers_bad_body_and_queues_nothing(body):
    """Over a real socket: an error frame `bad_body` with the nonce; Django sees no batch."""
    hub, reactor, django = make_hub()
    factory = ChatServerFactory(hub, reactor, hub.config)
    client = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN)
    client.json_frames()  # hello
    client.protocol.dataReceived(client_frame(_frame(body, "poison-1")))
    reactor.advance(1)
    errors = [f for f in client.json_frames() if f["type"] == "error"]
    assert [(e["code"], e["nonce"]) for e in errors] == [("bad_body", "poison-1")]
    assert django.batches == [] and hub.persistence.depth() == 0


@pytest.mark.parametrize("body", UNSTORABLE_BODIES)
def test_long_poll_post_answers_400_bad_body_and_queues_nothing(body):
    """POST /poll with the same bodies: 400 `bad_body`; Django sees no batch."""
    hub, reactor, django = make_hub()
    poll = LongPollResource(hub, hub.config, hub.clock)
    raw = ('{"body":"' + body + '","nonce":"poison-2"}').encode()
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    request = render(
        poll,
        web_request("POST", f"/poll/lobby?ticket={ticket(reactor)}", "/poll/", raw, headers),
    )
    assert request.responseCode == 400
    assert body_json(request)["error"] == "bad_body"
    assert django.batches == [] and hub.persistence.depth() == 0
