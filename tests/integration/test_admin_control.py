"""Moderation from the real Django admin reaches sockets on the real chat server."""

from __future__ import annotations

import re
import uuid

import pytest
import requests

from tests.support.live import LiveSystem
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def staff(live: LiveSystem) -> requests.Session:
    """A staff member signed in through the real login form."""
    password = uuid.uuid4().hex
    live.create_user("moderator", password, staff=True)
    return live.user_session("moderator", password)


def admin_action(live: LiveSystem, staff: requests.Session, model: str, action: str, pk: int):
    """Run an admin changelist action the way the browser form does (CSRF included)."""
    url = f"{live.django_url}/admin/chat/{model}/"
    page = staff.get(url, timeout=10)
    page.raise_for_status()
    response = staff.post(
        url,
        data={
            "action": action,
            "_selected_action": str(pk),
            "index": "0",
            "csrfmiddlewaretoken": staff.cookies["csrftoken"],
        },
        headers={"Referer": url},
        timeout=10,
    )
    response.raise_for_status()
    return response


def join(live: LiveSystem, slug: str) -> ChatClient:
    session = live.guest_session(slug)
    return ChatClient(live.ticket(session, slug)["ws_url"], origin=live.origin)


def pk_of(live: LiveSystem, code: str) -> int:
    return int(re.findall(r"\d+", live.shell(f"print({code})"))[-1])


def test_admin_delete_reaches_connected_clients(live, live_room, staff):
    """Moderating a message in the admin sends `deleted` to the room and hides it from history."""
    alice, bob = join(live, live_room), join(live, live_room)
    alice.say("please delete me", uuid.uuid4().hex)
    message_id = bob.wait_for_messages(1)[0]["id"]
    admin_action(live, staff, "message", "moderate_messages", message_id)
    for client in (alice, bob):
        assert client.wait_for(lambda f: f["type"] == "deleted")["id"] == message_id
    assert message_id not in [m["id"] for m in live.stored_messages(live_room)]
    fresh = join(live, live_room)
    assert message_id not in [m["id"] for m in fresh.hello["history"]]
    for client in (alice, bob, fresh):
        client.close()


def test_admin_archive_closes_sockets_and_refuses_new_ones(live, staff):
    """Archiving in the admin closes the room's sockets with 4004; new tickets are refused."""
    live.create_room("to-be-archived")
    member = join(live, "to-be-archived")
    session = live.guest_session("to-be-archived")
    room_pk = pk_of(
        live, "__import__('chat.models').models.Room.objects.get(slug='to-be-archived').pk"
    )
    admin_action(live, staff, "room", "archive_rooms", room_pk)
    code, reason = member.wait_closed()
    assert code == 4004 and "archived" in reason
    ticket = session.get(f"{live.django_url}/api/rooms/to-be-archived/ticket/", timeout=10)
    assert ticket.status_code == 404
    page = session.get(f"{live.django_url}/chats/to-be-archived/", timeout=10)
    assert page.status_code == 404 and "archived" in page.text.lower()


def test_admin_room_list_shows_who_is_online(live, live_room, staff):
    """The admin room list asks the chat server who is online now."""
    client = join(live, live_room)
    page = staff.get(f"{live.django_url}/admin/chat/room/?q={live_room}", timeout=10)
    page.raise_for_status()
    row = page.text[page.text.index(live_room) :]
    assert re.search(r'field-online_now">1<', row)
    client.close()
