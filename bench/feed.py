"""`python -m bench.feed`: the personal feed under load, beside room sockets in the same run.

Issue 12's shape: 1,000 users each with the room list open (one feed socket each on
`/ws/@me`), 10 messages/s across 10 rooms. Each user follows one room (a read state), so every
message becomes 100 `room_message` feed events: 1,000 feed deliveries/s. The same run first measures
room sockets under the same offered load (1,000 sockets, 100 per room, 10 messages/s across the
10 rooms: 1,000 message deliveries/s), each phase on a freshly started chat server so memory is
not reused from the phase before (and before anyone follows a room, so Django sends no feed
events during the room phase).

Figures: chat server CPU per delivered event (feed event vs message frame) and resident memory
per connection (feed socket vs room socket), and their ratios; Django's CPU per stored message in
each phase (the feed adds the recipients computation and one signed call per batch). Real
processes (tests/support/live.py: gunicorn Django on SQLite, `twistd -n -y chatserver.tac`),
real sockets (`websockets`, one asyncio loop). Prints one JSON document and writes it to
`bench/results/feed.json`.

    python -m bench.feed                      # 1,000 users, 10 rooms, 10 messages/s, 20 s
    python -m bench.feed --users 100 --duration 5        # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.procstats import cpu_seconds, descendants, total_cpu_seconds
from bench.targets import BENCH_CHAT_ENV, ROOT

log = logging.getLogger("bench.feed")
RESULTS = ROOT / "bench" / "results"
CONNECT_CONCURRENCY = 24
SETTLE_S = 1.0  # after the sockets open, before memory is read (allocations settle)


def setup_django(live: Any, users: int, rooms: int) -> list[int]:
    """Rooms `feed-0..` and users `feeduser0..` (following nothing yet); returns user ids."""
    out = live.shell(
        "import json\n"
        "from django.contrib.auth import get_user_model\n"
        "from chat.models import ReadState, Room\n"
        "User = get_user_model()\n"
        "rooms = [Room.objects.get_or_create(slug=f'feed-{i}', "
        "defaults={'name': f'Feed {i}', 'allow_guests': True})[0] "
        f"for i in range({rooms})]\n"
        f"User.objects.bulk_create([User(username=f'feeduser{{i}}', password='!') "
        f"for i in range({users})], ignore_conflicts=True)\n"
        "ids = list(User.objects.filter(username__startswith='feeduser')"
        ".order_by('pk').values_list('pk', flat=True))\n"
        "print(json.dumps(ids))\n"
    )
    return json.loads(out.strip().splitlines()[-1])[:users]


def follow(live: Any, ids: list[int], rooms: int) -> None:
    """User `ids[i]` follows room `feed-<i % rooms>` (a read state): Django addresses it."""
    live.shell(
        "from chat.models import ReadState, Room\n"
        f"rooms = [Room.objects.get(slug=f'feed-{{i}}') for i in range({rooms})]\n"
        "ReadState.objects.bulk_create([ReadState(user_id=u, room=rooms[i % len(rooms)]) "
        f"for i, u in enumerate({ids!r})], ignore_conflicts=True)\n"
    )


def user_ticket(secret: str, user_id: int) -> str:
    """A user ticket (docs/protocol.md, "Personal feed"), minted with the shared secret."""
    from tests.support.live import mint_ticket

    return mint_ticket(
        secret,
        "",
        name=f"feeduser{user_id}",
        ttl=600,
        aud="feed",
        sub=f"u:{user_id}",
        user_id=user_id,
        guest=False,
    )


def guest_ticket(secret: str, room: str) -> str:
    from tests.support.live import mint_ticket

    return mint_ticket(secret, room, ttl=600)


class Receivers:
    """Open sockets that count the frames of one type they receive."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.count = 0
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task] = []

    async def open(self, urls: list[str], origin: str) -> None:
        from websockets.asyncio.client import connect

        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(url: str) -> None:
            async with gate:
                ws = await connect(url, origin=origin, max_queue=None, open_timeout=30)
                hello = json.loads(await ws.recv())
                assert hello["type"] == "hello", hello
                self.sockets.append(ws)
                self.tasks.append(asyncio.create_task(self._read(ws)))

        await asyncio.gather(*(one(url) for url in urls))

    async def _read(self, ws: Any) -> None:
        needle = f'"type":"{self.kind}"'.encode()
        try:
            async for frame in ws:
                data = frame.encode() if isinstance(frame, str) else frame
                if needle in data:
                    self.count += 1
        except Exception:  # closed at the end of the phase
            return

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


async def send_load(senders: list[Any], rate: float, duration: float) -> int:
    """`rate` messages/s spread over the senders (round robin) for `duration` s; returns sent."""
    interval = 1.0 / rate
    start = time.monotonic()
    sent = 0
    while time.monotonic() - start < duration:
        ws = senders[sent % len(senders)]
        nonce = secrets.token_hex(8)
        await ws.send(json.dumps({"type": "message", "body": f"load {sent}", "nonce": nonce}))
        sent += 1
        delay = start + sent * interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    return sent


async def phase(live: Any, kind: str, urls: list[str], rooms: list[str], args: Any) -> dict:
    """One measured phase on a fresh chat server: open `urls`, then the message load."""
    from tests.support.live import rss_bytes

    live.restart_chatserver()
    chat_pid = live.chatserver.pid
    django_pids = descendants(live.django.pid)
    base = "ws://" + live.chat_url.split("://", 1)[1]
    await asyncio.sleep(SETTLE_S)
    rss_before = rss_bytes(chat_pid)
    receivers = Receivers("room_message" if kind == "feed" else "message")
    await receivers.open(urls, live.origin)
    await asyncio.sleep(SETTLE_S)
    rss_after = rss_bytes(chat_pid)
    senders = Receivers("none")
    await senders.open(
        [f"{base}/ws/{room}?ticket={guest_ticket(live.secret, room)}" for room in rooms],
        live.origin,
    )
    # Senders also receive their rooms' messages: count only the receivers.
    expected_per_message = len(urls) // len(rooms)
    chat_cpu, django_cpu = cpu_seconds(chat_pid), total_cpu_seconds(django_pids)
    started = time.monotonic()
    sent = await send_load(senders.sockets, args.rate, args.duration)
    expected = sent * expected_per_message
    deadline = time.monotonic() + 30
    while receivers.count < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    chat_cpu = cpu_seconds(chat_pid) - chat_cpu
    django_cpu = total_cpu_seconds(django_pids) - django_cpu
    delivered = receivers.count
    await senders.close()
    await receivers.close()
    return {
        "connections": len(urls),
        "messages": sent,
        "delivered": delivered,
        "expected": expected,
        "seconds": round(elapsed, 2),
        "chat_cpu_s": round(chat_cpu, 3),
        "django_cpu_s": round(django_cpu, 3),
        "chat_cpu_us_per_delivery": round(chat_cpu / max(delivered, 1) * 1e6, 2),
        "django_cpu_ms_per_message": round(django_cpu / max(sent, 1) * 1e3, 2),
        "rss_bytes_per_connection": round((rss_after - rss_before) / len(urls)),
    }


async def measure(live: Any, args: Any) -> dict:
    rooms = [f"feed-{i}" for i in range(args.rooms)]
    ids = setup_django(live, args.users, args.rooms)
    base = "ws://" + live.chat_url.split("://", 1)[1]
    # One guest per room, as bench/targets.py's LiveTarget: presence stays out of the figures.
    tickets = {room: guest_ticket(live.secret, room) for room in rooms}
    room_urls = [
        f"{base}/ws/{room}?ticket={tickets[room]}"
        for room in (rooms[i % len(rooms)] for i in range(args.users))
    ]
    feed_urls = [f"{base}/ws/@me?ticket={user_ticket(live.secret, uid)}" for uid in ids]
    # Room sockets first, while nobody follows a room: Django sends no feed events then.
    room = await phase(live, "room", room_urls, rooms, args)
    log.info("room sockets: %s", room)
    follow(live, ids, args.rooms)
    feed = await phase(live, "feed", feed_urls, rooms, args)
    log.info("feed sockets: %s", feed)
    return {
        "users": args.users,
        "rooms": args.rooms,
        "rate": args.rate,
        "duration_s": args.duration,
        "room_sockets": room,
        "feed_sockets": feed,
        "ratios": {
            "chat_cpu_per_delivery_feed_to_room": round(
                feed["chat_cpu_us_per_delivery"] / max(room["chat_cpu_us_per_delivery"], 1e-9), 2
            ),
            "memory_per_connection_feed_to_room": round(
                feed["rss_bytes_per_connection"] / max(room["rss_bytes_per_connection"], 1), 2
            ),
            "django_cpu_per_message_feed_to_room": round(
                feed["django_cpu_ms_per_message"] / max(room["django_cpu_ms_per_message"], 1e-9),
                2,
            ),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.feed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10.0, help="messages/s over all rooms")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per phase")
    parser.add_argument("--out", type=Path, default=RESULTS / "feed.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from tests.support.live import LiveSystem

    with tempfile.TemporaryDirectory(prefix="bench-feed-") as workdir:
        live = LiveSystem(Path(workdir), {**BENCH_CHAT_ENV, "DJANGO_RATELIMIT_ENABLE": "0"})
        try:
            live.start()
            result = asyncio.run(measure(live, args))
        finally:
            live.stop()
    text = json.dumps(result, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
