"""Accounts across real processes: a user's display name change reaches every open socket
through Django's rename control call to the chat server."""

from __future__ import annotations

import secrets

import pytest
import requests

from tests.support.live import LiveSystem, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration


def set_display_name(live: LiveSystem, session: requests.Session, name: str) -> requests.Response:
    """Post the profile form as the page does (CSRF token from the cookie)."""
    profile = f"{live.django_url}/accounts/profile/"
    session.get(profile, timeout=10).raise_for_status()
    return session.post(
        profile,
        data={"display_name": name, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": profile},
        timeout=10,
        allow_redirects=False,
    )


def test_a_display_name_change_shows_live_in_presence_for_another_client(live, live_room):
    """A signed-in user with an open socket changes its display name on the profile page: a
    guest's socket gets presence with the new name (same id) without the user reconnecting, the
    user's next message is stored under it, and a look-alike of it is then refused to another
    user."""
    username = "dn" + secrets.token_hex(3)
    live.create_user(username, "pw-display-123456789")
    user = live.user_session(username, "pw-display-123456789")
    watcher = ChatClient(
        live.ticket(live.guest_session(live_room), live_room)["ws_url"], live.origin
    )
    tab = ChatClient(live.ticket(user, live_room)["ws_url"], origin=live.origin)
    try:
        hello = tab.wait_for(lambda f: f["type"] == "hello")
        uid = hello["user"]["id"]
        assert hello["user"]["name"] == username
        watcher.wait_for(lambda f: f["type"] == "presence" and username in f["online"], timeout=10)
        new_name = "Display " + secrets.token_hex(3)
        assert set_display_name(live, user, new_name).status_code == 302
        frame = watcher.wait_for(
            lambda f: f["type"] == "presence" and new_name in f["online"], timeout=10
        )
        assert {"id": uid, "name": new_name, "guest": False} in frame["people"]
        assert username not in frame["online"]
        tab.say("as my display name", "display-name-1")
        wait_until(
            lambda: any(m["nonce"] == "display-name-1" for m in live.stored_messages(live_room)),
            timeout=10,
        )
        (stored,) = [m for m in live.stored_messages(live_room) if m["nonce"] == "display-name-1"]
        assert stored["user"] == {"id": uid, "name": new_name, "guest": False}
    finally:
        tab.close()
        watcher.close()
    other = "dn" + secrets.token_hex(3)
    live.create_user(other, "pw-display-123456789")
    copy = new_name.upper().replace("I", "\u0406")  # Cyrillic І for I
    refused = set_display_name(live, live.user_session(other, "pw-display-123456789"), copy)
    assert refused.status_code == 400
