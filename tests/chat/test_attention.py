"""Attention on the Django side: read state, mention parsing and recording (readers only),
recipients of the feed events, @here rules, the attention API and user tickets."""

from __future__ import annotations

import json

import jwt
import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils import timezone

from chat import access, attention
from chat.models import Mention, Message, ReadState

from . import test_admin

chat_server = test_admin.chat_server
BATCH = "/internal/messages/batch/"


def store(signed, room, body, user, nonce):
    """Store one message through the internal batch API, as the chat server does."""
    item = {
        "room": room.slug,
        "nonce": nonce,
        "body": body,
        "name": user.username,
        "uid": f"u:{user.pk}",
        "user_id": user.pk,
        "guest": False,
    }
    answer = signed.post_json(BATCH, {"messages": [item]}).json()
    return answer["results"][0]["message"]["id"]


def user_events(server) -> list[dict]:
    """The items of every `POST /internal/users/events` the fake chat server got."""
    return [
        item for r in server.requests if r["path"] == "/internal/users/events" for item in r["body"]
    ]


def test_parse_mentions():
    """`@name` tokens, case-folded, a trailing dot dropped; e-mail addresses are no mention;
    `@here` is its own flag."""
    names, here = attention.parse_mentions("Hi @Bob, mail a@b.example; @carol. and @here!")
    assert names == {"bob", "carol"} and here is True
    assert attention.parse_mentions("no one") == (set(), False)


def test_mention_of_a_reader_is_recorded_and_sent(
    signed, lobby, alice, bob, carol, chat_server, django_capture_on_commit_callbacks
):
    """A stored message naming @bob records the mention, makes bob follow the room with the
    message unread, and sends bob a `mention`; carol (following) gets `room_message`; the
    author gets nothing."""
    ReadState.objects.create(user=carol, room=lobby)
    ReadState.objects.create(user=alice, room=lobby)
    with django_capture_on_commit_callbacks(execute=True):
        mid = store(signed, lobby, "hello @BOB", alice, "n1")
    assert list(Mention.objects.values_list("user__username", "message_id")) == [("bob", mid)]
    assert attention.room_state(bob, ReadState.objects.get(user=bob, room=lobby))["mentions"] == 1
    items = user_events(chat_server)
    kinds = {item["event"]["type"]: item["users"] for item in items}
    assert kinds == {"room_message": [carol.pk], "mention": [bob.pk]}
    mention = next(i["event"] for i in items if i["event"]["type"] == "mention")
    assert mention["room"] == "lobby" and mention["id"] == mid and mention["excerpt"]
    assert mention["author"] == {"id": f"u:{alice.pk}", "name": "alice"}


def test_mention_of_a_non_reader_is_not_recorded(
    signed, lobby, alice, bob, monkeypatch, chat_server, django_capture_on_commit_callbacks
):
    """The access rule (chat.access.may_read) decides: bob may not read, so no mention is
    recorded, no read state created and no event sent to him."""
    real = access.may_read
    monkeypatch.setattr(access, "may_read", lambda u, r: u.pk != bob.pk and real(u, r))
    with django_capture_on_commit_callbacks(execute=True):
        store(signed, lobby, "hello @bob", alice, "n1")
    assert not Mention.objects.exists()
    assert not ReadState.objects.filter(user=bob).exists()
    assert all(bob.pk not in item["users"] for item in user_events(chat_server))


def test_own_mention_and_unknown_names_are_ignored(signed, lobby, alice):
    """Naming yourself or nobody records nothing."""
    store(signed, lobby, "@alice and @nobody", alice, "n1")
    assert not Mention.objects.exists()


def test_recipients_exclude_the_author_and_split_mentions(lobby, alice, bob, carol):
    """Followers who were named get `mention`, the others `room_message`; never the author."""
    message = Message.objects.create(
        room=lobby,
        author=alice,
        author_name="alice",
        author_uid=f"u:{alice.pk}",
        body="@bob look",
        nonce="x",
    )
    items = attention.recipients(message, [alice.pk, bob.pk, carol.pk], [bob], [])
    assert [(i["event"]["type"], i["users"]) for i in items] == [
        ("room_message", [carol.pk]),
        ("mention", [bob.pk]),
    ]


def test_mark_read_moves_forward_only_and_tells_every_feed(
    alice_client, alice, bob, lobby, chat_server, django_capture_on_commit_callbacks
):
    """`POST /api/rooms/<slug>/read/` moves the position forward (never back, never past the
    newest message), answers the room's counts and sends them to alice's feeds."""
    ids = [
        Message.objects.create(
            room=lobby,
            author=bob,
            author_name="bob",
            author_uid=f"u:{bob.pk}",
            body=f"m{i}",
            nonce=f"n{i}",
        ).pk
        for i in range(3)
    ]
    ReadState.objects.create(user=alice, room=lobby, last_read_id=ids[0])
    url = "/api/rooms/lobby/read/"
    assert alice_client.get("/api/attention/").json()["rooms"][0]["unread"] == 2
    with django_capture_on_commit_callbacks(execute=True):
        answer = alice_client.post(url, {"last_read_id": ids[1]}, content_type="application/json")
    assert answer.json()["unread"] == 1 and answer.json()["last_read_id"] == ids[1]
    assert user_events(chat_server) == [{"users": [alice.pk], "event": answer.json()}]
    back = alice_client.post(url, {"last_read_id": ids[0]}, content_type="application/json")
    assert back.json()["last_read_id"] == ids[1]
    far = alice_client.post(url, {"last_read_id": 10**12}, content_type="application/json")
    assert far.json()["last_read_id"] == ids[2] and far.json()["unread"] == 0
    bad = alice_client.post(url, {"last_read_id": "-1"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_id"


def test_attention_api_needs_a_signed_in_reader(alice_client, alice, lobby, monkeypatch):
    """Anonymous: 401; a room the user may not read: 403 (chat.access)."""
    client = Client()
    assert client.get("/api/attention/").status_code == 401
    assert (
        client.post("/api/rooms/lobby/read/", {}, content_type="application/json").status_code
        == 401
    )
    assert client.get("/api/feed/ticket/").status_code == 401
    monkeypatch.setattr(access, "may_read", lambda u, r: False)
    refused = alice_client.post(
        "/api/rooms/lobby/read/", {"last_read_id": 1}, content_type="application/json"
    )
    assert refused.status_code == 403


def test_mute_is_stored_per_user(alice_client, alice, lobby, chat_server):
    """`POST /api/rooms/<slug>/mute/` stores the flag; the summary reports it."""
    answer = alice_client.post(
        "/api/rooms/lobby/mute/", {"muted": True}, content_type="application/json"
    )
    assert answer.json()["muted"] is True
    assert ReadState.objects.get(user=alice, room=lobby).muted is True
    bad = alice_client.post(
        "/api/rooms/lobby/mute/", {"muted": "yes"}, content_type="application/json"
    )
    assert bad.status_code == 400


def test_feed_ticket_is_a_user_ticket(alice_client, alice):
    """The feed ticket's audience is `feed` (no room), for `u:<id>`, with the feed URLs."""
    data = alice_client.get("/api/feed/ticket/").json()
    claims = jwt.decode(
        data["ticket"], settings.CHAT_SHARED_SECRET, algorithms=["HS256"], audience="feed"
    )
    assert claims["sub"] == f"u:{alice.pk}" and claims["user_id"] == alice.pk
    assert data["ws_url"].split("?")[0].endswith("/ws/@me")
    assert data["poll_url"].split("?")[0].endswith("/poll/@me")
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(
            data["ticket"], settings.CHAT_SHARED_SECRET, algorithms=["HS256"], audience="room:lobby"
        )


@override_settings(CHAT_HERE_LARGE_ROOM=1, CHAT_HERE_INTERVAL=60)
def test_here_reaches_people_seen_recently_with_size_and_rate_rules(
    signed, lobby, alice, bob, carol, django_user_model
):
    """@here reaches readers seen in the room lately; in a room over CHAT_HERE_LARGE_ROOM only
    staff may; one @here per author and room per CHAT_HERE_INTERVAL."""
    now = timezone.now()
    ReadState.objects.create(user=bob, room=lobby, seen_at=now)
    ReadState.objects.create(user=carol, room=lobby, seen_at=now)
    store(signed, lobby, "@here hi", alice, "n1")  # 2 people > 1: alice is not staff
    assert not Mention.objects.exists()
    alice.is_staff = True
    alice.save()
    first = store(signed, lobby, "@here hi", alice, "n2")
    assert set(
        Mention.objects.filter(message_id=first, here=True).values_list("user__username", flat=True)
    ) == {"bob", "carol"}
    again = store(signed, lobby, "@here again", alice, "n3")
    assert not Mention.objects.filter(message_id=again).exists()


def test_people_autocomplete_lists_recent_readers(alice_client, alice, bob, lobby):
    """`GET /api/rooms/<slug>/people/?q=` lists readers seen recently by prefix."""
    ReadState.objects.create(user=bob, room=lobby, seen_at=timezone.now())
    found = alice_client.get("/api/rooms/lobby/people/?q=B").json()["people"]
    assert found == [{"id": f"u:{bob.pk}", "name": "bob"}]
    assert alice_client.get("/api/rooms/lobby/people/?q=z").json()["people"] == []


def test_summary_counts_unread_and_mentions(alice_client, alice, bob, lobby):
    """The summary counts others' visible messages after the position, and mentions."""
    ReadState.objects.create(user=alice, room=lobby)
    Message.objects.create(room=lobby, author=alice, author_name="alice", body="mine", nonce="a")
    other = Message.objects.create(
        room=lobby, author=bob, author_name="bob", body="@alice hi", nonce="b"
    )
    Mention.objects.create(message=other, user=alice)
    data = alice_client.get("/api/attention/").json()
    assert (data["unread"], data["mentions"]) == (1, 1)
    assert json.loads(json.dumps(data["rooms"][0]))["room"] == "lobby"


def test_members_follow_a_private_room_and_a_direct_message_says_so(
    signed, alice, bob, carol, chat_server, django_capture_on_commit_callbacks
):
    """Both people of a direct conversation follow it from the moment it exists (no read
    state, never opened): a message there is a `room_message` with `"direct": true` for the
    other person; a private room's member follows it too, a non-member does not."""
    from chat import direct
    from chat.membership import MEMBER, Membership

    room = direct.open_direct(alice, bob.pk)
    assert not ReadState.objects.filter(room=room).exists()
    with django_capture_on_commit_callbacks(execute=True):
        message_id = store(signed, room, "psst", alice, "d1")
    events = [i for i in user_events(chat_server) if i["event"].get("id") == message_id]
    assert events == [
        {
            "users": [bob.pk],
            "event": {
                "type": "room_message",
                "room": room.slug,
                "room_name": room.name,
                "id": message_id,
                "author": {"id": f"u:{alice.pk}", "name": "alice"},
                "direct": True,
                "excerpt": "psst",
            },
        }
    ]
    assert attention.followers(room, alice.pk) == [bob.pk]
    # A plain private room: the member follows it, carol (not a member) does not.
    from chat.models import PRIVATE, Room

    secret = Room.objects.create(slug="secret", name="Secret", visibility=PRIVATE)
    Membership.objects.create(room=secret, user=bob, role=MEMBER)
    assert attention.followers(secret, None) == [bob.pk]


@override_settings(CHAT_HERE_LARGE_ROOM=1, CHAT_HERE_INTERVAL=60)
def test_room_owners_may_use_here_in_a_large_room(signed, alice, bob, carol):
    """Over CHAT_HERE_LARGE_ROOM, a private room's owner may use @here as staff may; a plain
    member may not."""
    from chat.membership import MEMBER, OWNER, Membership
    from chat.models import PRIVATE, Room

    room = Room.objects.create(slug="big", name="Big", visibility=PRIVATE)
    for user, role in ((alice, OWNER), (bob, MEMBER), (carol, MEMBER)):
        Membership.objects.create(room=room, user=user, role=role)
    now = timezone.now()
    for user in (alice, bob, carol):
        ReadState.objects.create(user=user, room=room, seen_at=now)
    refused = store(signed, room, "@here hi", bob, "h1")  # 2 people > 1: bob is a member
    assert not Mention.objects.filter(message_id=refused).exists()
    allowed = store(signed, room, "@here hi", alice, "h2")
    assert set(
        Mention.objects.filter(message_id=allowed, here=True).values_list("user_id", flat=True)
    ) == {bob.pk, carol.pk}


def test_rooms_followed_but_never_opened_keep_their_badges(
    signed, alice, bob, carol, sign_in, chat_server, django_capture_on_commit_callbacks
):
    """The summary lists every room the live feed counts for the user (the follow rule:
    chat.attention.followed_rooms / followers), with the same count: a direct conversation bob
    never opened counts all its messages and its mention; a private room bob joined after
    some history counts from the join, exactly the `room_message` events the feed sent him.
    Muting, being mentioned and the room page start an unopened room from that point too; an
    invitation alone follows nothing."""
    from chat import direct, invites
    from chat.membership import OWNER, Membership
    from chat.models import PRIVATE, Room

    bob_client = sign_in(bob)
    dm = direct.open_direct(alice, bob.pk)
    with django_capture_on_commit_callbacks(execute=True):
        store(signed, dm, "psst", alice, "d1")
        store(signed, dm, "@bob are you there?", alice, "d2")
    secret = Room.objects.create(slug="secret", name="Secret", visibility=PRIVATE)
    Membership.objects.create(room=secret, user=alice, role=OWNER)
    for i in range(3):
        store(signed, secret, f"before bob {i}", alice, f"s{i}")
    invite = invites.invite_user(secret, alice, bob)
    invites.invite_user(secret, alice, carol)
    # Invited, not yet a member: the room is not followed.
    assert secret.slug not in {r["room"] for r in bob_client.get("/api/attention/").json()["rooms"]}
    invites.accept(invite.pk, bob)
    chat_server.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        store(signed, secret, "welcome", alice, "s9")
    live = [i for i in user_events(chat_server) if bob.pk in i["users"]]
    assert [i["event"]["type"] for i in live] == ["room_message"]

    data = bob_client.get("/api/attention/").json()
    counts = {r["room"]: (r["unread"], r["mentions"]) for r in data["rooms"]}
    assert counts == {dm.slug: (2, 1), secret.slug: (1, 0)}
    assert (data["unread"], data["mentions"]) == (3, 1)
    # carol is only invited: she follows nothing yet.
    assert sign_in(carol).get("/api/attention/").json()["rooms"] == []

    # The room page's divider starts where the count does.
    page = bob_client.get(f"/chats/{secret.slug}/")
    joined_after = Message.objects.get(nonce="s2").pk
    assert page.context["attention"]["last_read_id"] == joined_after
    # Muting an unopened room keeps its count (it does not start from the room's first message).
    muted = bob_client.post(
        f"/api/rooms/{secret.slug}/mute/", {"muted": True}, content_type="application/json"
    )
    assert (muted.json()["unread"], muted.json()["last_read_id"]) == (1, joined_after)
    # The mention in the unopened conversation kept the message before it unread (its read
    # state starts at the join, not at the mention).
    assert ReadState.objects.get(user=bob, room=dm).last_read_id == 0
    store(signed, dm, "@bob hello?", alice, "d3")
    counts = {r["room"]: r["unread"] for r in bob_client.get("/api/attention/").json()["rooms"]}
    assert counts == {dm.slug: 3, secret.slug: 1}
