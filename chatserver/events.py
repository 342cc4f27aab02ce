"""Room events as data: one table says how each kind travels (docs/architecture.md).

A room event is a frame, a JSON object with a `type` (docs/protocol.md, "WebSocket"): what a
socket receives, what a long poll answers in `events`, what Redis relays in one envelope. New
messages take the ordered path (`Fanout.publish`: id order, exactly once, gaps filled from
Django); every other kind takes the generic path (`Fanout.publish_event`), whose behaviour per
kind is read from `KINDS` below instead of from string checks in the transports and the fan-out.

Columns (each answers one question the code used to answer with `if kind == ...`):

- `hello_buffer`: an event that arrives while a new socket's (or poll's) history is read is
  kept and delivered after the history. False for state that the answer already carries
  (presence) or that is stale by then (typing).
- `wakes_polls`: it answers a held long poll at once (else it waits for the next answer).
- `remembered`: kept per room (the newest `REMEMBERED` of them) and repeated in every long-poll
  answer, so a poller that was away between two polls still applies it (idempotently).
- `after_message`: it refers to the message `id` and is never delivered before that message
  (across instances a remote event waits while the message is held for a gap).
- `versioned`: it carries an integer `version` for the message `id`; an event older than the
  newest one seen for that message is dropped (newest wins when events race across instances).
- `relayed`: sent to the other instances as is. Presence is not: each instance reports its own
  people (chatserver/redisfanout.py) and every instance computes the union.
- `retracts`: the message `id` leaves the recent buffer (history answered from memory must
  not show it again).
- `revises`: the message fields the event carries (e.g. `body`, `html`, `edited_at`, `version`
  of an edit; `html` is Django's rendering, opaque data here); the message `id` in the recent
  buffer takes them, so history answered from memory shows the message as it is now, not as
  it was sent.
- `requotes`: an event of the kind may carry `quote`, the `reply_to` that replies to the
  message `id` show now (Django builds it: the parent was edited or deleted); every buffered
  message whose `reply_to.id` is that id takes it, so history answered from memory quotes the
  parent as it is now. The chat server never builds or reads a quote beyond its `id`.
- `control`: Django may send it through `POST /internal/rooms/<slug>/events`.
"""

from __future__ import annotations

from dataclasses import dataclass

# How many remembered events a room keeps for long polls that come back later.
REMEMBERED = 50


@dataclass(frozen=True, slots=True)
class Kind:
    """How one kind of room event travels (see the module docstring for each column)."""

    name: str
    hello_buffer: bool = True
    wakes_polls: bool = True
    remembered: bool = False
    after_message: bool = False
    versioned: bool = False
    relayed: bool = True
    retracts: bool = False
    revises: tuple[str, ...] = ()
    requotes: bool = False
    control: bool = False
    ordered: bool = False  # the ordered message path (`Fanout.publish`), never `publish_event`


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("message", ordered=True),
        Kind(
            "deleted",
            remembered=True,
            after_message=True,
            retracts=True,
            requotes=True,
            control=True,
        ),
        Kind(
            "edited",
            remembered=True,
            after_message=True,
            versioned=True,
            revises=("body", "html", "edited_at", "version"),
            requotes=True,
            control=True,
        ),
        Kind(
            "reactions",
            remembered=True,
            after_message=True,
            versioned=True,
            revises=("reactions", "reactions_version"),
            control=True,
        ),
        Kind("presence", hello_buffer=False, wakes_polls=False, relayed=False),
        Kind("typing", hello_buffer=False),
    )
}


class UnknownKind(ValueError):
    """An event whose `type` is not in `KINDS` (or a message offered to the generic path)."""


def kind_of(event: dict) -> Kind:
    """The table row of a generic room event; raises `UnknownKind` for anything else."""
    kind = KINDS.get(event.get("type")) if isinstance(event, dict) else None
    if kind is None or kind.ordered:
        raise UnknownKind(f"not a generic room event: {event.get('type')!r}")
    return kind


def refers_to_message(kind: Kind) -> bool:
    """True when events of the kind carry the id of the message they are about."""
    return kind.after_message or kind.versioned or kind.retracts or bool(kind.revises)


def referred_id(event: dict) -> int | None:
    """The message id an event refers to (`id`), None when it refers to none."""
    value = event.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None
