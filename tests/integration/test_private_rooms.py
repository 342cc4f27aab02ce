"""Private rooms between the real processes (gunicorn + twistd): a non-member gets no ticket and
no history on any path, a removed member is cut off at once, and so is everyone outside a room
its owner makes private.

Everything goes through the pages a browser uses (the room form, the members page, the
invitation link, each a CSRF-protected POST), then through the real socket and long poll.
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.integration.test_access_changes import CLOSE_WITHIN, held, sign_in
from tests.support.live import LiveSystem, mint_ticket
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration


def post_form(live: LiveSystem, session: requests.Session, path: str, data=None):
    """A browser-like form POST (CSRF token from the session's cookie); not following redirects."""
    url = live.django_url + path
    fields = {"csrfmiddlewaretoken": session.cookies["csrftoken"], **(data or {})}
    return session.post(
        url, data=fields, headers={"Referer": url}, allow_redirects=False, timeout=10
    )


def private_room(live: LiveSystem, owner: requests.Session, visibility: str = "private") -> str:
    """A room (private unless told) made through the room form; returns its slug."""
    name = "Private " + uuid.uuid4().hex[:8]
    made = post_form(live, owner, "/chats/new/", {"name": name, "visibility": visibility})
    assert made.status_code == 302, made.text[:300]
    return made.headers["Location"].rstrip("/").rsplit("/", 1)[1]


def join_by_link(live: LiveSystem, owner: requests.Session, member: requests.Session, slug: str):
    """The owner makes a single-use link (read from the members page); the member accepts it."""
    post_form(live, owner, f"/chats/{slug}/members/link/", {"lifetime": "3600", "single_use": "on"})
    page = owner.get(f"{live.django_url}/chats/{slug}/members/", timeout=10).text
    link = re.search(r'id="new-invite-link" readonly value="([^"]+)"', page).group(1)
    path = link.split(live.django_url, 1)[1]
    assert member.get(live.django_url + path, timeout=10).status_code == 200
    joined = post_form(live, member, path)
    assert joined.status_code == 302 and joined.headers["Location"] == f"/chats/{slug}/"


def user_id(live: LiveSystem, username: str) -> int:
    out = live.shell(
        "from django.contrib.auth import get_user_model\n"
        f"print(get_user_model().objects.get(username={username!r}).pk)\n"
    )
    return int(out.strip().splitlines()[-1])


def refused_status(url: str, origin: str) -> int:
    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=10, origin=origin):
        pass
    return refused.value.response.status_code


def test_a_non_member_gets_no_ticket_history_or_post(live):
    """A signed-in non-member: the page, the JSON history and the ticket answer as for a room
    that does not exist (404, `unknown_room`: nobody can probe private names); search finds
    nothing there. Even holding a ticket minted with the shared
    secret (as a ticket minted just before a removal would be), what it sends is refused
    `not_a_member` by Django and never stored."""
    _owner_name, _pw, owner = sign_in(live)
    slug = private_room(live, owner)
    writer = ChatClient(live.ticket(owner, slug)["ws_url"], origin=live.origin)
    writer.say("for members only", uuid.uuid4().hex)
    writer.wait_for_messages(1)
    outsider_name, _pw, outsider = sign_in(live)
    for path in ("/chats/{}/", "/api/rooms/{}/messages/", "/api/rooms/{}/ticket/"):
        answer = outsider.get(live.django_url + path.format(slug), timeout=10)
        unknown = outsider.get(live.django_url + path.format("no-such-room"), timeout=10)
        assert answer.status_code == unknown.status_code == 404, path
        if path.startswith("/api/"):
            assert answer.json()["error"] == unknown.json()["error"] == "unknown_room", path
    found = outsider.get(f"{live.django_url}/api/search/?q=members", timeout=10).json()
    assert all(r["message"]["room"] != slug for r in found["results"])
    outsider_id = user_id(live, outsider_name)
    forged = mint_ticket(
        live.secret,
        slug,
        name=outsider_name,
        sub=f"u:{outsider_id}",
        user_id=outsider_id,
        guest=False,
    )
    intruder = ChatClient(
        f"{live.chat_url.replace('http', 'ws')}/ws/{slug}?ticket={forged}", origin=live.origin
    )
    nonce = uuid.uuid4().hex
    intruder.say("let me in", nonce)
    refusal = intruder.wait_for(lambda f: f.get("type") == "error" and f.get("nonce") == nonce)
    assert refusal["code"] == "not_a_member"
    assert [m["body"] for m in live.stored_messages(slug)] == ["for members only"]
    for client in (writer, intruder):
        client.close()


def test_a_removed_member_is_cut_off_at_once(live):
    """The owner removes a member on the members page: the member's socket closes with 4003
    within 2 s and its held poll answers 403 access_revoked; its old ticket opens no socket
    (with `since`) and polls nothing; it gets no new ticket and no history. The owner's socket
    stays open."""
    _owner_name, _pw, owner = sign_in(live)
    member_name, _pw, member = sign_in(live)
    slug = private_room(live, owner)
    join_by_link(live, owner, member, slug)
    owner_socket = ChatClient(live.ticket(owner, slug)["ws_url"], origin=live.origin)
    owner_socket.say("before the removal", uuid.uuid4().hex)
    last = owner_socket.wait_for_messages(1)[0]["id"]
    old = live.ticket(member, slug)
    socket = ChatClient(old["ws_url"], origin=live.origin)
    assert [m["body"] for m in socket.hello["history"]] == ["before the removal"]
    poll = held(live, live.ticket(member, slug), since=last)
    removed = post_form(live, owner, f"/chats/{slug}/members/{user_id(live, member_name)}/remove/")
    assert removed.status_code == 302
    assert socket.wait_closed(timeout=CLOSE_WITHIN) == (4003, "access revoked")
    status, body = poll.wait()
    assert status == 403 and body["error"] == "access_revoked"
    assert refused_status(old["ws_url"] + "&since=0", live.origin) == 403
    stale = requests.get(old["poll_url"] + "&since=0", headers={"Origin": live.origin}, timeout=10)
    assert stale.status_code == 403 and "before the removal" not in stale.text
    for path in (f"/api/rooms/{slug}/ticket/", f"/api/rooms/{slug}/messages/"):
        answer = member.get(live.django_url + path, timeout=10)
        assert answer.status_code == 404 and answer.json()["error"] == "unknown_room"
    owner_socket.send({"type": "ping"})
    assert owner_socket.wait_for(lambda f: f["type"] == "pong", timeout=5)
    owner_socket.close()


def test_an_owner_making_a_room_private_cuts_off_everyone_else(live):
    """A sign-in room with a member (joined from the list) and an outsider, both connected: the
    owner makes it private on the room's settings page. Both sockets close with 4003 within 2 s
    (every older ticket is refused); the member gets a fresh ticket and reads on, the outsider
    gets 404 as for no room."""
    _owner_name, _pw, owner = sign_in(live)
    _member_name, _pw, member = sign_in(live)
    _outsider_name, _pw, outsider = sign_in(live)
    slug = private_room(live, owner, visibility="signed_in")
    assert post_form(live, member, f"/chats/{slug}/join/").status_code == 302
    sockets = {
        who: ChatClient(live.ticket(session, slug)["ws_url"], origin=live.origin)
        for who, session in (("member", member), ("outsider", outsider))
    }
    changed = post_form(
        live,
        owner,
        f"/chats/{slug}/settings/",
        {"name": "Closed now", "description": "", "visibility": "private"},
    )
    assert changed.status_code == 302
    for socket in sockets.values():
        assert socket.wait_closed(timeout=CLOSE_WITHIN) == (4003, "access revoked")
    refused = outsider.get(f"{live.django_url}/api/rooms/{slug}/ticket/", timeout=10)
    assert refused.status_code == 404 and refused.json()["error"] == "unknown_room"
    again = ChatClient(live.ticket(member, slug)["ws_url"], origin=live.origin)
    again.send({"type": "ping"})
    assert again.wait_for(lambda f: f["type"] == "pong", timeout=5)
    again.close()
