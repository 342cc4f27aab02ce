"""The personal feed over long polling: `GET /poll/@me?ticket=<user ticket>&cursor=<c>`.

The fallback of the `/ws/@me` socket (docs/protocol.md, "Personal feed"). A user that polls
here has one `_Mailbox` in this process: it follows the user through the hub (like a feed socket)
while polls keep coming, and keeps the newest `MAILBOX_SIZE` events, numbered. Each answer is
`{"events": [...], "cursor": "<epoch>.<n>"}`; the next poll sends the cursor back and gets the
events after it at once, or is held until one arrives or `poll_timeout` passes. Several devices
of one user share the mailbox, each reading from its own cursor.

A poll without a cursor, or with one this mailbox cannot continue (another instance's, one
from before the mailbox expired, or one older than what it still keeps), is answered at once
with a `hello` frame: the client then reads the state it shows from Django again, exactly as
after a socket's hello. So nothing is silently lost, only re-read.

A mailbox with no held poll expires `poll_grace` seconds after its last poll (one sweep a second,
`sweep`, as for room polls). The resource talks only to the hub's verbs.
"""

from __future__ import annotations

import secrets
from collections import deque
from typing import Any

import orjson
from twisted.web.server import NOT_DONE_YET

from chatserver.admission import parse_decimal
from chatserver.config import ChatServerConfig
from chatserver.tickets import Identity, TicketError
from chatserver.web import error_response

# Events a mailbox keeps for pollers that come back (older ones make the client re-read).
MAILBOX_SIZE = 100


class _Mailbox:
    """One user's feed in this process, for pollers; a member of the user registry."""

    __slots__ = ("owner", "identity", "epoch", "seq", "events", "held", "expires", "closed")

    def __init__(self, owner: FeedPoll, identity: Identity) -> None:
        self.owner = owner
        self.identity = identity
        self.epoch = secrets.token_hex(4)
        self.seq = 0
        self.events: deque[tuple[int, dict]] = deque(maxlen=MAILBOX_SIZE)
        self.held: list[tuple[Any, int]] = []  # (request, cursor seq)
        self.expires = 0.0
        self.closed = False

    def cursor(self) -> str:
        return f"{self.epoch}.{self.seq}"

    def after(self, seq: int) -> list[dict]:
        return [frame for n, frame in self.events if n > seq]

    def deliver(self, broadcast: Any) -> None:
        """A user event: numbered, kept, and answered to every held poll."""
        self.seq += 1
        self.events.append((self.seq, broadcast.frame))
        held, self.held = self.held, []
        for request, seq in held:
            self.owner.answer(self, request, self.after(seq))

    def access_revoked(self) -> bool:
        """The user signed out: held polls answer 403, the mailbox is dropped."""
        self.owner.drop(self, 403)
        return False


class FeedPoll:
    """`/poll/@me`: held feed polls and the mailboxes behind them (see the module docstring)."""

    def __init__(self, hub: Any, config: ChatServerConfig, clock: Any) -> None:
        self.hub = hub
        self._config = config
        self._clock = clock
        self._boxes: dict[int, _Mailbox] = {}
        self._deadlines: dict[int, float] = {}  # id(request) -> when a held poll times out

    def active(self) -> int:
        """Held feed polls right now."""
        return sum(len(box.held) for box in self._boxes.values())

    def render_GET(self, request: Any, address: str) -> Any:  # noqa: N802 (twisted API)
        """One feed poll; `address` is the client address the connection caps count."""
        ticket = (request.args.get(b"ticket") or [b""])[0].decode("utf-8", "replace")
        try:
            identity = self.hub.verify_user(ticket)
        except TicketError:
            self.hub.refuse("bad_ticket")
            return error_response(request, 403, "bad_ticket", "Fetch a new user ticket.")
        raw = (request.args.get(b"cursor") or [b""])[0]
        cursor = _parse_cursor(raw)
        if raw and cursor is None:
            return error_response(request, 400, "bad_cursor", "cursor is <epoch>.<number>.")
        box = self._boxes.get(identity.user_id)
        if box is None:
            box = self._boxes[identity.user_id] = _Mailbox(self, identity)
            self.hub.follow(identity, box)
        box.identity = identity  # the newest ticket's (revocations compare its issue time)
        box.expires = self._clock.seconds() + self._config.poll_grace
        if cursor is None or cursor[0] != box.epoch or not _continues(box, cursor[1]):
            hello = {"type": "hello", "feed": True, "user": identity.public()}
            return _answer_body(request, [hello], box.cursor())
        events = box.after(cursor[1])
        if events or self.hub.shutting_down:
            return _answer_body(request, events, box.cursor())
        if not self.hub.connect(identity.uid, address):
            self.hub.refuse("too_many_connections")
            return error_response(
                request, 429, "too_many_connections", "Too many open connections."
            )
        box.held.append((request, cursor[1]))
        self._deadlines[id(request)] = self._clock.seconds() + self._config.poll_timeout
        request.notifyFinish().addErrback(lambda _f: self._gone(box, request))
        request.feed_address = address
        return NOT_DONE_YET

    def answer(self, box: _Mailbox, request: Any, events: list[dict]) -> None:
        """Finish a held poll with `events` (it was already taken off `box.held`)."""
        self._deadlines.pop(id(request), None)
        self.hub.disconnect(box.identity.uid, request.feed_address)
        box.expires = self._clock.seconds() + self._config.poll_grace
        request.write(_answer_body(request, events, box.cursor()))
        request.finish()

    def _gone(self, box: _Mailbox, request: Any) -> None:
        for i, (held, _seq) in enumerate(box.held):
            if held is request:
                del box.held[i]
                self._deadlines.pop(id(request), None)
                self.hub.disconnect(box.identity.uid, request.feed_address)
                return

    def drop(self, box: _Mailbox, status: int | None = None) -> None:
        """Forget a mailbox: its held polls answer `status` (403 after a revocation) or an
        empty list, and it stops following the user."""
        if box.closed:
            return
        box.closed = True
        self._boxes.pop(box.identity.user_id, None)
        self.hub.unfollow(box.identity, box)
        held, box.held = box.held, []
        for request, _seq in held:
            if status is None:
                self.answer(box, request, [])
                continue
            self._deadlines.pop(id(request), None)
            self.hub.disconnect(box.identity.uid, request.feed_address)
            request.write(
                error_response(request, status, "access_revoked", "Fetch a new user ticket.")
            )
            request.finish()

    def sweep(self) -> None:
        """Time out held polls (empty answer) and expire mailboxes nobody polled lately."""
        now = self._clock.seconds()
        for box in list(self._boxes.values()):
            due = [(r, s) for r, s in box.held if self._deadlines.get(id(r), now + 1) <= now]
            for item in due:
                box.held.remove(item)
                self.answer(box, item[0], [])
            if not box.held and box.expires <= now:
                self.drop(box)

    def release_all(self) -> None:
        """Shutdown: answer every held feed poll with an empty list."""
        for box in list(self._boxes.values()):
            held, box.held = box.held, []
            for request, _seq in held:
                self.answer(box, request, [])


def _parse_cursor(raw: bytes) -> tuple[str, int] | None:
    """`<8 hex>.<number>` -> (epoch, seq); None when absent or malformed."""
    epoch, dot, number = raw.partition(b".")
    if not dot or len(epoch) != 8 or not all(c in b"0123456789abcdef" for c in epoch):
        return None
    try:
        return epoch.decode("ascii"), parse_decimal(number)
    except ValueError:
        return None


def _continues(box: _Mailbox, seq: int) -> bool:
    """True when `box` can answer everything after `seq` (nothing dropped, not from the future)."""
    if seq > box.seq:
        return False
    oldest = box.events[0][0] if box.events else box.seq + 1
    return seq >= oldest - 1


def _answer_body(request: Any, events: list[dict], cursor: str) -> bytes:
    request.setResponseCode(200)
    request.setHeader(b"Content-Type", b"application/json")
    request.setHeader(b"Cache-Control", b"no-store")
    return orjson.dumps({"events": events, "cursor": cursor})
