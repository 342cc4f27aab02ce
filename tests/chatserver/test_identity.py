"""Identity on the chat server: stable author ids, people in presence, renames shown at once.

A guest that renames itself appears under its new name at once, whichever transport its tabs
use (newest name wins), and Django's rename control call switches every open tab.
"""

from __future__ import annotations

import orjson
from twisted.internet.error import ConnectionDone
from twisted.python.failure import Failure

from chatserver.control import ControlResource
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from chatserver.rooms import RoomRegistry
from chatserver.signing import signed_headers
from tests.chatserver.support import (
    ORIGIN,
    SECRET,
    WsClient,
    body_json,
    make_cluster,
    make_hub,
    render,
    ticket,
    web_request,
)

GUEST = "g:0123456789abcdef"
# Hubs here send presence unthrottled (`presence_interval=0`): these tests are about names;
# coalescing has its own (tests/chatserver/test_presence_coalescing.py).
BATCH_DELAY = 0.005


def _connect(factory, reactor, uid="u:1", name="alice") -> WsClient:
    client = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor, uid=uid, name=name)}", ORIGIN)
    assert client.status == 101
    return client


def _poll(poll, reactor, uid, name, query=""):
    t = ticket(reactor, uid=uid, name=name)
    return render(
        poll,
        web_request("GET", f"/poll/lobby?ticket={t}{query}", "/poll/", b"", {"Origin": ORIGIN}),
    )


def _rename(hub, uid: str, name: object, kind: str = "guests"):
    body = orjson.dumps({"name": name})
    uri = f"/internal/{kind}/{uid}/renamed"
    headers = signed_headers(SECRET, "POST", uri, body, hub.clock.seconds())
    return render(ControlResource(hub), web_request("POST", uri, "/internal/", body, headers))


def _people(frame: dict) -> list[tuple[str, str, bool]]:
    return [(p["id"], p["name"], p["guest"]) for p in frame["people"]]


def test_batch_items_carry_the_tickets_uid_and_messages_the_author_id():
    """The hub puts the ticket's uid into the batch item; the stored message's `user.id` is it."""
    hub, reactor, django = make_hub(presence_interval=0.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    guest = _connect(factory, reactor, uid=GUEST, name="admin")
    guest.frames()
    guest.send({"type": "message", "body": "hi", "nonce": "n1"})
    reactor.advance(BATCH_DELAY)
    assert django.batches[-1][0]["uid"] == GUEST
    (frame,) = [f for f in guest.json_frames() if f["type"] == "message"]
    assert frame["user"] == {"id": GUEST, "name": "admin", "guest": True}


def test_hello_and_presence_carry_people_with_ids_and_guest_flags():
    """Presence lists each person once by id, guests flagged, beside the `online` names."""
    hub, reactor, _ = make_hub(presence_interval=0.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    admin = _connect(factory, reactor, uid="u:1", name="admin")
    hello = admin.json_frames()[0]
    assert hello["user"] == {"id": "u:1", "name": "admin", "guest": False}
    _connect(factory, reactor, uid=GUEST, name="guest-1234")
    (presence,) = admin.json_frames()
    assert _people(presence) == [("u:1", "admin", False), (GUEST, "guest-1234", True)]
    assert presence["online"] == ["admin", "guest-1234"]


def test_newest_name_wins_when_a_guest_opens_a_tab_under_a_new_name():
    """A second tab of the same guest with a newer ticket name renames the guest in presence at
    once (the original kept the first tab's name until every tab closed)."""
    hub, reactor, _ = make_hub(presence_interval=0.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    watcher = _connect(factory, reactor)
    _connect(factory, reactor, uid=GUEST, name="old-name")
    watcher.json_frames()
    _connect(factory, reactor, uid=GUEST, name="new-name")
    (presence,) = watcher.json_frames()
    assert presence["online"] == ["alice", "new-name"]
    assert (GUEST, "new-name", True) in _people(presence)


def test_a_polling_guest_appears_under_its_new_name_at_once():
    """A long-polling guest's lease takes the name of its newest ticket (the original kept the
    first name for as long as the guest kept polling)."""
    hub, reactor, _ = make_hub(presence_interval=0.0)
    poll = LongPollResource(hub, hub.config, hub.clock)
    factory = ChatServerFactory(hub, reactor, hub.config)
    watcher = _connect(factory, reactor)
    _poll(poll, reactor, GUEST, "old-name")
    watcher.json_frames()
    answer = _poll(poll, reactor, GUEST, "new-name")
    assert body_json(answer)["online"] == ["alice", "new-name"]
    (presence,) = watcher.json_frames()
    assert presence["online"] == ["alice", "new-name"]


def test_rename_control_switches_open_sockets_presence_and_old_tickets():
    """Django's rename call: the guest's open socket sends under the new name, others see the
    new name in presence, and a poll with a ticket minted before the rename uses it too."""
    hub, reactor, django = make_hub(presence_interval=0.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    poll = LongPollResource(hub, hub.config, hub.clock)
    watcher = _connect(factory, reactor)
    guest = _connect(factory, reactor, uid=GUEST, name="old-name")
    old_ticket_poll = ticket(reactor, uid=GUEST, name="old-name")
    watcher.json_frames()
    guest.json_frames()
    request = _rename(hub, GUEST, "new-name")
    assert request.responseCode == 200 and body_json(request) == {"renamed": 1}
    (presence,) = watcher.json_frames()
    assert presence["online"] == ["alice", "new-name"]
    guest.send({"type": "message", "body": "hi", "nonce": "n1"})
    reactor.advance(BATCH_DELAY)
    assert django.batches[-1][0]["name"] == "new-name"
    answer = render(
        poll,
        web_request(
            "GET", f"/poll/lobby?ticket={old_ticket_poll}", "/poll/", b"", {"Origin": ORIGIN}
        ),
    )
    assert "old-name" not in body_json(answer)["online"]


def test_rename_control_refuses_user_ids_and_bad_names():
    """The guests path renames only guests; a name must be 1 to 64 characters."""
    hub, _, _ = make_hub(presence_interval=0.0)
    for uid, name in (("u:1", "x"), (GUEST, ""), (GUEST, "x" * 65), (GUEST, 5), ("g:zz", "x")):
        request = _rename(hub, uid, name)
        assert request.responseCode == 400
        assert body_json(request)["error"] == "bad_request"


def test_users_rename_path_takes_users_and_guests_and_refuses_bad_ids():
    """`/internal/users/<uid>/renamed` renames a user (a display name change) or a guest; any
    other id or a bad name is 400 and changes nothing."""
    hub, _, _ = make_hub(presence_interval=0.0)
    for uid, name in (("u:0", "x"), ("u:x", "x"), ("g:zz", "x"), ("u:1", ""), ("u:1", "y" * 65)):
        request = _rename(hub, uid, name, kind="users")
        assert request.responseCode == 400, (uid, name)
        assert body_json(request)["error"] == "bad_request"
    for uid in ("u:1", GUEST):
        request = _rename(hub, uid, "fine", kind="users")
        assert request.responseCode == 200 and body_json(request) == {"renamed": 0}


def test_a_user_display_name_change_renames_its_sockets_and_presence():
    """A user's display name change (users path) renames its open socket and republishes
    presence: a watcher sees the new name, and the next message is stored under it."""
    hub, reactor, django = make_hub(presence_interval=0.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    watcher = _connect(factory, reactor, uid=GUEST, name="watcher")
    user = _connect(factory, reactor, uid="u:7", name="bob")
    watcher.json_frames()
    user.json_frames()
    request = _rename(hub, "u:7", "Bob Builder", kind="users")
    assert body_json(request) == {"renamed": 1}
    people = [f["people"] for f in watcher.json_frames() if f["type"] == "presence"]
    assert people and {"id": "u:7", "name": "Bob Builder", "guest": False} in people[-1]
    user.send({"type": "message", "body": "hi", "nonce": "n1"})
    reactor.advance(BATCH_DELAY)
    assert django.batches[-1][0]["name"] == "Bob Builder"


def test_a_rename_reaches_the_other_instances_over_redis():
    """A rename applied on one instance renames the guest's sockets on the other one too."""
    hubs, reactor, django, redis = make_cluster(2, presence_interval=0.0)
    a, b = hubs
    watcher = _connect(ChatServerFactory(a, reactor, a.config), reactor)
    guest = _connect(ChatServerFactory(b, reactor, b.config), reactor, uid=GUEST, name="old-name")
    redis.flush()
    guest.json_frames()
    watcher.json_frames()
    _rename(a, GUEST, "new-name")
    while redis.flush():
        pass
    online = [f["online"] for f in watcher.json_frames() if f["type"] == "presence"]
    assert online and online[-1] == ["alice", "new-name"]
    guest.send({"type": "message", "body": "hi", "nonce": "n1"})
    reactor.advance(BATCH_DELAY)
    assert django.batches[-1][0]["name"] == "new-name"


def test_registry_counts_holders_by_uid_and_keeps_the_newest_name():
    """Two holders of one uid are one person; the name follows the newest holder; the person
    leaves only with its last holder."""
    registry = RoomRegistry()
    assert registry.add_presence("r", GUEST, "a") is True
    assert registry.add_presence("r", GUEST, "b") is True
    assert registry.add_presence("r", GUEST, "b") is False
    assert registry.people("r") == [{"id": GUEST, "name": "b", "guest": True}]
    assert registry.remove_presence("r", GUEST) is False
    assert registry.remove_presence("r", GUEST) is False
    assert registry.remove_presence("r", GUEST) is True
    assert registry.people("r") == []


def test_a_renamed_guest_leaving_clears_presence():
    """After a rename, closing the guest's last socket removes it from presence."""
    hub, reactor, _ = make_hub(presence_interval=0.0)
    factory = ChatServerFactory(hub, reactor, hub.config)
    watcher = _connect(factory, reactor)
    guest = _connect(factory, reactor, uid=GUEST, name="old-name")
    _rename(hub, GUEST, "new-name")
    watcher.json_frames()
    guest.protocol.connectionLost(Failure(ConnectionDone()))
    assert watcher.json_frames()[-1]["online"] == ["alice"]
