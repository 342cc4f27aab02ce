"""Access follows Django as it changes, between the real processes (gunicorn + twistd).

For each change (sign-out, deactivation, a room that stops allowing guests, room deletion by the
shell and by the admin's Delete button, un-archiving) an open socket and a held long poll are
closed within 2 s with the documented code, a reconnect with a ticket minted before the change
is refused, and a fresh ticket works where the new rules allow it.
"""

from __future__ import annotations

import re
import threading
import uuid
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.support.live import LiveSystem, mint_ticket, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

CLOSE_WITHIN = 2.0


def refused_status(url: str, origin: str) -> int:
    """The HTTP status of a refused WebSocket handshake."""
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=10, origin=origin):
        pass
    return refused.value.response.status_code


class HeldPoll:
    """A long poll (`since` = the newest id, so the server holds it) answered in a thread."""

    def __init__(self, poll_url: str, origin: str, since: int = 0) -> None:
        self.answer: tuple[int, Any] | None = None
        self._thread = threading.Thread(
            target=self._run, args=(f"{poll_url}&since={since}", origin), daemon=True
        )
        self._thread.start()

    def _run(self, url: str, origin: str) -> None:
        response = requests.get(url, headers={"Origin": origin}, timeout=60)
        self.answer = (response.status_code, response.json())

    def wait(self, timeout: float = CLOSE_WITHIN) -> tuple[int, Any]:
        return wait_until(lambda: self.answer, timeout=timeout, interval=0.02)


def held(live: LiveSystem, ticket: dict, since: int = 0) -> HeldPoll:
    """A poll that is being held by the chat server (it shows up as a poller in stats)."""
    before = live.internal_get(live.chat_url, "/internal/stats").json().get("pollers", 0)
    poll = HeldPoll(ticket["poll_url"], live.origin, since)
    wait_until(
        lambda: live.internal_get(live.chat_url, "/internal/stats").json()["pollers"] > before
    )
    assert poll.answer is None
    return poll


def sign_in(live: LiveSystem) -> tuple[str, str, requests.Session]:
    """A new user signed in through the login form: (username, password, session)."""
    username = "u" + uuid.uuid4().hex[:10]
    password = uuid.uuid4().hex
    live.create_user(username, password)
    return username, password, live.user_session(username, password)


def sign_out(live: LiveSystem, session: requests.Session) -> None:
    url = f"{live.django_url}/accounts/logout/"
    response = session.post(
        url,
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": url},
        timeout=10,
    )
    response.raise_for_status()


def ticket_status(live: LiveSystem, session: requests.Session, slug: str) -> int:
    return session.get(f"{live.django_url}/api/rooms/{slug}/ticket/", timeout=10).status_code


@pytest.fixture
def members_room(live: LiveSystem, request: pytest.FixtureRequest) -> str:
    """A fresh room for signed-in users only."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:36] + "-mem"
    live.create_room(slug, guests=False)
    return slug


def test_sign_out_closes_socket_and_poll_and_old_tickets_are_refused(live, members_room):
    """Signing out closes the user's socket (4003) and held poll (403 access_revoked) within
    2 s; the old ticket is refused; the signed-out session gets no new ticket."""
    _name, _password, session = sign_in(live)
    old = live.ticket(session, members_room)
    socket = ChatClient(old["ws_url"], origin=live.origin)
    poll = held(live, live.ticket(session, members_room))
    sign_out(live, session)
    assert socket.wait_closed(timeout=CLOSE_WITHIN) == (4003, "access revoked")
    status, body = poll.wait()
    assert status == 403 and body["error"] == "access_revoked"
    assert refused_status(old["ws_url"], live.origin) == 403
    refused = requests.get(old["poll_url"], headers={"Origin": live.origin}, timeout=10)
    assert refused.status_code == 403 and refused.json()["error"] == "bad_ticket"
    assert ticket_status(live, session, members_room) == 403


def test_sign_out_elsewhere_lets_a_still_signed_in_device_reconnect(live, members_room):
    """The uid is revoked everywhere, so the user's other device is closed too (4003); it is
    still signed in, so its fresh ticket works at once."""
    username, password, phone = sign_in(live)
    laptop = live.user_session(username, password)
    socket = ChatClient(live.ticket(phone, members_room)["ws_url"], origin=live.origin)
    sign_out(live, laptop)
    assert socket.wait_closed(timeout=CLOSE_WITHIN)[0] == 4003
    again = ChatClient(live.ticket(phone, members_room)["ws_url"], origin=live.origin)
    assert again.hello["type"] == "hello"
    again.close()


def test_deactivation_closes_the_users_connections(live, members_room):
    """Deactivating a user in the shell closes its socket within 2 s; its old ticket and its
    session's new ticket requests are refused."""
    username, _password, session = sign_in(live)
    old = live.ticket(session, members_room)
    socket = ChatClient(old["ws_url"], origin=live.origin)
    poll = held(live, live.ticket(session, members_room))
    live.shell(
        "from django.contrib.auth import get_user_model\n"
        f"u = get_user_model().objects.get(username={username!r})\n"
        "u.is_active = False\nu.save()\n"
    )
    assert socket.wait_closed(timeout=CLOSE_WITHIN)[0] == 4003
    assert poll.wait()[0] == 403
    assert refused_status(old["ws_url"], live.origin) == 403
    assert ticket_status(live, session, members_room) == 403


def test_room_stops_allowing_guests(live, live_room):
    """A room that stops allowing guests closes its guests (socket 4003, poll 403) within 2 s;
    signed-in members stay; guests' old tickets are refused and they get no new ticket."""
    guest = live.guest_session(live_room)
    guest_ticket = live.ticket(guest, live_room)
    guest_socket = ChatClient(guest_ticket["ws_url"], origin=live.origin)
    guest_poll = held(live, live.ticket(live.guest_session(live_room), live_room))
    _name, _password, member = sign_in(live)
    member_socket = ChatClient(live.ticket(member, live_room)["ws_url"], origin=live.origin)
    live.shell(
        "from chat.models import Room\n"
        f"r = Room.objects.get(slug={live_room!r})\nr.allow_guests = False\nr.save()\n"
    )
    assert guest_socket.wait_closed(timeout=CLOSE_WITHIN) == (4003, "access revoked")
    assert guest_poll.wait()[0] == 403
    assert refused_status(guest_ticket["ws_url"], live.origin) == 403
    assert ticket_status(live, guest, live_room) == 403
    member_socket.send({"type": "ping"})
    assert member_socket.wait_for(lambda f: f["type"] == "pong", timeout=5)
    fresh = ChatClient(live.ticket(member, live_room)["ws_url"], origin=live.origin)
    for client in (member_socket, fresh):
        client.close()


def test_room_deleted_in_the_shell_is_closed_and_forgotten(live, live_room):
    """``Room.objects.filter(...).delete()``: sockets close with 4005 and held polls answer 410
    room_deleted within 2 s; a pre-delete ticket opens nothing and polls nothing."""
    session = live.guest_session(live_room)
    writer = ChatClient(live.ticket(session, live_room)["ws_url"], origin=live.origin)
    writer.say("history that must go", uuid.uuid4().hex)
    last = writer.wait_for_messages(1)[0]["id"]
    pre_delete = live.ticket(session, live_room)
    poll = held(live, live.ticket(session, live_room), since=last)
    live.shell(f"from chat.models import Room\nRoom.objects.filter(slug={live_room!r}).delete()\n")
    assert writer.wait_closed(timeout=CLOSE_WITHIN) == (4005, "room deleted")
    status, body = poll.wait()
    assert status == 410 and body["error"] == "room_deleted"
    assert refused_status(pre_delete["ws_url"], live.origin) == 403
    answer = requests.get(pre_delete["poll_url"], headers={"Origin": live.origin}, timeout=10)
    assert answer.status_code == 403 and "history that must go" not in answer.text
    assert live_room not in live.internal_get(live.chat_url, "/internal/stats").json()["rooms"]
    assert ticket_status(live, session, live_room) == 404


def test_room_deleted_with_the_admin_button(live, live_room):
    """The admin's stock Delete button reaches the chat server like an archive does."""
    password = uuid.uuid4().hex
    name = "staff" + uuid.uuid4().hex[:8]
    live.create_user(name, password, staff=True)
    staff = live.user_session(name, password)
    member = ChatClient(
        live.ticket(live.guest_session(live_room), live_room)["ws_url"], origin=live.origin
    )
    pk = int(
        re.findall(
            r"\d+",
            live.shell(
                f"from chat.models import Room\nprint(Room.objects.get(slug={live_room!r}).pk)"
            ),
        )[-1]
    )
    url = f"{live.django_url}/admin/chat/room/{pk}/delete/"
    staff.get(url, timeout=10).raise_for_status()
    response = staff.post(
        url,
        data={"post": "yes", "csrfmiddlewaretoken": staff.cookies["csrftoken"]},
        headers={"Referer": url},
        timeout=10,
    )
    response.raise_for_status()
    assert member.wait_closed(timeout=CLOSE_WITHIN) == (4005, "room deleted")


def test_a_room_django_does_not_know_is_final(live):
    """A valid ticket for a room Django has never had: the socket closes with 4005 (not 1011,
    which means "retry"), and the poll answers 410 room_deleted (not 503)."""
    slug = "never-" + uuid.uuid4().hex[:8]
    t = mint_ticket(live.secret, slug)
    ws_url = live.chat_url.replace("http", "ws", 1) + f"/ws/{slug}?ticket={t}"
    with connect(ws_url, open_timeout=10, origin=live.origin) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
    assert closed.value.rcvd.code == 4005
    poll = requests.get(
        f"{live.chat_url}/poll/{slug}?ticket={t}", headers={"Origin": live.origin}, timeout=10
    )
    assert poll.status_code == 410 and poll.json()["error"] == "room_deleted"


def test_unarchive_reopens_the_room_without_a_restart(live, live_room):
    """Archive, then un-archive in the shell: a fresh ticket opens a socket at once."""
    session = live.guest_session(live_room)
    live.archive_room(live_room)
    assert ticket_status(live, session, live_room) == 404
    live.shell(
        "from chat.models import Room\n"
        f"r = Room.objects.get(slug={live_room!r})\nr.is_archived = False\nr.save()\n"
    )
    client = ChatClient(live.ticket(session, live_room)["ws_url"], origin=live.origin)
    client.say("back again", uuid.uuid4().hex)
    assert client.wait_for_messages(1)[0]["body"] == "back again"
    client.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """Django plus two chat servers on the shared Redis; Django calls only the first."""
    from tests.integration.test_redis_scaleout import _require, _shared_redis_problem, redis_env

    _require(_shared_redis_problem())
    system = LiveSystem(
        tmp_path_factory.mktemp("access-redis"), extra_env=redis_env("redis://127.0.0.1:6379")
    )
    try:
        system.start()
        second = system.add_chatserver()
        yield system, second
    finally:
        system.stop()


@pytest.mark.redis
def test_changes_reach_sockets_on_every_instance(cluster):
    """Django calls one instance; a socket on the other closes within 2 s (sign-out: 4003,
    deletion: 4005) and refuses the old ticket."""
    live, second = cluster
    live.create_room("everywhere-mem", guests=False)
    live.create_room("everywhere-del", guests=True)
    _name, _password, session = sign_in(live)
    old = live.ticket(session, "everywhere-mem")
    member = ChatClient(second.ws_url(old["ws_url"]), origin=live.origin)
    guest = ChatClient(
        second.ws_url(
            live.ticket(live.guest_session("everywhere-del"), "everywhere-del")["ws_url"]
        ),
        origin=live.origin,
    )
    sign_out(live, session)
    assert member.wait_closed(timeout=CLOSE_WITHIN)[0] == 4003
    assert refused_status(second.ws_url(old["ws_url"]), live.origin) == 403
    live.shell(
        "from chat.models import Room\nRoom.objects.filter(slug='everywhere-del').delete()\n"
    )
    assert guest.wait_closed(timeout=CLOSE_WITHIN) == (4005, "room deleted")
