"""RoomRegistry bookkeeping and the token bucket."""

from twisted.internet.task import Clock

from chatserver.ratelimit import TokenBucket
from chatserver.rooms import RoomRegistry


def _m(i, room="r"):
    return {"id": i, "room": room}


def test_presence_counts_each_uid_once_and_reports_changes():
    """Two holders of one uid: online once; changed only on first join and last leave."""
    reg = RoomRegistry()
    assert reg.add_presence("r", "u:1", "alice") is True
    assert reg.add_presence("r", "u:1", "alice") is False
    assert reg.add_presence("r", "u:2", "bob") is True
    assert reg.online("r") == ["alice", "bob"]
    assert reg.remove_presence("r", "u:1") is False
    assert reg.remove_presence("r", "u:1") is True
    assert reg.online("r") == ["bob"]
    assert reg.remove_presence("r", "nobody") is False


def test_members_join_leave_and_empty_rooms_are_dropped():
    """Members are per room; a room without members or presence is forgotten."""
    reg = RoomRegistry()
    a, b = object(), object()
    reg.add_member("r", a)
    reg.add_member("r", b)
    assert set(reg.members("r")) == {a, b}
    reg.remove_member("r", a)
    reg.remove_member("r", b)
    assert reg.rooms() == [] and list(reg.members("r")) == []


def test_recent_buffer_answers_since_only_when_provably_complete():
    """The buffer answers `since` after a seed; eviction moves the completeness bound."""
    reg = RoomRegistry(recent_size=3)
    reg.add_member("r", object())
    assert reg.history("r", None, 2) is None  # nothing known yet
    reg.seed("r", [_m(5), _m(9)], complete_after=4)
    assert reg.history("r", 4, 50) == [_m(5), _m(9)]
    assert reg.history("r", 3, 50) is None  # before what the buffer covers
    assert reg.history("r", None, 2) == [_m(5), _m(9)]
    assert reg.history("r", None, 3) is None  # fewer than asked and older ones may exist
    assert reg.remember("r", _m(12)) is True
    assert reg.remember("r", _m(12)) is False  # duplicate
    reg.remember("r", _m(13))  # evicts 5
    assert reg.history("r", 4, 50) is None
    assert reg.history("r", 5, 50) == [_m(9), _m(12), _m(13)]


def test_empty_room_seed_and_forget():
    """A room with no messages at all answers from the buffer; retracted (deleted) ids are
    dropped, and remembered events are kept for returning polls."""
    reg = RoomRegistry()
    reg.add_member("r", object())
    reg.seed("r", [], complete_after=0)
    reg.remember("r", _m(1))
    reg.remember("r", _m(2))
    assert reg.history("r", None, 50) == [_m(1), _m(2)]
    reg.retract("r", 1)
    reg.remember_event("r", {"type": "deleted", "id": 1})
    assert reg.history("r", 0, 50) == [_m(2)]
    assert reg.remembered("r") == [{"type": "deleted", "id": 1}]


def test_token_bucket_burst_refill_and_refusal_count():
    """Burst tokens at once, then `rate` per second; refusals are counted."""
    clock = Clock()
    bucket = TokenBucket(clock, rate=2, burst=3)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
    assert bucket.refusals() == 1
    clock.advance(0.5)
    assert bucket.allow() is True
    assert bucket.allow() is False
    clock.advance(100)
    assert [bucket.allow() for _ in range(4)] == [True, True, True, False]
