"""A reader's page when its access changes while it is open: it says why and stops."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_room_deleted_while_open_stops_the_client(open_room, live_room, live):
    """Deleting the room (shell) closes the socket with 4005: the page shows "Room deleted",
    disables the composer and never tries to reconnect."""
    reader = open_room(live_room)
    live.shell(f"from chat.models import Room\nRoom.objects.filter(slug={live_room!r}).delete()\n")
    expect(reader.state).to_have_text("Room deleted")
    expect(reader.page.locator("#composer-input")).not_to_be_editable()
    reader.page.evaluate("() => window.dispatchEvent(new Event('online'))")
    expect(reader.state).to_have_attribute("data-state", "deleted")
    assert reader.page_errors == []


def test_guest_in_a_room_that_stops_allowing_guests_is_asked_to_sign_in(open_room, live_room, live):
    """The room stops allowing guests: the guest's socket closes with 4003, its fresh ticket
    is refused, and the page asks it to sign in instead of reconnecting forever."""
    guest = open_room(live_room)
    live.shell(
        "from chat.models import Room\n"
        f"r = Room.objects.get(slug={live_room!r})\nr.allow_guests = False\nr.save()\n"
    )
    expect(guest.state).to_have_text("Sign in to chat in this room")
    expect(guest.page.locator("#composer-input")).not_to_be_editable()
    assert guest.page_errors == []


def test_polling_reader_of_a_deleted_room_stops(open_room, live_room, live):
    """On long polling, the held poll's 410 room_deleted ends in "Room deleted" too."""
    from tests.browser.test_resilience import refuse_websockets

    poller = open_room(live_room, before_load=refuse_websockets([]), wait_live=False)
    expect(poller.state).to_have_text("Live (polling)")
    live.shell(f"from chat.models import Room\nRoom.objects.filter(slug={live_room!r}).delete()\n")
    expect(poller.state).to_have_text("Room deleted")
    expect(poller.page.locator("#composer-input")).not_to_be_editable()
    assert poller.page_errors == []


def test_polling_guest_is_asked_to_sign_in_when_guests_are_refused(open_room, live_room, live):
    """On long polling, the held poll's 403 access_revoked leads to one ticket request, which
    Django refuses: the page asks the guest to sign in."""
    from tests.browser.test_resilience import refuse_websockets

    poller = open_room(live_room, before_load=refuse_websockets([]), wait_live=False)
    expect(poller.state).to_have_text("Live (polling)")
    live.shell(
        "from chat.models import Room\n"
        f"r = Room.objects.get(slug={live_room!r})\nr.allow_guests = False\nr.save()\n"
    )
    expect(poller.state).to_have_text("Sign in to chat in this room")
    assert poller.page_errors == []
