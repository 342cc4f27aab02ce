"""`prev_id` in batch results: each created message names the previous message of its room.

Chat server instances behind a load balancer use it to see a gap in a room's sequence (ids are
global across rooms). Runs on SQLite and, with ``DATABASE_URL=postgres://...``, on PostgreSQL,
where the concurrent test exercises the room row locks.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from chat.models import Message, Room

from .conftest import SignedClient

BATCH = "/internal/messages/batch/"


def item(nonce: str, room: str = "lobby", body: str = "hi") -> dict:
    return {
        "room": room,
        "nonce": nonce,
        "body": body,
        "name": "alice",
        "uid": "g:0123456789abcdef",
        "user_id": None,
        "guest": True,
    }


def post(signed: SignedClient, items: list[dict]) -> list[dict]:
    response = signed.post_json(BATCH, {"messages": items})
    assert response.status_code == 200
    return response.json()["results"]


@pytest.mark.django_db
def test_first_message_of_a_room_has_prev_id_zero_and_the_rest_chain(signed, lobby):
    """An empty room's first message has prev_id 0; each next one names its predecessor."""
    results = post(signed, [item("a"), item("b"), item("c")])
    ids = [r["message"]["id"] for r in results]
    assert [r["prev_id"] for r in results] == [0, ids[0], ids[1]]
    later = post(signed, [item("d")])[0]
    assert later["prev_id"] == ids[2]


@pytest.mark.django_db
def test_rooms_of_one_batch_chain_separately(signed, lobby):
    """Interleaved rooms in one batch: each message's prev_id is in its own room."""
    Room.objects.create(slug="other", name="Other", allow_guests=True)
    results = post(
        signed,
        [item("l1"), item("o1", room="other"), item("l2"), item("o2", room="other")],
    )
    l1, o1, l2, o2 = (r["message"]["id"] for r in results)
    assert [r["prev_id"] for r in results] == [0, 0, l1, o1]
    assert l1 < o1 < l2 < o2  # ids are global: consecutive ids are not the same room


@pytest.mark.django_db
def test_deleted_messages_still_count_as_previous(signed, lobby):
    """A deleted newest message is still the predecessor (ids only grow)."""
    first = post(signed, [item("x")])[0]["message"]["id"]
    Message.objects.filter(pk=first).update(is_deleted=True)
    assert post(signed, [item("y")])[0]["prev_id"] == first


@pytest.mark.django_db
def test_repeats_carry_no_prev_id_and_public_shape_is_unchanged(signed, lobby):
    """A retried nonce (created false) has no prev_id; the message itself has no new key."""
    created = post(signed, [item("r"), item("r")])
    assert created[0]["created"] and "prev_id" in created[0]
    assert not created[1]["created"] and "prev_id" not in created[1]
    again = post(signed, [item("r")])[0]
    assert again["created"] is False and "prev_id" not in again
    assert set(again["message"]) == {
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
    history = signed.get("/internal/rooms/lobby/messages/?after=0").json()["messages"]
    assert all("prev_id" not in m for m in history)


@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_for_one_room_form_one_chain(lobby):
    """Batches racing for one room still give one unbroken chain: every prev_id is the id
    of the message just before it in the room, none is claimed twice."""
    if connection.vendor == "sqlite" and connection.settings_dict["NAME"].startswith(
        ("file:memorydb", ":memory:")
    ):
        pytest.skip("threads cannot share SQLite's in-memory test database; run on PostgreSQL")
    results: list[dict] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        try:
            signed = SignedClient()
            for batch in range(5):
                items = [item(f"w{worker}-{batch}-{i}") for i in range(4)]
                got = post(signed, items)
                with lock:
                    results.extend(got)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    pairs = sorted((r["message"]["id"], r["prev_id"]) for r in results)
    assert len(pairs) == 80
    expected_prev = [0] + [message_id for message_id, _ in pairs[:-1]]
    assert [prev for _, prev in pairs] == expected_prev
