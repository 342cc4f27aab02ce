"""Access follows Django as it changes: revocations, room deletion and un-archiving.

The signed control calls (docs/protocol.md, "Control API") are driven through the real
`ControlResource`; sockets and held polls are the real transports over fake transports.
"""

from __future__ import annotations

import orjson
import pytest

from chatserver.control import ControlResource
from chatserver.longpoll import LongPollResource
from chatserver.protocol import ChatServerFactory
from chatserver.revocations import MEMBER, ROOM, USER, Revocation, RevocationList, member_key
from chatserver.signing import signed_headers
from chatserver.tickets import TicketError, mint_ticket, verify_ticket
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

NOW = 1_795_000_000
NOW_MS = NOW * 1000


class Env:
    """One hub with both transports wired as `makeService` wires them."""

    def __init__(self, **overrides) -> None:
        self.hub, self.reactor, self.django = make_hub(**overrides)
        self.factory = ChatServerFactory(self.hub, self.reactor, self.hub.config)
        self.poll = LongPollResource(self.hub, self.hub.config, self.hub.clock)
        self.hub.archive_listeners.append(self.poll.room_archived)
        self.hub.revoke_listeners.append(self.poll.revoked)
        self.hub.forget_listeners.append(self.poll.room_deleted)
        self.control = ControlResource(self.hub)

    def ticket(self, room="lobby", uid="u:1", name="alice", **kw) -> str:
        return ticket(self.reactor, room=room, uid=uid, name=name, **kw)

    def socket(self, room="lobby", uid="u:1", name="alice", **kw) -> WsClient:
        t = kw.pop("raw_ticket", None) or self.ticket(room, uid, name, **kw)
        client = WsClient(self.factory, f"/ws/{room}?ticket={t}", ORIGIN)
        client.frames()
        return client

    def held_poll(self, room="lobby", uid="u:2", name="bob", since=0, **kw):
        t = kw.pop("raw_ticket", None) or self.ticket(room, uid, name, **kw)
        request = web_request(
            "GET", f"/poll/{room}?ticket={t}&since={since}", "/poll/", b"", {"Origin": ORIGIN}
        )
        return render(self.poll, request)

    def call(self, uri: str, payload: object | None = None, raw: bytes | None = None):
        body = raw if raw is not None else (b"" if payload is None else orjson.dumps(payload))
        headers = signed_headers(SECRET, "POST", uri, body, self.reactor.seconds())
        return render(self.control, web_request("POST", uri, "/internal/", body, headers))


@pytest.fixture
def env() -> Env:
    return Env()


def test_user_revocation_closes_that_users_socket_and_poll_only(env):
    """Signed out / deactivated / deleted: the uid's sockets close with 4003 and its held polls
    answer 403 access_revoked, in every room; other people stay connected."""
    alice_lobby = env.socket(uid="u:1")
    alice_other = env.socket(room="other", uid="u:1")
    bob = env.socket(uid="u:2", name="bob")
    alice_poll = env.held_poll(uid="u:1", name="alice")
    bob_poll = env.held_poll(uid="u:2", name="bob")
    assert not alice_poll.finished and not bob_poll.finished
    answer = env.call("/internal/users/u:1/revoked", {"before_ms": NOW_MS})
    assert answer.responseCode == 200 and body_json(answer) == {"closed": 2}
    assert alice_lobby.close_frame() == (4003, "access revoked")
    assert alice_other.close_frame() == (4003, "access revoked")
    assert alice_poll.responseCode == 403
    assert body_json(alice_poll)["error"] == "access_revoked"
    assert bob.close_frame() is None and not bob_poll.finished


def test_a_revoked_socket_cannot_post_while_it_closes(env):
    """After the 4003 close frame, a message the client still sends is not stored."""
    alice = env.socket(uid="u:1")
    env.call("/internal/users/u:1/revoked", {"before_ms": NOW_MS})
    alice.send({"type": "message", "body": "still here?", "nonce": "late-1"})
    env.reactor.advance(1)
    assert env.django.messages == []


def test_tickets_minted_before_the_revocation_are_refused_fresh_ones_work(env):
    """An old ticket is refused at the handshake (403) and on a poll (403 bad_ticket); a ticket
    minted after the revocation, even in the same second (iat_ms), works."""
    old = env.ticket(uid="u:1", iat_ms=NOW_MS + 400)
    env.call("/internal/users/u:1/revoked", {"before_ms": NOW_MS + 500})
    assert WsClient(env.factory, f"/ws/lobby?ticket={old}", ORIGIN).status == 403
    refused = env.held_poll(uid="u:1", raw_ticket=old)
    assert refused.responseCode == 403 and body_json(refused)["error"] == "bad_ticket"
    same_second = env.ticket(uid="u:1", iat_ms=NOW_MS + 501)
    assert WsClient(env.factory, f"/ws/lobby?ticket={same_second}", ORIGIN).status == 101
    # A ticket without iat_ms counts from the start of its second: refused within it...
    assert WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:1')}", ORIGIN).status == 403
    # ...and accepted once minted in a later second.
    env.reactor.advance(1)
    assert WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:1')}", ORIGIN).status == 101


def test_a_connection_admitted_after_the_cut_off_stays_open(env):
    """A socket whose ticket is newer than the revocation's cut-off is not closed by it."""
    fresh = env.socket(uid="u:1", iat_ms=NOW_MS + 900)
    env.call("/internal/users/u:1/revoked", {"before_ms": NOW_MS + 100})
    assert fresh.close_frame() is None


def test_room_guest_access_change_closes_guests_only(env):
    """A room stops allowing guests: its guest sockets and polls close; users stay."""
    guest = env.socket(uid="g:0123456789abcdef", name="guest-1", guest=True, user_id=None)
    guest_elsewhere = env.socket(
        room="other", uid="g:0123456789abcdef", name="guest-1", guest=True, user_id=None
    )
    user = env.socket(uid="u:1")
    guest_poll = env.held_poll(uid="g:fedcba9876543210", name="guest-2", guest=True, user_id=None)
    answer = env.call("/internal/rooms/lobby/access", {"before_ms": NOW_MS, "scope": "guests"})
    assert body_json(answer) == {"closed": 1}
    assert guest.close_frame() == (4003, "access revoked")
    assert guest_poll.responseCode == 403
    assert user.close_frame() is None and guest_elsewhere.close_frame() is None
    old_guest = env.ticket(uid="g:0123456789abcdef", name="guest-1", guest=True, user_id=None)
    assert WsClient(env.factory, f"/ws/lobby?ticket={old_guest}", ORIGIN).status == 403
    assert WsClient(env.factory, f"/ws/lobby?ticket={env.ticket(uid='u:1')}", ORIGIN).status == 101


def test_room_scope_all_closes_everyone_in_the_room(env):
    """scope=all (membership rules changed): every socket of the room closes with 4003."""
    a, b = env.socket(uid="u:1"), env.socket(uid="u:2", name="bob")
    elsewhere = env.socket(room="other", uid="u:1")
    env.call("/internal/rooms/lobby/access", {"before_ms": NOW_MS, "scope": "all"})
    assert a.close_frame()[0] == 4003 and b.close_frame()[0] == 4003
    assert elsewhere.close_frame() is None


def test_member_removal_closes_that_members_socket_and_poll_in_that_room_only(env):
    """scope=member (a member was removed from a private room): that uid's sockets in that room
    close with 4003 and its held poll answers 403 access_revoked; the same uid elsewhere and the
    other members of the room stay; its old tickets for the room are refused, not elsewhere."""
    removed = env.socket(room="secret", uid="u:1")
    removed_elsewhere = env.socket(room="lobby", uid="u:1")
    other_member = env.socket(room="secret", uid="u:2", name="bob")
    removed_poll = env.held_poll(room="secret", uid="u:1", name="alice")
    old = env.ticket(room="secret", uid="u:1")
    answer = env.call(
        "/internal/rooms/secret/events",
        {"type": "access", "scope": "member", "uid": "u:1", "before_ms": NOW_MS},
    )
    assert answer.responseCode == 200 and body_json(answer) == {"closed": 1}
    assert removed.close_frame() == (4003, "access revoked")
    assert removed_poll.responseCode == 403
    assert body_json(removed_poll)["error"] == "access_revoked"
    assert removed_elsewhere.close_frame() is None and other_member.close_frame() is None
    assert WsClient(env.factory, f"/ws/secret?ticket={old}", ORIGIN).status == 403
    refused = env.held_poll(room="secret", uid="u:1", raw_ticket=old)
    assert refused.responseCode == 403 and body_json(refused)["error"] == "bad_ticket"
    elsewhere = env.ticket(room="lobby", uid="u:1")
    assert WsClient(env.factory, f"/ws/lobby?ticket={elsewhere}", ORIGIN).status == 101


def test_member_removal_reaches_every_instance():
    """A member removal applied on one instance closes the member's socket on another (Redis)
    and refuses its old ticket there; the other member on that instance stays."""
    hubs, reactor, _django, redis = make_cluster(2)
    a, b = (Instance(hub, reactor) for hub in hubs)
    alice_b = b.connect(uid="u:1", room="secret")
    bob_b = b.connect(uid="u:2", name="bob", room="secret")
    a.hub.revoke(Revocation(MEMBER, member_key("secret", "u:1"), NOW_MS))
    redis.flush()
    assert alice_b.close_frame() == (4003, "access revoked")
    assert bob_b.close_frame() is None
    old = ticket(reactor, room="secret", uid="u:1", name="alice")
    assert WsClient(b.factory, f"/ws/secret?ticket={old}", ORIGIN).status == 403


@pytest.mark.parametrize(
    "uri, payload",
    [
        ("/internal/rooms/lobby/events", {"type": "access", "scope": "member", "before_ms": 1}),
        (
            "/internal/rooms/lobby/events",
            {"type": "access", "scope": "member", "uid": "g:0123456789abcdef", "before_ms": 1},
        ),
        ("/internal/users/u:1/revoked", None),
        ("/internal/users/u:1/revoked", {"before_ms": "1"}),
        ("/internal/users/u:1/revoked", {"before_ms": True}),
        ("/internal/users/u:1/revoked", {"before_ms": -1}),
        ("/internal/rooms/lobby/deleted", {"before_ms": 2**60}),
        ("/internal/rooms/lobby/access", {"before_ms": NOW_MS}),
        ("/internal/rooms/lobby/access", {"before_ms": NOW_MS, "scope": "everyone"}),
    ],
)
def test_malformed_access_calls_are_400_and_change_nothing(env, uri, payload):
    """A control call without a valid cut-off or scope is refused and revokes nothing."""
    alice = env.socket(uid="u:1")
    answer = env.call(uri, payload)
    assert answer.responseCode == 400 and body_json(answer)["error"] == "bad_request"
    assert alice.close_frame() is None and len(env.hub.revocations) == 0


def test_room_deletion_closes_with_4005_and_forgets_the_room(env):
    """Deleting a room closes sockets with 4005 and held polls with 410 room_deleted, refuses
    pre-delete tickets, and leaves nothing of the room in memory."""
    old = env.django.add("lobby", "secret history")
    alice = env.socket(uid="u:1")
    poll = env.held_poll(uid="u:2", since=old["id"])
    env.hub.registry.remember_event("lobby", {"type": "deleted", "id": 999})
    pre_delete = env.ticket(uid="u:3", name="carol")
    env.django.gone_rooms.add("lobby")
    answer = env.call("/internal/rooms/lobby/deleted", {"before_ms": NOW_MS})
    assert body_json(answer) == {"closed": 1}
    assert alice.close_frame() == (4005, "room deleted")
    assert poll.responseCode == 410 and body_json(poll)["error"] == "room_deleted"
    registry = env.hub.registry
    assert "lobby" not in registry.rooms() and registry.remembered("lobby") == []
    assert registry.history("lobby", None, 50) is None and registry.online("lobby") == []
    refused = WsClient(env.factory, f"/ws/lobby?ticket={pre_delete}", ORIGIN)
    assert refused.status == 403
    assert old["body"].encode() not in refused.transport.value()


def test_a_room_django_does_not_know_is_final_not_a_retry(env):
    """A ticket for a room Django answers 404 for: the socket closes with 4005 (not 1011) and
    the poll answers 410 room_deleted (not 503)."""
    env.django.gone_rooms.add("gone")
    sock = WsClient(env.factory, f"/ws/gone?ticket={env.ticket(room='gone')}", ORIGIN)
    assert sock.close_frame() == (4005, "room deleted")
    poll = env.held_poll(room="gone")
    assert poll.responseCode == 410 and body_json(poll)["error"] == "room_deleted"
    assert "gone" not in env.hub.registry.rooms()


def test_a_message_to_a_room_django_no_longer_knows_closes_the_room(env):
    """Django answers unknown_room for a stored item: every socket of the room closes 4005."""
    alice, bob = env.socket(uid="u:1"), env.socket(uid="u:2", name="bob")
    env.django.gone_rooms.add("lobby")
    alice.send({"type": "message", "body": "anyone?", "nonce": "n-gone"})
    env.reactor.advance(0.01)
    assert alice.close_frame()[0] == 4005 and bob.close_frame()[0] == 4005


def test_unarchive_reopens_the_room_live(env):
    """An archived room refuses sockets (404); after the un-archive call new sockets work."""
    env.call("/internal/rooms/lobby/archived")
    assert WsClient(env.factory, f"/ws/lobby?ticket={env.ticket()}", ORIGIN).status == 404
    answer = env.call("/internal/rooms/lobby/unarchived")
    assert answer.responseCode == 200 and body_json(answer) == {"archived": False}
    assert WsClient(env.factory, f"/ws/lobby?ticket={env.ticket()}", ORIGIN).status == 101
    assert env.held_poll().responseCode != 404


def test_revocations_expire_and_long_tickets_are_refused():
    """An entry is kept `keep` seconds, then forgotten (bounded memory); a ticket living longer
    than CHAT_MAX_TICKET_TTL is refused (too_long), so it can never outlive its revocation."""
    revocations = RevocationList(keep=120)
    for n in range(100):
        revocations.add(Revocation(USER, f"u:{n}", NOW_MS), NOW + n / 10)
    assert revocations.refuses("lobby", "u:5", False, NOW_MS, NOW + 100)
    assert not revocations.refuses("lobby", "u:5", False, NOW_MS + 1, NOW + 100)
    revocations.sweep(NOW + 200)
    assert len(revocations) == 0
    revocations.add(Revocation(ROOM, "lobby", NOW_MS), NOW)
    revocations.add(Revocation(ROOM, "lobby", NOW_MS - 5000), NOW)  # an older cut-off never wins
    assert revocations.refuses("lobby", "g:1", True, NOW_MS, NOW) and len(revocations) == 1
    long_lived = mint_ticket(SECRET, room="r", uid="u:1", name="a", now=NOW, ttl=3601)
    with pytest.raises(TicketError, match="too_long"):
        verify_ticket(long_lived, secrets=[SECRET], room="r", now=NOW, max_ttl=3600)


def test_iat_ms_must_agree_with_iat():
    """iat_ms is the same instant as iat: a ticket whose two times disagree is refused."""
    bad = mint_ticket(SECRET, room="r", uid="u:1", name="a", now=NOW, iat_ms=NOW_MS + 1000)
    with pytest.raises(TicketError, match="bad_key_type"):
        verify_ticket(bad, secrets=[SECRET], room="r", now=NOW)
    good = mint_ticket(SECRET, room="r", uid="u:1", name="a", now=NOW, iat_ms=NOW_MS + 999)
    assert verify_ticket(good, secrets=[SECRET], room="r", now=NOW).issued_ms == NOW_MS + 999


class Instance:
    """One hub of a cluster with its WebSocket factory."""

    def __init__(self, hub, reactor) -> None:
        self.hub, self.reactor = hub, reactor
        self.factory = ChatServerFactory(hub, reactor, hub.config)

    def connect(self, uid="u:1", name="alice", room="lobby", **kw) -> WsClient:
        t = ticket(self.reactor, room=room, uid=uid, name=name, **kw)
        client = WsClient(self.factory, f"/ws/{room}?ticket={t}", ORIGIN)
        client.frames()
        return client


def test_revocation_deletion_and_unarchive_reach_every_instance():
    """Django calls instance A; B closes its sockets and refuses the same old tickets."""
    hubs, reactor, django, redis = make_cluster(2)
    a, b = (Instance(hub, reactor) for hub in hubs)
    alice_b = b.connect(uid="u:1")
    guest_b = b.connect(uid="g:0123456789abcdef", name="g", guest=True, user_id=None)
    a.hub.revoke(Revocation(USER, "u:1", NOW_MS))
    redis.flush()
    assert alice_b.close_frame() == (4003, "access revoked")
    assert guest_b.close_frame() is None
    old = ticket(reactor, uid="u:1", name="alice")
    assert WsClient(b.factory, f"/ws/lobby?ticket={old}", ORIGIN).status == 403
    a.hub.archive("lobby")
    redis.flush()
    assert b.hub.is_archived("lobby") and guest_b.close_frame()[0] == 4004
    a.hub.unarchive("lobby")
    redis.flush()
    assert not b.hub.is_archived("lobby")
    bob_b = b.connect(uid="u:2", name="bob")
    a.hub.delete_room("lobby", NOW_MS)
    redis.flush()
    assert bob_b.close_frame() == (4005, "room deleted")
    assert "lobby" not in b.hub.registry.rooms()


def test_an_unarchive_or_deletion_missed_during_an_outage_is_applied_when_redis_returns():
    """While Redis was down Django un-archived one room (calling A) and deleted another: when
    Redis returns, B asks Django and follows it both ways."""
    hubs, reactor, django, redis = make_cluster(2)
    a, b = (Instance(hub, reactor) for hub in hubs)
    for hub in hubs:
        hub.archive_local("lobby")
    bob_b = b.connect(uid="u:2", name="bob", room="doomed")
    redis.down()
    a.hub.unarchive("lobby")
    django.gone_rooms.add("doomed")
    redis.up()
    assert not b.hub.is_archived("lobby")
    assert bob_b.close_frame() == (4005, "room deleted")
    assert "doomed" not in b.hub.registry.rooms()
