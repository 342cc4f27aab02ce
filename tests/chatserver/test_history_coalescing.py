"""History reads for the same (room, since) are shared: a reconnect storm makes few Django reads."""

from twisted.internet.defer import Deferred

from chatserver.tickets import Identity
from tests.chatserver.support import make_hub


class HeldHistory:
    """Wraps the fake Django so history reads wait until the test releases them."""

    def __init__(self, django) -> None:
        self.django = django
        self.held: list[tuple[Deferred, object, tuple]] = []
        django.messages_after = self._hold(django.messages_after)

    def _hold(self, read):
        def held(*args):
            d: Deferred = Deferred()
            self.held.append((d, read, args))
            return d

        return held

    def release_all(self) -> None:
        held, self.held = self.held, []
        for d, read, args in held:
            read(*args).chainDeferred(d)


class Listener:
    """A room member that records what the fan-out delivers to it."""

    def __init__(self) -> None:
        self.delivered: list = []

    def deliver(self, broadcast) -> None:
        self.delivered.append(broadcast)


def member(hub, room: str, n: int) -> Listener:
    listener = Listener()
    hub.join(room, listener, Identity(uid=f"g:{n}", user_id=None, name=f"guest-{n}", guest=True))
    return listener


def test_callers_during_a_read_share_it_and_are_answered_from_the_seeded_buffer():
    """Ten reconnecting clients with the same `since`: one Django read, everyone answered."""
    hub, _, django = make_hub()
    for i in range(1, 6):
        django.messages.append({"id": i, "room": "lobby", "body": f"m{i}", "nonce": f"n{i}"})
    held = HeldHistory(django)
    answers: list[list[int]] = []
    for n in range(10):
        member(hub, "lobby", n)
        hub.history("lobby", 2).addCallback(
            lambda page: answers.append([m["id"] for m in page.messages])
        )
    assert len(held.held) == 1 and answers == []
    held.release_all()
    assert answers == [[3, 4, 5]] * 10
    assert django.history_calls == 1


def test_a_message_stored_during_the_read_reaches_the_late_callers():
    """A message broadcast while the shared read runs is in the answer of callers that joined
    during it (from the buffer the read seeded and the broadcast extended), never lost."""
    hub, _, django = make_hub()
    django.messages.append({"id": 1, "room": "lobby", "body": "m1", "nonce": "n1"})
    held = HeldHistory(django)
    first, late = [], []
    member(hub, "lobby", 0)
    hub.history("lobby", 0).addCallback(first.append)
    member(hub, "lobby", 1)
    hub.history("lobby", 0).addCallback(late.append)
    stored = {"id": 2, "room": "lobby", "body": "m2", "nonce": "n2"}
    django.messages.append(stored)
    hub.fanout.publish("lobby", stored)
    held.release_all()  # the shared read answers with what Django has now: ids 1 and 2
    assert [m["id"] for m in first[0].messages] == [1, 2]
    assert [m["id"] for m in late[0].messages] == [1, 2]
    assert django.history_calls == 1


def test_a_failed_read_is_retried_once_for_the_callers_that_waited():
    """The first caller sees the failure (its socket closes with 1011); the waiting callers ask
    again, sharing one new read."""
    hub, _, django = make_hub()
    django.messages.append({"id": 1, "room": "lobby", "body": "m1", "nonce": "n1"})
    failures, answers = [], []
    django.fail_history = True
    real = django.messages_after
    calls: list[Deferred] = []

    def first_fails_later(*args):
        d: Deferred = Deferred()
        calls.append(d)
        return d

    django.messages_after = first_fails_later
    member(hub, "lobby", 0)
    hub.history("lobby", 0).addErrback(failures.append)
    for n in range(1, 4):
        member(hub, "lobby", n)
        hub.history("lobby", 0).addCallback(answers.append)
    django.messages_after = real
    django.fail_history = False
    real_calls_before = django.history_calls
    calls[0].errback(RuntimeError("Django down"))
    assert len(failures) == 1 and len(answers) == 3
    assert django.history_calls - real_calls_before == 1
