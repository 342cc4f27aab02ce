"""Group commit: batching triggers, in-flight limit, per-room order, retries, per-item errors."""

import random

import pytest
from twisted.internet.task import Clock

from chatserver.persistence import PersistenceQueue, QueueFull
from tests.chatserver.support import FakeDjango


def _item(room, nonce):
    return {
        "room": room,
        "nonce": nonce,
        "body": "b",
        "name": "a",
        "uid": "u:1",
        "user_id": 1,
        "guest": False,
    }


@pytest.fixture
def setup():
    clock = Clock()
    django = FakeDjango()
    published = []

    def stored(message, prev_id):
        published.append(message)
        message_prev[message["id"]] = prev_id

    message_prev = {}
    queue = PersistenceQueue(
        django,
        clock,
        on_stored=stored,
        batch_size=3,
        batch_delay=0.005,
        max_in_flight=2,
        queue_limit=10,
        rng=random.Random(1),
    )
    queue.message_prev = message_prev  # for the prev_id test
    return clock, django, queue, published


def test_delay_trigger_sends_one_batch(setup):
    """Below the batch size, items go together after the delay, not before."""
    clock, django, queue, published = setup
    results = [queue.enqueue(_item("r", f"n{i}")) for i in range(2)]
    assert django.batches == []
    clock.advance(0.005)
    assert len(django.batches) == 1 and len(django.batches[0]) == 2
    assert [r.result["message"]["id"] for r in results] == [1, 2]
    assert [m["id"] for m in published] == [1, 2]


def test_size_trigger_flushes_at_once(setup):
    """Reaching the batch size sends immediately."""
    clock, django, queue, _ = setup
    for i in range(3):
        queue.enqueue(_item("r", f"n{i}"))
    assert len(django.batches) == 1


def test_max_in_flight_and_rooms_never_in_two_batches(setup):
    """At most max_in_flight requests; a room already in flight waits for its answer."""
    clock, django, queue, published = setup
    django.hold = True
    for i in range(3):
        queue.enqueue(_item("a", f"a{i}"))  # batch 1 (room a)
    queue.enqueue(_item("a", "a3"))
    queue.enqueue(_item("b", "b0"))
    clock.advance(0.005)  # batch 2: only b0, since a is in flight
    assert [[i["nonce"] for i in b] for b in django.batches] == [["a0", "a1", "a2"], ["b0"]]
    queue.enqueue(_item("c", "c0"))
    clock.advance(0.005)
    assert len(django.batches) == 2  # in-flight limit reached
    django.release(1)  # b answers first
    assert [m["nonce"] for m in published] == ["b0"]
    assert [i["nonce"] for i in django.batches[2]] == ["c0"]  # a3 still waits for a's batch
    django.release(0)
    assert [i["nonce"] for i in django.batches[3]] == ["a3"]
    django.release(0)
    django.release(0)
    assert [m["nonce"] for m in published] == ["b0", "a0", "a1", "a2", "c0", "a3"]
    a_ids = [m["id"] for m in published if m["room"] == "a"]
    assert a_ids == sorted(a_ids)


def test_failure_retries_with_backoff_and_keeps_order(setup):
    """A failed batch goes back to the front and is retried with growing delays."""
    clock, django, queue, published = setup
    django.failing = 3
    d = queue.enqueue(_item("r", "n0"))
    queue.enqueue(_item("r", "n1"))
    clock.advance(0.005)
    assert len(django.batches) == 1 and not d.called
    delays = []
    while not d.called:
        before = len(django.batches)
        step = 0.0
        while len(django.batches) == before:
            clock.advance(0.01)
            step += 0.01
        delays.append(step)
    assert len(django.batches) == 4
    assert delays[0] < delays[1] < delays[2]
    assert [m["nonce"] for m in published] == ["n0", "n1"]
    assert queue.depth() == 0


def test_queue_limit_raises_busy(setup):
    """Past queue_limit (queued plus in flight) enqueue raises QueueFull."""
    clock, django, queue, _ = setup
    django.hold = True
    for i in range(10):
        queue.enqueue(_item(f"r{i}", "n"))
    with pytest.raises(QueueFull):
        queue.enqueue(_item("x", "n"))


def test_item_refusal_goes_to_its_sender_only(setup):
    """A per-item error fires that item's Deferred with the error; the rest are stored."""
    clock, django, queue, published = setup
    django.item_errors["bad"] = "room_archived"
    bad = queue.enqueue(_item("r", "bad"))
    good = queue.enqueue(_item("r", "good"))
    clock.advance(0.005)
    assert bad.result["ok"] is False and bad.result["error"] == "room_archived"
    assert good.result["ok"] is True
    assert [m["nonce"] for m in published] == ["good"]


def test_when_idle_and_fail_all(setup):
    """when_idle fires once drained; fail_all answers queued items with store_failed."""
    clock, django, queue, _ = setup
    queue.enqueue(_item("r", "n"))
    idle = queue.when_idle()
    assert not idle.called
    clock.advance(0.005)
    assert idle.called
    django.failing = 100
    d = queue.enqueue(_item("r", "m"))
    clock.advance(0.005)
    queue.fail_all()
    assert d.result["error"] == "store_failed"


def test_prev_id_of_created_messages_reaches_on_stored(setup):
    """Django's prev_id is handed on with each created message."""
    clock, django, queue, published = setup
    queue.enqueue(_item("r", "n0"))
    queue.enqueue(_item("s", "m0"))
    queue.enqueue(_item("r", "n1"))
    clock.advance(0.005)
    assert queue.message_prev == {1: 0, 2: 0, 3: 1}


@pytest.mark.parametrize("deleted", [False, True])
def test_a_repeat_is_answered_to_its_sender_and_never_published(setup, deleted):
    """A resent stored nonce (Django: `created: false`) goes back to its sender alone, through
    its Deferred, with the original id; `on_stored` (the fan-out) never sees it, whether the
    original is still there or was deleted."""
    clock, django, queue, published = setup
    queue.enqueue(_item("r", "n0"))
    queue.enqueue(_item("r", "n1"))
    clock.advance(0.005)
    if deleted:
        django.delete(1)
    before = list(published)
    repeats = [queue.enqueue(_item("r", "n0")), queue.enqueue(_item("r", "n0"))]
    clock.advance(0.005)
    assert published == before
    for d in repeats:
        assert d.result["ok"] is True and d.result["created"] is False
        assert d.result["id"] == 1 and d.result["deleted"] is deleted
        assert ("message" in d.result) is not deleted
