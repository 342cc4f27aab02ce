"""A page resending a nonce the server already stored: acknowledged, never shown twice, and a
message staff deleted never comes back (the `ack` frame and the long-poll `repeat` answer)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.test_resilience import refuse_websockets

pytestmark = pytest.mark.browser


def leave_in_outbox(chat, slug: str, nonce: str, body: str) -> None:
    """Put an entry in the page's outbox, as if its acknowledgement had never arrived."""
    entries = [
        {"nonce": nonce, "body": body, "created": "2026-11-22T09:00:00.000Z", "failed": None}
    ]
    chat.page.evaluate(
        "([key, value]) => localStorage.setItem(key, value)",
        [f"dtc.outbox.{slug}", json.dumps(entries)],
    )


def delete_message(live, slug: str, body: str) -> int:
    """Staff deletes the message with `body`, as the admin action does; returns its id."""
    (message,) = [m for m in live.stored_messages(slug) if m["body"] == body]
    live.shell(
        "from chat.models import Message\nfrom chat import actions\n"
        f"Message.objects.filter(pk={message['id']}).update(is_deleted=True)\n"
        f"actions.message_deleted({slug!r}, {message['id']})\n"
    )
    return message["id"]


@pytest.mark.parametrize("transport", ["socket", "long polling"])
def test_resent_nonce_of_a_deleted_message_is_dropped_not_shown(open_room, live, transport):
    """A page whose outbox still holds the nonce of a message staff deleted resends it after a
    reload: the server answers the sender alone that it is deleted, the unsent copy disappears,
    the outbox empties, the text is never shown again (there or in another page), and nothing
    new is stored. The next message typed goes out normally."""
    live_room = f"deleted-repeat-{uuid.uuid4().hex[:10]}"  # one fresh room per transport
    live.create_room(live_room, guests=True)
    hooks = {"before_load": refuse_websockets([])} if transport == "long polling" else {}
    state = "Live (polling)" if transport == "long polling" else "Live"
    writer = open_room(live_room, wait_live=False, **hooks)
    expect(writer.state).to_have_text(state)
    reader = open_room(live_room)
    writer.send("regrettable")
    expect(reader.message("regrettable")).to_have_count(1)
    nonce = writer.message("regrettable").get_attribute("data-nonce")
    assert nonce
    delete_message(live, live_room, "regrettable")
    expect(reader.message("regrettable")).to_have_count(0)

    leave_in_outbox(writer, live_room, nonce, "regrettable")
    if transport == "long polling":
        # A fallback poller takes messages once its first poll answered: a new message answers
        # that (held) poll at once instead of after the poll timeout.
        with writer.page.expect_request(lambda r: "/poll/" in r.url and r.method == "GET"):
            writer.page.reload()
    else:
        writer.page.reload()
    reader.send("meanwhile")
    expect(writer.page.locator("#message-list li.pending")).to_have_count(0)
    expect(writer.message("regrettable")).to_have_count(0)
    wait_outbox_empty(writer, live_room)
    writer.send("after the repeat")
    for chat in (writer, reader):
        expect(chat.message("after the repeat")).to_have_count(1)
        expect(chat.page.locator("#message-list")).not_to_contain_text(re.compile("regrettable"))
    bodies = [m["body"] for m in live.stored_messages(live_room)]
    assert bodies == ["meanwhile", "after the repeat"]


def wait_outbox_empty(chat, slug: str) -> None:
    """Waits (Playwright's deadline) until the page's outbox for the room is gone."""
    chat.page.wait_for_function(
        "(key) => localStorage.getItem(key) === null", arg=f"dtc.outbox.{slug}"
    )
