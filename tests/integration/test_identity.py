"""Identity across real processes: look-alike names are refused, and a rename reaches every
open socket through Django's control call to the chat server."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.support.live import LiveSystem, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration


def rename(live: LiveSystem, session: requests.Session, slug: str, name: str) -> None:
    """Post the guest-name form as the page does (CSRF token from the cookie)."""
    response = session.post(
        f"{live.django_url}/chats/{slug}/guest-name/",
        data={"name": name, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{live.django_url}/chats/{slug}/"},
        timeout=10,
    )
    response.raise_for_status()


def open_socket(live: LiveSystem, session: requests.Session, slug: str) -> ChatClient:
    return ChatClient(live.ticket(session, slug)["ws_url"], origin=live.origin)


def test_two_identities_with_lookalike_names_are_refused(live, live_room):
    """A guest holding `zoe` keeps it: a second guest asking for `ZOE`, Cyrillic `zое` or
    `zo\\u200be` keeps its own name, and so does a guest asking for a registered username's
    look-alike (`аdmin`-style). Tickets carry the names Django allowed and distinct ids."""
    first, second = live.guest_session(live_room), live.guest_session(live_room)
    rename(live, first, live_room, "zoe")
    assert live.ticket(first, live_room)["user"]["name"] == "zoe"
    before = live.ticket(second, live_room)["user"]
    for copy in ("ZOE", "z\u043ee", "zo\u200be"):
        rename(live, second, live_room, copy)
        assert live.ticket(second, live_room)["user"] == before
    username = "boss" + secrets.token_hex(3)
    live.create_user(username, "pw-boss-123456789")
    rename(live, second, live_room, username.replace("o", "\u043e").upper())
    assert live.ticket(second, live_room)["user"] == before
    assert before["id"] != live.ticket(first, live_room)["user"]["id"]


def test_a_guest_rename_reaches_open_sockets_at_once(live, live_room):
    """A guest renames itself on the page while its socket is open: a watcher's presence shows
    the new name without the guest reconnecting, and the guest's next message is stored under
    the new name (Django's control call renamed the open socket)."""
    guest = live.guest_session(live_room)
    watcher = open_socket(live, live.guest_session(live_room), live_room)
    tab = open_socket(live, guest, live_room)
    try:
        tab.wait_for(lambda f: f["type"] == "hello")
        new_name = "renamed-" + secrets.token_hex(3)
        rename(live, guest, live_room, new_name)
        watcher.wait_for(lambda f: f["type"] == "presence" and new_name in f["online"], timeout=10)
        tab.say("after the rename", "after-rename")
        wait_until(
            lambda: any(m["nonce"] == "after-rename" for m in live.stored_messages(live_room)),
            timeout=10,
        )
        (stored,) = [m for m in live.stored_messages(live_room) if m["nonce"] == "after-rename"]
        assert stored["user"]["name"] == new_name and stored["user"]["guest"] is True
    finally:
        tab.close()
        watcher.close()
