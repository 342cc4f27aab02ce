"""People and rooms between the real processes (gunicorn + twistd), through the pages and calls
a browser uses: an invitation link admits exactly as documented (docs/protocol.md, "Rooms and
membership") and stops admitting once withdrawn; opening a direct conversation twice, from
either side and at the same instant, finds one room; a mention of someone who may not read the
room is not recorded, while a member's is.
"""

from __future__ import annotations

import re
import threading
import uuid

import pytest
import requests

from tests.integration.test_access_changes import sign_in
from tests.integration.test_private_rooms import post_form, private_room, user_id
from tests.support.live import LiveSystem, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration


def new_link(live: LiveSystem, owner: requests.Session, slug: str, single_use: bool) -> str:
    """The owner makes an invitation link (valid an hour); its site-relative path, as the
    members page shows it once."""
    fields = {"lifetime": "3600", **({"single_use": "on"} if single_use else {})}
    assert post_form(live, owner, f"/chats/{slug}/members/link/", fields).status_code == 302
    page = owner.get(f"{live.django_url}/chats/{slug}/members/", timeout=10).text
    link = re.search(r'id="new-invite-link" readonly value="([^"]+)"', page).group(1)
    return link.split(live.django_url, 1)[1]


def ticket_status(live: LiveSystem, person: requests.Session, slug: str) -> int:
    """The status of a socket ticket request (200: the person may enter the room)."""
    return person.get(f"{live.django_url}/api/rooms/{slug}/ticket/", timeout=10).status_code


def join(live: LiveSystem, person: requests.Session, path: str) -> requests.Response:
    return post_form(live, person, path)


def test_an_invite_link_admits_as_documented_and_stops_once_withdrawn(live):
    _owner, _pw, owner = sign_in(live)
    slug = private_room(live, owner)
    first, second, third, fourth = (sign_in(live)[2] for _ in range(4))
    once = new_link(live, owner, slug, single_use=True)
    assert join(live, first, once).headers["Location"] == f"/chats/{slug}/"
    # Used up: the next person is told so (410), and is not let in.
    used = join(live, second, once)
    assert used.status_code == 410, used.status_code
    assert ticket_status(live, second, slug) != 200
    # A link for any number of people admits two, until the owner withdraws it.
    many = new_link(live, owner, slug, single_use=False)
    assert join(live, second, many).headers["Location"] == f"/chats/{slug}/"
    assert join(live, third, many).headers["Location"] == f"/chats/{slug}/"
    page = owner.get(f"{live.django_url}/chats/{slug}/members/", timeout=10).text
    revoke_paths = re.findall(rf'action="(/chats/{re.escape(slug)}/invites/\d+/revoke/)"', page)
    assert len(revoke_paths) == 1, revoke_paths  # the single-use link is used, not withdrawable
    assert post_form(live, owner, revoke_paths[0]).status_code == 302
    withdrawn = fourth.get(live.django_url + many, timeout=10)
    assert withdrawn.status_code == 410 and "withdrawn" in withdrawn.text.lower()
    assert join(live, fourth, many).status_code == 410
    assert ticket_status(live, fourth, slug) != 200
    # Those who joined stay members: they get tickets and read the room.
    for member in (first, second, third):
        assert ticket_status(live, member, slug) == 200


def test_opening_a_direct_conversation_twice_finds_one_room(live):
    alice_name, _pw, alice = sign_in(live)
    bob_name, _pw, bob = sign_in(live)
    alice_id, bob_id = user_id(live, alice_name), user_id(live, bob_name)
    rooms: list[str] = []

    def open_direct(person: requests.Session, other: int) -> None:
        answer = post_form(live, person, f"/chats/direct/{other}/")
        assert answer.status_code == 302, answer.status_code
        rooms.append(answer.headers["Location"])

    # Both at the same instant (the unique key decides), then each once more.
    both = [
        threading.Thread(target=open_direct, args=(alice, bob_id)),
        threading.Thread(target=open_direct, args=(bob, alice_id)),
    ]
    for thread in both:
        thread.start()
    for thread in both:
        thread.join(timeout=30)
    open_direct(alice, bob_id)
    open_direct(bob, alice_id)
    assert len(rooms) == 4 and len(set(rooms)) == 1, rooms
    slug = rooms[0].rstrip("/").rsplit("/", 1)[1]
    for person in (alice, bob):
        assert ticket_status(live, person, slug) == 200


def mentions_of(live: LiveSystem, username: str) -> int:
    """How many mentions of `username` Django recorded (the ORM, as an operator would look)."""
    out = live.shell(
        "from chat.models import Mention\n"
        f"print(Mention.objects.filter(user__username={username!r}).count())\n"
    )
    return int(out.strip().splitlines()[-1])


def test_a_mention_of_someone_who_may_not_read_the_room_is_not_recorded(live):
    _owner, _pw, owner = sign_in(live)
    member_name, _pw, member = sign_in(live)
    outsider_name, _pw, _outsider = sign_in(live)
    slug = private_room(live, owner)
    join(live, member, new_link(live, owner, slug, single_use=True))
    writer = ChatClient(live.ticket(owner, slug)["ws_url"], origin=live.origin)
    try:
        writer.say(f"@{member_name} @{outsider_name} plans for friday", uuid.uuid4().hex)
        writer.wait_for_messages(1)
        # Recorded at storage time (after commit): the member's mention shows; the outsider's
        # never does, although the body names both.
        wait_until(lambda: mentions_of(live, member_name) == 1)
        assert mentions_of(live, outsider_name) == 0
    finally:
        writer.close()
