"""The persistence queue under poison items, outages and floods (chatserver/persistence.py).

A fake Django answers a 5xx (`DjangoRefused`) to any batch holding a poison body, as PostgreSQL
does when one row of a batch cannot be stored; or a 5xx to everything and a failing health check
(its database is down); or no answer at all (`DjangoUnreachable`). Time is a `task.Clock`:
tests advance it until a condition holds, with a deadline in simulated seconds.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock

from chatserver.djangoclient import DjangoRefused, DjangoUnreachable
from chatserver.longpoll import LongPollResource
from chatserver.persistence import ALONE_ATTEMPTS, PersistenceQueue, QueueFull
from chatserver.protocol import ChatServerFactory
from chatserver.service import build_hub
from tests.chatserver.support import (
    ORIGIN,
    FakeDjango,
    WsClient,
    body_json,
    make_config,
    render,
    ticket,
    web_request,
)

POISON = "the database cannot take this one"


class PoisonDjango(FakeDjango):
    """FakeDjango that fails whole batches the way a real Django does."""

    def __init__(self, clock: Clock | None = None, latency: float = 0.001) -> None:
        super().__init__()
        self.clock = clock  # when set, answers arrive `latency` seconds later, as over a network
        self.latency = latency
        self.down = False  # every batch answered 500 and the health check fails
        self.unreachable = False  # no answer at all
        self.health_calls = 0

    def persist_batch(self, items: list[dict]) -> Deferred:
        answer = self._answer(items)
        if self.clock is None:
            return answer
        later: Deferred = Deferred()
        self.clock.callLater(self.latency, answer.chainDeferred, later)
        return later

    def _answer(self, items: list[dict]) -> Deferred:
        if self.unreachable:
            self.batches.append(list(items))
            return fail(DjangoUnreachable("POST /internal/messages/batch/ failed: refused"))
        if self.down or any(item["body"] == POISON for item in items):
            self.batches.append(list(items))
            return fail(DjangoRefused("POST /internal/messages/batch/ -> 500", 500))
        return super().persist_batch(items)

    def health(self) -> Deferred:
        self.health_calls += 1
        return succeed(not (self.down or self.unreachable))


def _item(room: str, nonce: str, body: str = "b") -> dict:
    return {
        "room": room,
        "nonce": nonce,
        "body": body,
        "name": "a",
        "user_id": 1,
        "guest": False,
        "uid": "u:1",
    }


def run_until(clock: Clock, condition: Callable[[], bool], deadline: float = 120.0) -> None:
    """Advance the fake clock in small steps until `condition()` holds, at most `deadline`."""
    waited = 0.0
    while not condition():
        assert waited < deadline, "condition not met before the deadline (simulated seconds)"
        clock.advance(0.01)
        waited += 0.01


def make_queue(django: FakeDjango, **overrides) -> tuple[Clock, PersistenceQueue, list[dict]]:
    clock = Clock()
    if isinstance(django, PoisonDjango):
        django.clock = clock
    published: list[dict] = []
    options = {
        "batch_size": 8,
        "batch_delay": 0.005,
        "max_in_flight": 2,
        "queue_limit": 1000,
        "rng": random.Random(1),
    }
    options.update(overrides)
    queue = PersistenceQueue(
        django, clock, on_stored=lambda message, prev: published.append(message), **options
    )
    return clock, queue, published


def _assert_room_order(published: list[dict]) -> None:
    for room in {m["room"] for m in published}:
        nonces = [m["nonce"] for m in published if m["room"] == room]
        ids = [m["id"] for m in published if m["room"] == room]
        assert ids == sorted(ids)
        assert nonces == sorted(nonces, key=lambda n: int(n.split("-")[1]))


def test_a_poison_item_is_refused_to_its_sender_and_every_other_item_is_stored():
    """One item Django answers 5xx for: bisected out and answered `store_failed` with a message;
    every other item of every room (its own room's later ones too) is stored, in order."""
    django = PoisonDjango()
    clock, queue, published = make_queue(django)
    rooms = ["a", "b", "c"]
    results = {}
    for i in range(15):
        room = rooms[i % 3]
        body = POISON if i == 6 else f"m{i}"
        results[f"{room}-{i}"] = queue.enqueue(_item(room, f"{room}-{i}", body))
    run_until(clock, lambda: all(d.called for d in results.values()))
    poisoned = results.pop("a-6").result
    assert poisoned["ok"] is False and poisoned["error"] == "store_failed"
    assert poisoned["nonce"] == "a-6" and "could not be stored" in poisoned["message"]
    assert all(d.result["ok"] for d in results.values())
    assert sorted(m["nonce"] for m in published) == sorted(results)
    _assert_room_order(published)
    assert queue.depth() == 0
    # Bisection: at most 2n - 1 requests per failed batch, plus the one repeat of the single item.
    assert len(django.batches) <= 2 * 15


def test_the_rest_keeps_flowing_while_a_poison_item_is_isolated():
    """The messages that shared the poison's batch are stored within a few short backoffs (under
    half a second), and the first success proves Django works: the poison is refused then."""
    django = PoisonDjango()
    clock, queue, published = make_queue(django, batch_size=4)
    poison = queue.enqueue(_item("a", "a-0", POISON))
    later = [queue.enqueue(_item("b", f"b-{i}")) for i in range(3)]
    run_until(clock, lambda: all(d.called for d in later), deadline=0.5)
    assert all(d.result["ok"] for d in later)
    run_until(clock, lambda: poison.called, deadline=0.1)
    assert poison.result["error"] == "store_failed"


def test_a_lone_poison_item_is_refused_after_the_documented_attempts_when_django_is_up():
    """No other traffic to prove Django works: after ALONE_ATTEMPTS failures alone the health
    check decides; Django is up, so the item is refused and its room's next message stored."""
    django = PoisonDjango()
    clock, queue, published = make_queue(django)
    poison = queue.enqueue(_item("a", "a-0", POISON))
    after = queue.enqueue(_item("a", "a-1"))
    run_until(clock, lambda: poison.called and after.called)
    assert poison.result["error"] == "store_failed"
    assert after.result["ok"] is True
    alone = [batch for batch in django.batches if [i["nonce"] for i in batch] == ["a-0"]]
    assert len(alone) == ALONE_ATTEMPTS and django.health_calls == 1


@pytest.mark.parametrize("outage", ["down", "unreachable"])
def test_an_outage_refuses_nothing_and_loses_nothing(outage):
    """Every request failing (5xx for all with a failing health check, or no answer at all):
    nothing is refused for a minute; once Django is back every item is stored once, in order,
    and a poison item among them is refused then, not before."""
    django = PoisonDjango()
    setattr(django, outage, True)
    clock, queue, published = make_queue(django)
    results = {
        f"{room}-{i}": queue.enqueue(_item(room, f"{room}-{i}", POISON if i == 4 else "x"))
        for i in range(12)
        for room in ("a", "b")
        if not (room == "b" and i == 4)
    }
    clock.advance(60)
    assert not any(d.called for d in results.values())
    assert queue.depth() == len(results) and django.messages == []
    if outage == "unreachable":  # no answer is never a reason to split a batch
        assert {len(batch) for batch in django.batches} == {8}
    setattr(django, outage, False)
    run_until(clock, lambda: all(d.called for d in results.values()))
    assert results.pop("a-4").result["error"] == "store_failed"
    assert all(d.result["ok"] for d in results.values())
    assert sorted(m["nonce"] for m in django.messages) == sorted(results)
    _assert_room_order(published)


def test_a_resent_poison_item_is_tried_alone():
    """The sender resends a refused nonce: it goes in a request of its own, so the batch it
    arrives with is stored at once, and it is refused again."""
    django = PoisonDjango()
    clock, queue, published = make_queue(django)
    first = queue.enqueue(_item("a", "a-0", POISON))
    queue.enqueue(_item("b", "b-0"))
    run_until(clock, lambda: first.called)
    sent = len(django.batches)
    again = queue.enqueue(_item("a", "a-0", POISON))
    others = [queue.enqueue(_item("b", f"b-{i}")) for i in range(1, 4)]
    run_until(clock, lambda: again.called and all(d.called for d in others))
    assert again.result["error"] == "store_failed"
    assert all(d.result["ok"] for d in others)
    assert all(len(batch) == 1 for batch in django.batches[sent:] if batch[0]["nonce"] == "a-0")
    assert not any(
        "a-0" in [i["nonce"] for i in batch] and len(batch) > 1 for batch in django.batches[sent:]
    )


@pytest.mark.parametrize("flooding", [["a"], ["a", "c"]])
def test_a_flood_delays_another_rooms_message_by_at_most_one_batch(flooding):
    """One room (or two) queues 1,000 messages; b's one message goes in the very next batch
    composed, not behind the flood (batches are round-robin across rooms)."""
    django = FakeDjango()
    django.hold = True
    clock, queue, published = make_queue(
        django, batch_size=10, max_in_flight=1, queue_limit=5000, room_queue_limit=2000
    )
    for i in range(1000):
        for room in flooding:
            queue.enqueue(_item(room, f"{room}-{i}"))
    b = queue.enqueue(_item("b", "b-0"))
    clock.advance(0.005)
    assert len(django.batches) == 1  # the flood's first batch is on its way
    django.release(0)  # the next batch composed must carry b's message
    assert "b-0" in [i["nonce"] for i in django.batches[1]]
    django.release(0)
    assert b.called and b.result["ok"]


def test_round_robin_keeps_each_room_in_order_and_never_in_two_requests():
    """Interleaved batches: each room's messages are stored in arrival order, and no room is in
    two requests at once."""
    django = FakeDjango()
    django.hold = True
    clock, queue, published = make_queue(django, batch_size=5)
    for i in range(20):
        for room in ("a", "b", "c"):
            queue.enqueue(_item(room, f"{room}-{i}"))
    clock.advance(0.005)
    while django.held:
        rooms_in_flight = [{i["room"] for i in items} for items, _ in django.held]
        for one, other in zip(rooms_in_flight, rooms_in_flight[1:], strict=False):
            assert one.isdisjoint(other)
        django.release(0)
        clock.advance(0.005)
    assert len(published) == 60
    _assert_room_order(published)


def test_one_room_past_its_share_gets_busy_while_others_are_accepted():
    """`room_queue_limit` bounds one room's share: the flooding room is refused, another room
    still gets in, and the global limit still applies."""
    django = FakeDjango()
    django.hold = True
    clock, queue, _ = make_queue(django, queue_limit=10, room_queue_limit=4)
    for i in range(4):
        queue.enqueue(_item("a", f"a-{i}"))
    with pytest.raises(QueueFull):
        queue.enqueue(_item("a", "a-4"))
    for i in range(4):
        queue.enqueue(_item("b", f"b-{i}"))
    queue.enqueue(_item("c", "c-0"))
    queue.enqueue(_item("d", "d-0"))
    with pytest.raises(QueueFull):
        queue.enqueue(_item("e", "e-0"))
    assert queue.room_depth("a") == 4 and queue.depth() == 10


def test_both_transports_tell_the_poison_sender_and_deliver_the_rest():
    """Through the hub: the socket that sent the poison gets an error frame `store_failed` with
    its nonce, a long-poll POST of it answers 503 JSON `store_failed`, and another room's socket
    gets its own message."""
    reactor = MemoryReactorClock()
    reactor.advance(1_795_000_000)
    django = PoisonDjango()
    django.clock = reactor
    hub = build_hub(make_config(), reactor, django)
    factory = ChatServerFactory(hub, reactor, hub.config)
    sender = WsClient(factory, f"/ws/lobby?ticket={ticket(reactor)}", ORIGIN)
    other = WsClient(
        factory, f"/ws/side?ticket={ticket(reactor, room='side', uid='u:2', name='bo')}", ORIGIN
    )
    sender.json_frames(), other.json_frames()
    sender.send({"type": "message", "body": POISON, "nonce": "p-1"})
    other.send({"type": "message", "body": "fine", "nonce": "s-1"})
    seen: dict[str, list[dict]] = {"sender": [], "other": []}

    def got(who: str, client: WsClient, want: Callable[[dict], bool]) -> bool:
        seen[who] += client.json_frames()
        return any(want(frame) for frame in seen[who])

    run_until(reactor, lambda: got("sender", sender, lambda f: f.get("nonce") == "p-1"))
    run_until(reactor, lambda: got("other", other, lambda f: f.get("nonce") == "s-1"))
    refusal = next(f for f in seen["sender"] if f.get("nonce") == "p-1")
    assert refusal["type"] == "error" and refusal["code"] == "store_failed"
    assert "could not be stored" in refusal["message"]
    assert next(f for f in seen["other"] if f.get("nonce") == "s-1")["type"] == "message"

    poll = LongPollResource(hub, hub.config, hub.clock)
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    raw = b'{"body": "' + POISON.encode() + b'", "nonce": "p-2"}'
    request = render(
        poll, web_request("POST", f"/poll/lobby?ticket={ticket(reactor)}", "/poll/", raw, headers)
    )
    run_until(reactor, lambda: request.finished)
    assert request.responseCode == 503 and body_json(request)["error"] == "store_failed"
