"""Contract: `FakeDjango` answers like Django's real internal API (docs/protocol.md, "Internal API
on Django").

Every test here runs twice through the interface the chat server uses
(`chatserver.djangoclient.DjangoClient`'s methods): once against `FakeDjango`, the collaborator
the chat server's unit tests use, and once against the real thing, the chat server's own
`DjangoClient` making signed HTTP requests to a real gunicorn (`tests/support/live.py`). A rule
the fake gets wrong fails on its side only, so the fake cannot drift from Django unnoticed.

The real client runs on Twisted's reactor in a thread of its own, started for this module and
stopped after it (no other test in the suite uses the global reactor).
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from twisted.python.failure import Failure

from chatserver.djangoclient import DjangoClient, UnknownRoom, make_http_client
from tests.chatserver.support import FakeDjango
from tests.support.live import LiveSystem

pytestmark = pytest.mark.integration

GUEST = "g:" + "ab" * 8
SENT_AT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
MESSAGE_KEYS = {
    "id",
    "room",
    "user",
    "body",
    "html",
    "sent_at",
    "nonce",
    "edited_at",
    "version",
    "reactions",
    "reactions_version",
    "reply_to",
    "attachments",
}
CREATED_KEYS = {"ok", "created", "prev_id", "message"}
REPEAT_KEYS = {"ok", "created", "id", "deleted", "message"}
DELETED_REPEAT_KEYS = {"ok", "created", "id", "deleted", "nonce", "room"}
REFUSAL_KEYS = {"ok", "nonce", "room", "error", "message"}
ROOM_KEYS = {"slug", "name", "allow_guests", "is_archived", "last_id"}
_rooms = itertools.count(1)


class Backend:
    """One side of the contract: the API object plus how to arrange what a test needs."""

    name: str
    api: Any

    def call(self, method: str, *args: Any) -> Any:
        """The result of `api.<method>(*args)` once its Deferred fired (or its exception)."""
        raise NotImplementedError

    def new_room(self) -> str:
        """A room Django knows, open, without messages."""
        raise NotImplementedError

    def unknown_room(self) -> str:
        """A room Django does not know."""
        raise NotImplementedError

    def archive(self, slug: str) -> None:
        raise NotImplementedError

    def delete(self, message_id: int) -> None:
        """A moderator deletes the message."""
        raise NotImplementedError

    def uploader(self) -> int:
        """The id of a registered user who may upload."""
        raise NotImplementedError

    def upload(self, room: str, user_id: int, name: str) -> dict:
        """An unsent upload (a small PNG) by that user to `room`: its attachment shape."""
        raise NotImplementedError


class FakeBackend(Backend):
    """`FakeDjango`, whose Deferreds have fired by the time its methods return."""

    name = "fake"

    def __init__(self) -> None:
        self.api = FakeDjango()

    def call(self, method: str, *args: Any) -> Any:
        outcome: list[Any] = []
        getattr(self.api, method)(*args).addBoth(outcome.append)
        assert outcome, f"FakeDjango.{method} did not answer"
        if isinstance(outcome[0], Failure):
            outcome[0].raiseException()
        return outcome[0]

    def new_room(self) -> str:
        return f"contract-{next(_rooms)}"

    def unknown_room(self) -> str:
        slug = f"contract-unknown-{next(_rooms)}"
        self.api.gone_rooms.add(slug)
        return slug

    def archive(self, slug: str) -> None:
        self.api.archived_rooms.add(slug)

    def delete(self, message_id: int) -> None:
        self.api.delete(message_id)

    def uploader(self) -> int:
        return 4000 + next(_rooms)

    def upload(self, room: str, user_id: int, name: str) -> dict:
        return self.api.upload(room, f"u:{user_id}", name)


class RealBackend(Backend):
    """The chat server's `DjangoClient` over HTTP to the live gunicorn."""

    name = "real"

    def __init__(self, live: LiveSystem, reactor: Any) -> None:
        self.live = live
        self.reactor = reactor
        self.api = DjangoClient(
            live.django_url, live.secret, make_http_client(reactor), reactor, timeout=10
        )
        self.run = secrets.token_hex(3)

    def call(self, method: str, *args: Any) -> Any:
        from twisted.internet.threads import blockingCallFromThread

        return blockingCallFromThread(self.reactor, getattr(self.api, method), *args)

    def new_room(self) -> str:
        slug = f"contract-{self.run}-{next(_rooms)}"
        self.live.create_room(slug, guests=True)
        return slug

    def unknown_room(self) -> str:
        return f"contract-unknown-{self.run}-{next(_rooms)}"

    def archive(self, slug: str) -> None:
        self.live.archive_room(slug)

    def delete(self, message_id: int) -> None:
        self.live.shell(
            "from django.utils import timezone\n"
            "from chat.models import Message\n"
            f"Message.objects.filter(pk={message_id}).update("
            "is_deleted=True, deleted_at=timezone.now())\n"
        )

    def uploader(self) -> int:
        username = f"contract-{self.run}-{next(_rooms)}"
        self.live.create_user(username, secrets.token_hex(16))
        out = self.live.shell(
            "from django.contrib.auth import get_user_model\n"
            f"print(get_user_model().objects.get(username={username!r}).pk)\n"
        )
        return int(out.strip().splitlines()[-1])

    def upload(self, room: str, user_id: int, name: str) -> dict:
        out = self.live.shell(
            "import io, json\n"
            "from PIL import Image\n"
            "from django.core.files.uploadedfile import SimpleUploadedFile\n"
            "from chat.attachments import Uploader, store_upload\n"
            "from chat.models import Room\n"
            "buf = io.BytesIO()\n"
            "Image.new('RGB', (2, 1)).save(buf, 'PNG')\n"
            f"upload = SimpleUploadedFile({name!r}, buf.getvalue(), 'image/png')\n"
            f"row = store_upload(Room.objects.get(slug={room!r}), "
            f"Uploader({user_id}, 'u:{user_id}'), upload, 'image/png')\n"
            "print(json.dumps(row.shape()))\n"
        )
        return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def running_reactor() -> Iterator[Any]:
    """Twisted's reactor, running in a thread of its own for this module."""
    from twisted.internet import reactor

    thread = threading.Thread(
        target=reactor.run, kwargs={"installSignalHandlers": False}, daemon=True
    )
    thread.start()
    yield reactor
    reactor.callFromThread(reactor.stop)
    thread.join(timeout=10)


@pytest.fixture(params=["fake", "real"])
def django(request: pytest.FixtureRequest) -> Backend:
    """Each test runs against `FakeDjango` and against the real internal API."""
    if request.param == "fake":
        return FakeBackend()
    return RealBackend(request.getfixturevalue("live"), request.getfixturevalue("running_reactor"))


def item(room: str, nonce: str | None = None, body: str = "hello", **fields: Any) -> dict:
    """A batch item as the chat server sends it (a guest unless told otherwise)."""
    return {
        "room": room,
        "nonce": nonce or secrets.token_hex(8),
        "body": body,
        "name": "guest-1",
        "uid": GUEST,
        "user_id": None,
        "guest": True,
        **fields,
    }


def store(django: Backend, *items: dict) -> list[dict]:
    results = django.call("persist_batch", list(items))
    assert len(results) == len(items)
    return results


def stored_ids(django: Backend, room: str) -> list[int]:
    messages, _ = django.call("messages_after", room, 0, 1000)
    return [m["id"] for m in messages]


def assert_message_shape(message: dict, room: str) -> None:
    assert set(message) == MESSAGE_KEYS
    assert set(message["user"]) == {"id", "name", "guest"}
    assert message["room"] == room and isinstance(message["id"], int)
    # Rendered Markdown: something for any body, nothing for the empty body of a message that
    # is only attachments.
    assert isinstance(message["html"], str) and bool(message["html"]) == bool(message["body"])
    assert SENT_AT.fullmatch(message["sent_at"]), message["sent_at"]


def test_new_items_are_stored_in_the_protocol_shape_with_prev_id(django):
    """Created items answer `created` with the message (body and name stripped) and `prev_id`:
    0 for a room's first message, then the previous message's id."""
    room = django.new_room()
    first, second = store(
        django,
        item(room, body="  hi there \n", name=" alice "),
        item(room, body="second", uid="u:7", user_id=7, guest=False, name="bob"),
    )
    for result in (first, second):
        assert set(result) == CREATED_KEYS and result["ok"] is True and result["created"] is True
        assert_message_shape(result["message"], room)
    assert first["prev_id"] == 0
    assert second["prev_id"] == first["message"]["id"] < second["message"]["id"]
    assert first["message"]["body"] == "hi there"
    assert first["message"]["user"] == {"id": GUEST, "name": "alice", "guest": True}
    assert second["message"]["user"] == {"id": "u:7", "name": "bob", "guest": False}
    assert stored_ids(django, room) == [first["message"]["id"], second["message"]["id"]]


def test_a_resent_nonce_is_answered_with_the_original_and_stored_once(django):
    """The same nonce again (later, or twice in one batch) is a repeat: `created` false, the
    original's id and message, whatever body the resend carries."""
    room = django.new_room()
    (original,) = store(django, item(room, "n-1", "original"))
    (again,) = store(django, item(room, "n-1", "changed"))
    assert set(again) == REPEAT_KEYS
    assert (again["ok"], again["created"], again["deleted"]) == (True, False, False)
    assert again["id"] == original["message"]["id"]
    assert again["message"] == original["message"]
    twice = store(django, item(room, "n-2", "x"), item(room, "n-2", "x"))
    assert [r["created"] for r in twice] == [True, False]
    assert twice[1]["id"] == twice[0]["message"]["id"]
    assert stored_ids(django, room) == [original["message"]["id"], twice[0]["message"]["id"]]


def test_a_resent_nonce_of_a_deleted_message_never_brings_its_text_back(django):
    """A repeat of a moderated message answers its id and `deleted`, without the message."""
    room = django.new_room()
    (original,) = store(django, item(room, "gone-1", "regrettable"))
    django.delete(original["message"]["id"])
    (again,) = store(django, item(room, "gone-1", "regrettable"))
    assert set(again) == DELETED_REPEAT_KEYS
    assert (again["ok"], again["created"], again["deleted"]) == (True, False, True)
    assert (again["id"], again["nonce"], again["room"]) == (
        original["message"]["id"],
        "gone-1",
        room,
    )


def test_each_item_is_judged_on_its_own(django):
    """Bad items get their own error code with their nonce and room; the others are stored."""
    room, archived, unknown = django.new_room(), django.new_room(), django.unknown_room()
    django.archive(archived)
    cases = [
        (item(room, "ok-1"), None),
        (item(room, "nul-1", "a\x00b"), "bad_body"),
        (item(room, "uid-1", uid="u:8", user_id=7, guest=False), "bad_item"),
        (item(room, "uid-2", user_id=7), "bad_item"),
        (item(room, "uid-3", uid="g:ABABABABABABABAB"), "bad_item"),
        (item(room, "name-1", name="   "), "bad_item"),
        (item(room, "name-2", name="n" * 65), "bad_item"),
        ({"room": room, "nonce": "field-1", "body": "no author"}, "bad_item"),
        (item(room, "has space"), "bad_nonce"),
        (item(room, "n" * 65), "bad_nonce"),
        (item(room, "empty-1", " \n\t "), "empty_body"),
        (item(room, "att-1", "", attachments=["A" * 22]), "bad_attachments"),
        (item(room, "att-2", "x", attachments=[]), "bad_attachments"),
        (item(room, "att-3", "x", attachments=["short"]), "bad_attachments"),
        (item(room, "long-1", "x" * 4001), "body_too_long"),
        (item(unknown, "unknown-1"), "unknown_room"),
        (item(archived, "archived-1"), "room_archived"),
        (item(room, "ok-2", " " + "x" * 4000 + " "), None),
    ]
    results = store(django, *(case for case, _ in cases))
    assert [r.get("error") for r in results] == [code for _, code in cases]
    for (sent, code), result in zip(cases, results, strict=True):
        if code is None:
            assert result["ok"] is True and result["created"] is True
            continue
        assert set(result) == REFUSAL_KEYS and result["ok"] is False
        assert (result["nonce"], result["room"]) == (sent["nonce"], sent["room"])
        assert isinstance(result["message"], str) and result["message"]
    assert len(stored_ids(django, room)) == 2


def test_attachments_are_claimed_once_by_their_uploader_in_their_room(django):
    """A user's item naming its own unsent uploads to the room is stored with them (in the item's
    order, body may be empty); naming them again, someone else's upload or an upload to another room
    is refused `bad_attachments`; a resend of the nonce answers the original with its files."""
    room, other = django.new_room(), django.new_room()
    alice, bob = django.uploader(), django.uploader()
    first = django.upload(room, alice, "one.png")
    second = django.upload(room, alice, "two.png")
    bobs = django.upload(room, bob, "b.png")
    elsewhere = django.upload(other, alice, "x.png")

    def by(user_id: int, nonce: str, ids: list[str], body: str = "") -> dict:
        return item(
            room,
            nonce,
            body,
            uid=f"u:{user_id}",
            user_id=user_id,
            guest=False,
            name="alice",
            attachments=ids,
        )

    stored, theirs, wrong_room = store(
        django,
        by(alice, "files-1", [second["id"], first["id"]]),
        by(alice, "files-2", [bobs["id"]], "hi"),
        by(alice, "files-3", [elsewhere["id"]], "hi"),
    )
    assert stored["created"] is True
    assert_message_shape(stored["message"], room)
    assert stored["message"]["body"] == "" and stored["message"]["attachments"] == [second, first]
    assert (theirs["error"], wrong_room["error"]) == ("bad_attachments", "bad_attachments")
    (again,) = store(django, by(alice, "files-4", [first["id"]], "again"))
    assert again["error"] == "bad_attachments"
    (repeat,) = store(django, by(alice, "files-1", [second["id"], first["id"]]))
    assert repeat["created"] is False and repeat["message"] == stored["message"]
    history, _ = django.call("messages_after", room, 0, 10)
    assert history[-1]["attachments"] == [second, first]


def test_replies_quote_their_parent_and_only_a_parent_of_the_same_room(django):
    """`reply_to` names a message of the item's room (deleted ones included: the quote then
    says `deleted` and nothing else); another room's message or an unknown id is refused
    `unknown_parent`, a value that is not an id `bad_item`. The snippet is the parent's first
    100 characters, `…` when cut."""
    room, other = django.new_room(), django.new_room()
    parent, elsewhere, doomed = store(
        django,
        item(room, body="p" * 101, name="alice"),
        item(other, body="not here"),
        item(room, body="soon gone"),
    )
    django.delete(doomed["message"]["id"])
    parent_id = parent["message"]["id"]
    cases = [
        (item(room, "r-1", reply_to=parent_id), None),
        (item(room, "r-2", reply_to=doomed["message"]["id"]), None),
        (item(room, "r-3", reply_to=elsewhere["message"]["id"]), "unknown_parent"),
        (item(room, "r-4", reply_to=2**53 - 1), "unknown_parent"),
        (item(room, "r-5", reply_to=str(parent_id)), "bad_item"),
        (item(room, "r-6", reply_to=0), "bad_item"),
        (item(room, "r-7", reply_to=None), None),
    ]
    results = store(django, *(case for case, _ in cases))
    assert [r.get("error") for r in results] == [code for _, code in cases]
    assert results[0]["message"]["reply_to"] == {
        "id": parent_id,
        "author": {"id": GUEST, "name": "alice", "guest": True},
        "snippet": "p" * 100 + "…",
        "deleted": False,
    }
    assert results[1]["message"]["reply_to"] == {
        "id": doomed["message"]["id"],
        "author": None,
        "snippet": "",
        "deleted": True,
    }
    assert results[6]["message"]["reply_to"] is None
    messages, _ = django.call("messages_after", room, 0, 1000)
    assert [m["reply_to"] for m in messages][1:] == [
        results[0]["message"]["reply_to"],
        results[1]["message"]["reply_to"],
        None,
    ]


def test_a_repeat_in_an_archived_room_is_still_answered_with_the_original(django):
    """Archiving refuses new items, not the resend of a message stored before: the sender
    learns it was stored (`created` false) instead of `room_archived`."""
    room = django.new_room()
    (original,) = store(django, item(room, "before-archive"))
    django.archive(room)
    again, new = store(django, item(room, "before-archive"), item(room, "after-archive"))
    assert (again["ok"], again["created"], again["id"]) == (True, False, original["message"]["id"])
    assert (new["ok"], new["error"]) == (False, "room_archived")


@pytest.fixture
def five(django: Backend) -> tuple[Backend, str, list[int]]:
    """A room holding five messages, and their ids."""
    room = django.new_room()
    results = store(django, *(item(room, f"h-{n}", f"message {n}") for n in range(5)))
    return django, room, [r["message"]["id"] for r in results]


def test_history_after_pages_forward_in_id_order(five):
    """`messages_after`: the oldest `limit` messages after the id, with `has_more`."""
    django, room, ids = five
    page, more = django.call("messages_after", room, 0, 2)
    assert ([m["id"] for m in page], more) == (ids[:2], True)
    page, more = django.call("messages_after", room, ids[1], 10)
    assert ([m["id"] for m in page], more) == (ids[2:], False)
    page, more = django.call("messages_after", room, ids[1], 3)
    assert ([m["id"] for m in page], more) == (ids[2:], False)
    assert django.call("messages_after", room, ids[-1], 10) == ([], False)
    for message in page:
        assert_message_shape(message, room)


def test_latest_history_is_the_newest_page_oldest_first(five):
    """`latest_messages`: the newest `limit`, in id order; `has_more` says older ones exist."""
    django, room, ids = five
    page, more = django.call("latest_messages", room, 2)
    assert ([m["id"] for m in page], more) == (ids[-2:], True)
    page, more = django.call("latest_messages", room, 5)
    assert ([m["id"] for m in page], more) == (ids, False)


def test_history_leaves_out_deleted_messages_and_still_answers_for_an_archived_room(five):
    """A deleted message is never listed again; an archived room's history can still be read."""
    django, room, ids = five
    django.delete(ids[2])
    django.archive(room)
    kept = [i for i in ids if i != ids[2]]
    assert [m["id"] for m in django.call("messages_after", room, 0, 10)[0]] == kept
    assert [m["id"] for m in django.call("latest_messages", room, 10)[0]] == kept
    page, more = django.call("messages_after", room, ids[1], 1)
    assert ([m["id"] for m in page], more) == ([ids[3]], True)


@pytest.mark.parametrize(
    "read",
    [
        lambda django, room: django.call("messages_after", room, 0, 10),
        lambda django, room: django.call("latest_messages", room, 10),
        lambda django, room: django.call("room_detail", room),
    ],
    ids=["messages_after", "latest_messages", "room_detail"],
)
def test_reads_of_a_room_django_does_not_know_raise_unknown_room(
    django, read: Callable[[Backend, str], Any]
):
    """404 `unknown_room` reaches the chat server as `UnknownRoom` (it then forgets the room)."""
    with pytest.raises(UnknownRoom):
        read(django, django.unknown_room())


def test_room_detail_reports_archiving_and_the_last_id_deleted_messages_included(django):
    """`room_detail`: slug, name, guests, archived flag and the highest id ever stored (null
    for an empty room; a deleted newest message still counts, ids only grow)."""
    room = django.new_room()
    detail = django.call("room_detail", room)
    assert set(detail) == ROOM_KEYS
    assert (detail["slug"], detail["is_archived"], detail["last_id"]) == (room, False, None)
    assert isinstance(detail["name"], str) and isinstance(detail["allow_guests"], bool)
    results = store(django, item(room), item(room))
    newest = results[-1]["message"]["id"]
    django.delete(newest)
    django.archive(room)
    detail = django.call("room_detail", room)
    assert (detail["is_archived"], detail["last_id"]) == (True, newest)


def test_health_answers_ok(django):
    """`health` fires with True while Django and its database answer."""
    assert django.call("health") is True


def test_the_fake_offers_the_methods_of_the_real_client_with_the_same_parameters():
    """Same method names and parameters (defaults included), so a caller written against one
    works against the other."""
    for method in ("persist_batch", "messages_after", "latest_messages", "room_detail", "health"):
        real = inspect.signature(getattr(DjangoClient, method))
        fake = inspect.signature(getattr(FakeDjango, method))
        assert [(p.name, p.default) for p in fake.parameters.values()] == [
            (p.name, p.default) for p in real.parameters.values()
        ], method
