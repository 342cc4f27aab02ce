"""`bench.targets.ClusterTarget` routing: clients of a room split over instances, or by room."""

from __future__ import annotations

from bench.targets import ClusterTarget


class _Primary:
    def ws_url(self, slug: str) -> str:
        return f"ws://primary/ws/{slug}"


class _Instance:
    def __init__(self, name: str) -> None:
        self.name = name

    def ws_url(self, url: str) -> str:
        return url.replace("primary", self.name)


def _cluster() -> ClusterTarget:
    cluster = ClusterTarget(_Primary(), {})  # type: ignore[arg-type]
    cluster.instances.append(_Instance("second"))
    return cluster


def test_default_splits_each_room_over_the_instances():
    cluster = _cluster()
    hosts = [cluster.ws_url("r1", i).split("/")[2] for i in range(4)]
    assert hosts == ["primary", "second", "primary", "second"]


def test_by_room_keeps_a_room_on_one_instance_and_deals_rooms_in_turn():
    cluster = _cluster()
    cluster.by_room = True
    for slug in ("r1", "r2", "r3", "r4"):
        assert len({cluster.ws_url(slug, i) for i in range(5)}) == 1
    hosts = [cluster.ws_url(slug, 0).split("/")[2] for slug in ("r1", "r2", "r3", "r4")]
    assert hosts == ["primary", "second", "primary", "second"]
