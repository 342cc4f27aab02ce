"""The long-poll answers as frames (docs/protocol.md, "Long polling").

A GET answer carries in `events` the frames a socket would have received, presence last, and
`cursor`, the `since` of the next poll; a POST answer carries the frame a socket's sender gets
(the stored `message`, or an `ack` for a repeated nonce). The fields of the previous release
(`messages`, `online`, `people`, `deleted`; `message`, `repeat`, `id`) are kept beside them for
pages loaded before an upgrade: new kinds of events appear in `events` only.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from chatserver.events import KINDS
from chatserver.web import json_response

RESULT_STATUS = {
    "room_archived": 410,
    "unknown_room": 404,
    "busy": 503,
    "store_failed": 503,
    "rate_limited": 429,
}


def poll_answer(
    frames: list[dict],
    remembered: list[dict],
    presence: dict,
    has_more: bool = False,
    since: int | None = None,
    event_cursor: str | None = None,
) -> bytes:
    """`frames` (in order), the remembered events not among them, and the presence frame last;
    `cursor` is the newest message id in the answer, else `since`, else 0; `event_cursor`
    names the remembered events the answer carries (the next poll hands it back)."""
    ids = {id(frame) for frame in frames}
    events = frames + [e for e in remembered if id(e) not in ids]
    messages = [
        {k: v for k, v in f.items() if k != "type"} for f in frames if KINDS[f["type"]].ordered
    ]
    return orjson.dumps(
        {
            "events": [*events, presence],
            "cursor": messages[-1]["id"] if messages else (since or 0),
            "has_more": has_more,
            "event_cursor": event_cursor,
            # The previous release's answer, for pages loaded before an upgrade.
            "messages": messages,
            "online": presence["online"],
            "people": presence["people"],
            "deleted": [e["id"] for e in events if e["type"] == "deleted"],
        }
    )


def post_answer(request: Any, result: dict) -> bytes:
    """The hub's answer to a sent message as the POST's answer: `events` holds the frame
    a socket's sender gets (the stored `message`, or an `ack` for a repeated nonce); the
    previous release's fields (`message`, `repeat`, `deleted`, `id`) follow."""
    if result.get("repeat"):
        # A nonce Django had stored: answered to this sender only, never published.
        ack = {"type": "ack", "nonce": result["nonce"], "id": result["id"]}
        ack["deleted"] = result["deleted"]
        if result["deleted"]:
            legacy = {"deleted": True, "id": result["id"], "repeat": True}
        else:
            ack["message"] = result["message"]
            legacy = {"message": result["message"], "repeat": True}
        return json_response(request, 200, {"events": [ack], **legacy})
    if result.get("ok"):
        message = result["message"]
        frame = {"type": "message", **message}
        return json_response(request, 200, {"events": [frame], "message": message})
    code = str(result.get("error") or "store_failed")
    payload = {"error": code, "message": str(result.get("message") or code)}
    retry_after = result.get("retry_after")
    if isinstance(retry_after, int | float):
        payload["retry_after"] = retry_after
        request.setHeader(b"Retry-After", str(math.ceil(retry_after)).encode())
    return json_response(request, RESULT_STATUS.get(code, 400), payload)
