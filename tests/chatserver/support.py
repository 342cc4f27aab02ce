"""Test helpers for the chat server: a fake Django collaborator, tickets, WebSocket framing.

The fake implements the same interface as `chatserver.djangoclient.DjangoClient`; it replaces
the collaborator, never the unit under test.
"""

from __future__ import annotations

import base64
import html
import os
import struct
from typing import Any

import orjson
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import MemoryReactorClock, StringTransport

from chatserver.config import DJANGO_PAGE_MAX, ChatServerConfig
from chatserver.control import GUEST_UID_RE
from chatserver.djangoclient import DjangoError, UnknownRoom
from chatserver.frames import ATTACHMENT_ID_RE, NONCE_RE, FrameError, validate_message
from chatserver.hub import ChatHub
from chatserver.service import build_hub
from chatserver.tickets import MAX_NAME_LENGTH, mint_ticket

SECRET = "test-secret-of-32-bytes-or-more-0123"
ORIGIN = "http://127.0.0.1:8000"


def make_config(**overrides: Any) -> ChatServerConfig:
    """A config with the test secret and any overrides."""
    return ChatServerConfig(shared_secret=SECRET, **overrides)


def ticket(clock: Any, room: str = "lobby", uid: str = "u:1", name: str = "alice", **kw) -> str:
    """A valid ticket minted at the clock's time.

    `user_id` and `guest` follow from `uid` unless given: `u:<n>` is user n, `g:...` a guest.
    """
    user_id = int(uid[2:]) if uid.startswith("u:") and uid[2:].isdigit() else None
    return mint_ticket(
        SECRET,
        room=room,
        uid=uid,
        name=name,
        user_id=kw.pop("user_id", user_id),
        guest=kw.pop("guest", uid.startswith("g:")),
        now=int(clock.seconds()),
        **kw,
    )


# The texts of the per-item error codes (the chat server forwards them to the sender).
ITEM_ERROR_TEXT = {
    "unknown_room": "No such room.",
    "room_archived": "The room is archived.",
    "empty_body": "A message cannot be empty.",
    "body_too_long": "A message is too long.",
    "bad_body": "A message cannot contain NUL characters or unpaired surrogates.",
    "bad_nonce": "A nonce is 1 to 64 characters of letters, digits, '_' and '-'.",
    "bad_item": "The item is not a valid message.",
    "unknown_parent": "The message this replies to is not in this room.",
    "bad_attachments": "An attachment is unknown, not yours, or already sent.",
}
# Django's quote length (chat/models.py REPLY_SNIPPET_CHARS; the contract suite compares).
REPLY_SNIPPET_CHARS = 100


def _shape_error(item: object) -> str | None:
    """Django's rule for a batch item's fields (docs/protocol.md, internal batch): `bad_item`
    for a missing or mistyped field or an author id that does not fit, then `bad_nonce`."""
    if not isinstance(item, dict):
        return "bad_item"
    name, user_id, uid = item.get("name"), item.get("user_id"), item.get("uid")
    typed = (
        isinstance(item.get("room"), str)
        and isinstance(item.get("body"), str)
        and isinstance(name, str)
        and 1 <= len(name.strip()) <= MAX_NAME_LENGTH
        and isinstance(item.get("guest"), bool)
        and (user_id is None or (isinstance(user_id, int) and not isinstance(user_id, bool)))
        and isinstance(uid, str)
        and (
            item.get("reply_to") is None
            or (type(item["reply_to"]) is int and 1 <= item["reply_to"] <= 2**53 - 1)
        )
    )
    if not typed:
        return "bad_item"
    if item["guest"]:
        uid_ok = user_id is None and GUEST_UID_RE.fullmatch(uid) is not None
    else:
        uid_ok = user_id is not None and uid == f"u:{user_id}"
    if not uid_ok:
        return "bad_item"
    nonce = item.get("nonce")
    if not isinstance(nonce, str) or NONCE_RE.fullmatch(nonce) is None:
        return "bad_nonce"
    ids = item.get("attachments")
    if ids is not None and not (
        isinstance(ids, list)
        and 1 <= len(ids) <= 10
        and all(isinstance(i, str) and ATTACHMENT_ID_RE.fullmatch(i) for i in ids)
        and len(set(ids)) == len(ids)
    ):
        return "bad_attachments"
    return None


def _body_error(body: str, max_body: int, attachments: list | None = None) -> str | None:
    """Django's body rule (an empty body is fine with attachments); the chat server's frame check
    is the same rule (tests/contract/test_shared_rules.py), so the fake borrows it."""
    try:
        validate_message({"body": body, "nonce": "n", "attachments": attachments}, max_body)
    except FrameError as refused:
        return refused.code
    return None


def stand_in_html(body: str) -> str:
    """What the fake stores as a message's `html`: Django renders Markdown (chat/markdown.py),
    the chat server only passes the string through, so any distinct string does here; an empty
    body (a message of attachments only) renders to nothing, as Django's does."""
    return "<p>" + html.escape(body) + "</p>" if body else ""


class FakeDjango:
    """Stores messages in memory like Django's internal API; can be told to hold or fail.

    Every room exists unless it is in `gone_rooms` (a room Django does not know: reads answer
    404, items `unknown_room`); `archived_rooms` refuse new items `room_archived`. What it answers
    is checked against the real internal API (tests/contract/test_internal_api_contract.py).
    """

    def __init__(self, max_body: int = 4000) -> None:
        self.max_body = max_body
        self.messages: list[dict] = []
        self.batches: list[list[dict]] = []
        self.hold = False  # persist_batch answers only when `release()` is called
        self.failing = 0  # number of persist_batch calls to fail before succeeding
        self.held: list[tuple[list[dict], Deferred]] = []
        self.item_errors: dict[str, str] = {}  # nonce -> error code
        self.history_calls = 0
        self.next_id = 1
        self.deleted_ids: dict[str, list[int]] = {}
        self.deleted_nonces: dict[tuple[str, str], int] = {}  # (room, nonce) -> deleted id
        self.archived_rooms: set[str] = set()
        self.fail_history = False  # messages_after / latest_messages fail while True
        self.history_reads: list[tuple[str, int | None, int]] = []  # (room, after, limit)
        self.gone_rooms: set[str] = set()  # deleted rooms: reads answer 404, items unknown_room
        self.rooms_of_deleted: dict[int, str] = {}  # deleted id -> its room (replies may name it)
        # Uploads a message may name: id -> {"room", "uid", "shape", "sent"} (see `upload`).
        self.uploads: dict[str, dict] = {}

    def upload(self, room: str, uid: str, name: str = "a.png") -> dict:
        """An unsent upload by `uid` to `room`, as Django's upload endpoint stores it; its shape."""
        token = f"{len(self.uploads):022d}"
        shape = {
            "id": token,
            "name": name,
            "size": 3,
            "content_type": "image/png",
            "kind": "image",
            "url": f"/files/{token}/{name}",
            "width": 2,
            "height": 1,
            "thumbnail": {"url": f"/files/{token}/thumb.webp", "width": 2, "height": 1},
        }
        self.uploads[token] = {"room": room, "uid": uid, "shape": shape, "sent": False}
        return shape

    def _attachments_error(self, item: dict) -> str | None:
        """Django's rule: every id is an unsent upload of the item's author to its room."""
        for token in item.get("attachments") or []:
            upload = self.uploads.get(token)
            if (
                upload is None
                or upload["sent"]
                or upload["room"] != item["room"]
                or upload["uid"] != item["uid"]
            ):
                return "bad_attachments"
        return None

    def delete(self, message_id: int) -> None:
        """Soft-delete a message: never listed again, still the predecessor of the next one."""
        for message in list(self.messages):
            if message["id"] == message_id:
                self.messages.remove(message)
                self.deleted_ids.setdefault(message["room"], []).append(message_id)
                self.deleted_nonces[(message["room"], message["nonce"])] = message_id
                self.rooms_of_deleted[message_id] = message["room"]

    def edit(self, message_id: int, body: str) -> dict:
        """Edit a stored message as Django does (new body, one more version); the event."""
        for message in self.messages:
            if message["id"] == message_id:
                message["body"] = body
                message["html"] = stand_in_html(body)
                message["version"] += 1
                message["edited_at"] = "2026-11-22T09:15:00.000Z"
                return {
                    "type": "edited",
                    "id": message_id,
                    "version": message["version"],
                    "body": body,
                    "html": message["html"],
                    "edited_at": message["edited_at"],
                }
        raise KeyError(message_id)

    def _refusal(self, item: object, code: str) -> dict:
        fields = item if isinstance(item, dict) else {}
        return {
            "ok": False,
            "nonce": fields.get("nonce"),
            "room": fields.get("room"),
            "error": code,
            "message": ITEM_ERROR_TEXT.get(code, "refused"),
        }

    def _repeat(self, item: dict) -> dict | None:
        """The answer to a nonce the room already holds (a resend), or None for a new one."""
        existing = [
            m for m in self.messages if m["room"] == item["room"] and m["nonce"] == item["nonce"]
        ]
        if existing:
            return {
                "ok": True,
                "created": False,
                "id": existing[0]["id"],
                "deleted": False,
                "message": existing[0],
            }
        gone = self.deleted_nonces.get((item["room"], item["nonce"]))
        if gone is not None:  # a repeat of a deleted message: its id, never its text
            return {
                "ok": True,
                "created": False,
                "id": gone,
                "deleted": True,
                "nonce": item["nonce"],
                "room": item["room"],
            }
        return None

    def _store(self, items: list[dict]) -> list[dict]:
        """Judge each item on its own, in Django's order: shape, room, repeat, archived, body."""
        results = []
        for item in items:
            code = _shape_error(item)
            if code is None and item["room"] in self.gone_rooms:
                code = "unknown_room"
            if code is None:
                code = self.item_errors.get(item["nonce"])
            if code is None:
                repeat = self._repeat(item)
                if repeat is not None:
                    results.append(repeat)
                    continue
                if item["room"] in self.archived_rooms:
                    code = "room_archived"
                else:
                    code = (
                        _body_error(item["body"], self.max_body, item.get("attachments"))
                        or self._parent_error(item)
                        or self._attachments_error(item)
                    )
            if code:
                results.append(self._refusal(item, code))
                continue
            room_ids = [m["id"] for m in self.messages if m["room"] == item["room"]]
            room_ids += self.deleted_ids.get(item["room"], [])
            message = {
                "id": self.next_id,
                "room": item["room"],
                "user": {"id": item["uid"], "name": item["name"].strip(), "guest": item["guest"]},
                "body": item["body"].strip(),
                "html": stand_in_html(item["body"].strip()),
                "sent_at": "2026-11-22T09:14:03.512Z",
                "nonce": item["nonce"],
                "edited_at": None,
                "version": 0,
                "reactions": [],
                "reactions_version": 0,
                "reply_to": self.quote(item.get("reply_to")),
                "attachments": [],
            }
            for token in item.get("attachments") or []:  # the item's order
                self.uploads[token]["sent"] = True
                message["attachments"].append(self.uploads[token]["shape"])
            self.next_id += 1
            self.messages.append(message)
            results.append(
                {
                    "ok": True,
                    "created": True,
                    "prev_id": max(room_ids, default=0),
                    "message": message,
                }
            )
        return results

    def _parent_error(self, item: dict) -> str | None:
        """Django's reply rule: the parent is a message of the item's room (deleted or not)."""
        parent_id = item.get("reply_to")
        if parent_id is None:
            return None
        rooms = {m["id"]: m["room"] for m in self.messages}
        rooms.update(self.rooms_of_deleted)
        return None if rooms.get(parent_id) == item["room"] else "unknown_parent"

    def quote(self, parent_id: int | None) -> dict | None:
        """`reply_to` as Django builds it (chat/models.py `quote_of`)."""
        if parent_id is None:
            return None
        parent = next((m for m in self.messages if m["id"] == parent_id), None)
        if parent is None:
            return {"id": parent_id, "author": None, "snippet": "", "deleted": True}
        body = parent["body"]
        cut = body if len(body) <= REPLY_SNIPPET_CHARS else body[:REPLY_SNIPPET_CHARS] + "…"
        return {"id": parent_id, "author": parent["user"], "snippet": cut, "deleted": False}

    def persist_batch(self, items: list[dict]) -> Deferred:
        self.batches.append(list(items))
        if self.failing:
            self.failing -= 1
            return fail(DjangoError("down"))
        if self.hold:
            d: Deferred = Deferred()
            self.held.append((list(items), d))
            return d
        return succeed(self._store(items))

    def release(self, index: int = 0) -> None:
        """Answer the held batch at `index` (storing it now)."""
        items, d = self.held.pop(index)
        d.callback(self._store(items))

    def add(self, room: str, body: str = "old") -> dict:
        """Store a message directly (history that existed before the test)."""
        return self._store(
            [
                {
                    "room": room,
                    "nonce": f"seed-{self.next_id}",
                    "body": body,
                    "name": "seed",
                    "uid": "u:1",
                    "guest": False,
                    "user_id": 1,
                }
            ]
        )[0]["message"]

    def fill(self, room: str, count: int, body: str = "old") -> list[dict]:
        """Store `count` messages at once (a big room's history, without per-item checks)."""
        added = []
        for _ in range(count):
            added.append(
                {
                    "id": self.next_id,
                    "room": room,
                    "user": {"name": "seed", "guest": False},
                    "body": body,
                    "sent_at": "2026-11-22T09:14:03.512Z",
                    "nonce": f"seed-{self.next_id}",
                }
            )
            self.next_id += 1
        self.messages.extend(added)
        return added

    def latest_messages(self, room: str, limit: int) -> Deferred:
        self.history_calls += 1
        self.history_reads.append((room, None, limit))
        if room in self.gone_rooms:
            return fail(UnknownRoom("unknown room", status=404))
        if self.fail_history:
            return fail(DjangoError("down"))
        limit = min(limit, DJANGO_PAGE_MAX)  # Django caps a read, it does not refuse it
        found = [m for m in self.messages if m["room"] == room]
        return succeed((found[-limit:], len(found) > limit))

    def messages_after(self, room: str, after: int, limit: int = DJANGO_PAGE_MAX) -> Deferred:
        self.history_calls += 1
        self.history_reads.append((room, after, limit))
        if room in self.gone_rooms:
            return fail(UnknownRoom("unknown room", status=404))
        if self.fail_history:
            return fail(DjangoError("down"))
        limit = min(limit, DJANGO_PAGE_MAX)
        found = [m for m in self.messages if m["room"] == room and m["id"] > after]
        return succeed((found[:limit], len(found) > limit))

    def room_detail(self, room: str) -> Deferred:
        if room in self.gone_rooms:
            return fail(UnknownRoom("unknown room", status=404))
        ids = [m["id"] for m in self.messages if m["room"] == room]
        return succeed(
            {
                "slug": room,
                "name": room,
                "allow_guests": True,
                "is_archived": room in self.archived_rooms,
                "last_id": max(ids + self.deleted_ids.get(room, []), default=None),
            }
        )

    def health(self) -> Deferred:
        return succeed(True)


def make_hub(**overrides: Any) -> tuple[ChatHub, MemoryReactorClock, FakeDjango]:
    """A hub over a MemoryReactorClock (at a realistic time) and a FakeDjango."""
    reactor = MemoryReactorClock()
    reactor.advance(1_795_000_000)
    django = FakeDjango()
    return build_hub(make_config(**overrides), reactor, django), reactor, django


# WebSocket framing -------------------------------------------------------------------------


def handshake(path: str, origin: str | None = None) -> bytes:
    """A client opening handshake request."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1:9000",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin:
        lines.append(f"Origin: {origin}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(payload: bytes, opcode: int = 1, length: int | None = None) -> bytes:
    """A masked client frame (`length` may lie, to announce an oversize frame)."""
    mask = os.urandom(4)
    n = len(payload) if length is None else length
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def parse_frames(data: bytes) -> list[tuple[int, bytes]]:
    """Split unmasked server frames into (opcode, payload)."""
    frames = []
    while data:
        opcode = data[0] & 0x0F
        n = data[1] & 0x7F
        pos = 2
        if n == 126:
            n = struct.unpack("!H", data[2:4])[0]
            pos = 4
        elif n == 127:
            n = struct.unpack("!Q", data[2:10])[0]
            pos = 10
        frames.append((opcode, data[pos : pos + n]))
        data = data[pos + n :]
    return frames


class WsClient:
    """Drives a real `ChatServerProtocol` over a StringTransport."""

    def __init__(
        self, factory: Any, path: str, origin: str | None = None, peer: str | None = None
    ) -> None:
        from twisted.internet.address import IPv4Address

        if peer is None:
            self.transport = StringTransport()
        else:
            self.transport = StringTransport(peerAddress=IPv4Address("TCP", peer, 40000))
        self.protocol = factory.buildProtocol(None)
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(handshake(path, origin))
        raw = self.transport.value()
        head, sep, rest = raw.partition(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1]) if head else 0
        self._seen = len(head) + len(sep)

    def frames(self) -> list[tuple[int, bytes]]:
        """Every frame written since the last call."""
        raw = self.transport.value()
        new, self._seen = raw[self._seen :], len(raw)
        return parse_frames(new)

    def json_frames(self) -> list[dict]:
        """Text frames since the last call, decoded."""
        return [orjson.loads(p) for op, p in self.frames() if op == 1]

    def send(self, obj: object) -> None:
        """Send a JSON text frame."""
        self.protocol.dataReceived(client_frame(orjson.dumps(obj)))

    def close_frame(self) -> tuple[int, str] | None:
        """(code, reason) of the close frame written since the last call, if any."""
        for op, payload in self.frames():
            if op == 8:
                return struct.unpack("!H", payload[:2])[0], payload[2:].decode()
        return None


# twisted.web requests ----------------------------------------------------------------------


def web_request(
    method: str,
    uri: str,
    mount: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Any:
    """A DummyRequest for `uri`, with postpath relative to the resource mounted at `mount`."""
    from io import BytesIO
    from urllib.parse import parse_qs, urlsplit

    from twisted.web.test.requesthelper import DummyRequest

    parts = urlsplit(uri)
    postpath = [p.encode() for p in parts.path[len(mount) :].split("/")]
    request = DummyRequest(postpath)
    request.method = method.encode()
    request.uri = uri.encode()
    request.path = parts.path.encode()
    request.content = BytesIO(body)
    request.args = {k.encode(): [v.encode() for v in vs] for k, vs in parse_qs(parts.query).items()}
    for name, value in (headers or {}).items():
        request.requestHeaders.addRawHeader(name.encode(), value.encode())
    return request


def render(resource: Any, request: Any) -> Any:
    """Render like a Site would: synchronous bodies are written and finished."""
    from twisted.web.server import NOT_DONE_YET

    result = resource.render(request)
    if result is not NOT_DONE_YET:
        request.write(result)
        request.finish()
    return request


def body_json(request: Any) -> Any:
    """The decoded JSON of everything written to a finished request."""
    return orjson.loads(b"".join(request.written))


# Redis ---------------------------------------------------------------------------------------


class FakeRedis:
    """One in-memory pub/sub channel shared by several `FakeBus`es (one per chat server).

    Publishing queues; `flush()` delivers in publish order to every subscriber (the publisher
    too, as Redis does), so a test decides when the network "arrives". `down()` / `up()` stop
    and restore it; what was queued when it went down is lost, as with a Redis restart.
    """

    def __init__(self) -> None:
        self.buses: list[FakeBus] = []
        self.queue: list[bytes] = []
        self.published: list[bytes] = []
        self.running = True

    def bus(self) -> FakeBus:
        bus = FakeBus(self)
        self.buses.append(bus)
        return bus

    def flush(self) -> int:
        """Deliver everything published so far (and whatever that publishes); returns count."""
        count = 0
        while self.queue and self.running:
            payload = self.queue.pop(0)
            for bus in self.buses:
                if bus.up:
                    bus.on_message(payload)
            count += 1
        return count

    def drop(self) -> int:
        """Lose what is queued (a publish that never arrived); returns count."""
        count, self.queue = len(self.queue), []
        return count

    def down(self) -> None:
        self.running = False
        self.queue = []
        for bus in self.buses:
            bus.set_up(False)

    def up(self) -> None:
        self.running = True
        for bus in self.buses:
            bus.set_up(True)


class FakeBus:
    """The collaborator interface of `chatserver.redisbus.RedisBus`, over a `FakeRedis`."""

    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.up = redis.running
        self.on_message = lambda payload: None
        self.on_state = lambda up: None

    def publish(self, payload: bytes) -> None:
        if self.up:
            self.redis.queue.append(payload)
            self.redis.published.append(payload)

    def set_up(self, up: bool) -> None:
        if up != self.up:
            self.up = up
            self.on_state(up)


def make_cluster(
    count: int = 2, **overrides: Any
) -> tuple[list[ChatHub], MemoryReactorClock, FakeDjango, FakeRedis]:
    """`count` hubs (chat server instances) sharing one clock, one FakeDjango, one FakeRedis."""
    reactor = MemoryReactorClock()
    reactor.advance(1_795_000_000)
    django = FakeDjango()
    redis = FakeRedis()
    hubs = [
        build_hub(
            make_config(redis_url="redis://fake", **overrides), reactor, django, bus=redis.bus()
        )
        for _ in range(count)
    ]
    return hubs, reactor, django, redis
