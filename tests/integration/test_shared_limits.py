"""One body limit for both processes: `CHAT_MAX_BODY`, set once in the environment of both, is
the limit the chat server checks, the limit Django stores under and the limit the room page hands
to the browser (docs/protocol.md, "Shapes"; docs/operations.md)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.support.live import LiveSystem
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

RAISED = 8000


@pytest.fixture(scope="module")
def raised(tmp_path_factory: pytest.TempPathFactory):
    """gunicorn and twistd started with the same environment, `CHAT_MAX_BODY=8000`."""
    workdir: Path = tmp_path_factory.mktemp("raised-body")
    with LiveSystem(workdir, {"CHAT_MAX_BODY": str(RAISED)}) as system:
        system.create_room("long-bodies", guests=True)
        yield system


def test_a_raised_body_limit_is_accepted_and_stored_end_to_end(raised):
    """A body over the default 4,000 but within `CHAT_MAX_BODY` is stored by Django and reaches
    the sender as a stored message, not as a refusal from one process after the other said yes."""
    session = raised.guest_session("long-bodies")
    client = ChatClient(raised.ticket(session, "long-bodies")["ws_url"], origin=raised.origin)
    nonce = uuid.uuid4().hex
    body = "é" * (RAISED - 1000)
    client.say(body, nonce)
    answer = client.wait_for(lambda f: f.get("nonce") == nonce, timeout=20)
    assert answer["type"] == "message", answer
    assert answer["body"] == body
    assert [m["body"] for m in raised.stored_messages("long-bodies")] == [body]
    client.close()


def test_a_body_over_the_raised_limit_is_refused_by_the_chat_server(raised):
    """One character over `CHAT_MAX_BODY` is refused `body_too_long` with its nonce, and nothing
    is stored."""
    session = raised.guest_session("long-bodies")
    client = ChatClient(raised.ticket(session, "long-bodies")["ws_url"], origin=raised.origin)
    nonce = uuid.uuid4().hex
    client.say("x" * (RAISED + 1), nonce)
    refusal = client.wait_for(lambda f: f.get("nonce") == nonce, timeout=20)
    assert (refusal["type"], refusal["code"]) == ("error", "body_too_long"), refusal
    assert str(RAISED) in refusal["message"]
    assert nonce not in {m["nonce"] for m in raised.stored_messages("long-bodies")}
    client.close()


def test_the_room_page_hands_the_raised_limit_to_the_browser(raised):
    """The message list's `data-max-body` (read by the client's timeline and the composer's
    counter, which counts characters as the server does) carries `CHAT_MAX_BODY`; the composer
    has no `maxlength` (it counts UTF-16 code units and would cut a paste silently)."""
    page = raised.guest_session("long-bodies").get(
        f"{raised.django_url}/chats/long-bodies/", timeout=10
    )
    page.raise_for_status()
    composer = re.search(r'<textarea id="composer-input"[^>]*>', page.text)
    assert composer and "maxlength" not in composer.group(0)
    timeline = re.search(r'<ol id="message-list"[^>]*>', page.text)
    assert timeline and f'data-max-body="{RAISED}"' in timeline.group(0)
