"""Client frames: decode and validate what a browser sends (WebSocket frames, long-poll bodies).

Returns a `ClientFrame` or raises `FrameError` with the error code of docs/protocol.md. JSON goes
through orjson in both directions; a payload orjson refuses is given a second chance with the
standard library's parser only to tell a lone surrogate escape (`"\\ud800"`, legal JSON syntax that
orjson refuses) apart from malformed JSON, so that a message body holding one is answered
`bad_body` with its nonce instead of a nonce-less `bad_json`.

Storable text (docs/protocol.md, "Message bodies"): a body must not contain U+0000 (PostgreSQL
cannot store NUL in text) or a UTF-16 surrogate code point U+D800..U+DFFF (a lone surrogate has no
UTF-8 encoding, so neither the chat server nor Django can send or store it). Django applies the
same rule (`chat.models.body_error`); every other character is kept as text.

Attachments (docs/protocol.md, "Attachments"): a message may name 1 to CHAT_MAX_FILES_PER_MESSAGE
upload ids (`attachments`), and then its body may be empty. Only the list's shape is checked here
(`bad_attachments`); whose uploads they are is Django's to say when it stores the message.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import orjson

NONCE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# An attachment id (Django's `secrets.token_urlsafe(16)`: 22 characters of the URL-safe base64
# alphabet; chat.models.ATTACHMENT_ID_RE is the same rule).
ATTACHMENT_ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
# The default of CHAT_MAX_FILES_PER_MESSAGE (chatserver/config.py).
DEFAULT_MAX_FILES = 10
CLIENT_TYPES = frozenset({"message", "typing", "ping", "history"})
# Code points no store can take: NUL (PostgreSQL text) and UTF-16 surrogates (not UTF-8 encodable).
UNSTORABLE_RE = re.compile("[\x00\ud800-\udfff]")


def unstorable(text: str) -> bool:
    """True when `text` holds U+0000 or a surrogate code point (U+D800..U+DFFF)."""
    return UNSTORABLE_RE.search(text) is not None


class FrameError(Exception):
    """A client frame was refused; `code` goes into the error frame, `nonce` when known."""

    def __init__(self, code: str, message: str, nonce: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message
        self.nonce = nonce


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A valid client frame; `body` (stripped) and `nonce` are set for messages only, with
    `reply_to` (the id of the message it answers) and `attachments` (ids of uploads, in the
    client's order) when given; `after` (a message id) for history requests only."""

    type: str
    body: str | None = None
    nonce: str | None = None
    after: int | None = None
    reply_to: int | None = None
    attachments: tuple[str, ...] = ()


def encode(obj: object) -> bytes:
    """Compact JSON bytes."""
    return orjson.dumps(obj)


def error_frame(
    code: str, message: str, nonce: str | None = None, retry_after: float | None = None
) -> bytes:
    """The encoded `error` frame for one refusal (`retry_after` in seconds, when known)."""
    frame: dict = {"type": "error", "code": code, "message": message}
    if nonce is not None:
        frame["nonce"] = nonce
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return orjson.dumps(frame)


def validate_message(obj: dict, max_body: int, max_files: int = DEFAULT_MAX_FILES) -> ClientFrame:
    """Check the `body`, `nonce`, `reply_to` and `attachments` of a message object (frame or
    long-poll POST body); `max_files` is CHAT_MAX_FILES_PER_MESSAGE.

    `attachments`, when present, is a list of 1 to `max_files` distinct upload ids (else
    `bad_attachments`, with the nonce); with attachments the body may be empty. Whether the ids
    are the sender's unsent uploads to this room is Django's to say.
    """
    nonce = obj.get("nonce")
    body = obj.get("body")
    if not isinstance(nonce, str) or not isinstance(body, str):
        raise FrameError(
            "bad_frame", "A message needs a string body and nonce.", _safe_nonce(nonce)
        )
    if NONCE_RE.fullmatch(nonce) is None:
        raise FrameError("bad_nonce", "The nonce must be 1 to 64 of [A-Za-z0-9_-].")
    attachments = _attachment_ids(obj.get("attachments", None), max_files, nonce)
    stripped = body.strip()
    if not stripped and not attachments:
        raise FrameError("empty_body", "The message is empty.", nonce)
    if len(stripped) > max_body:
        raise FrameError(
            "body_too_long", f"The message is longer than {max_body} characters.", nonce
        )
    if unstorable(stripped):
        # Django refuses it too (chat.models.body_error); say so before queueing.
        raise FrameError(
            "bad_body",
            "The message contains a NUL or an unpaired surrogate, which cannot be stored.",
            nonce,
        )
    reply_to = obj.get("reply_to")
    if reply_to is not None and (type(reply_to) is not int or not 1 <= reply_to <= MAX_MESSAGE_ID):
        # Only the shape: whether the message exists in the room is Django's to say.
        raise FrameError(
            "bad_reply_to",
            f"reply_to is the id of a message: a whole number from 1 to {MAX_MESSAGE_ID}.",
            nonce,
        )
    return ClientFrame(
        type="message", body=stripped, nonce=nonce, reply_to=reply_to, attachments=attachments
    )


def _attachment_ids(value: object, max_files: int, nonce: str) -> tuple[str, ...]:
    """`attachments` of a message: absent or null means none; else 1 to `max_files` distinct ids
    of the token alphabet, or `bad_attachments`."""
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= max_files
        or not all(isinstance(v, str) and ATTACHMENT_ID_RE.fullmatch(v) for v in value)
        or len(set(value)) != len(value)
    ):
        raise FrameError(
            "bad_attachments",
            f"attachments is a list of 1 to {max_files} distinct upload ids.",
            nonce,
        )
    return tuple(value)


def _safe_nonce(nonce: object) -> str | None:
    # Echo a nonce back only when it is well formed, so error frames never carry junk.
    if isinstance(nonce, str) and NONCE_RE.fullmatch(nonce):
        return nonce
    return None


def parse_json_object(payload: bytes) -> dict:
    """Decode a JSON object or raise `bad_json` / `bad_frame`."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        obj = _lenient_loads(payload)
    if not isinstance(obj, dict):
        raise FrameError("bad_frame", "A frame must be a JSON object.")
    return obj


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: orjson refuses them too


def _lenient_loads(payload: bytes) -> object:
    """Decode JSON that orjson refused, when only lone surrogate escapes made it refuse.

    The standard library accepts `\\udXXX` escapes without their pair (RFC 8259 section 8.2 allows
    a parser to); whatever it decodes is then judged like any frame, so an unstorable body gets
    `bad_body`. Anything else the standard library refuses too is `bad_json`.
    """
    try:
        text = payload.decode("utf-8")
        if "\\u" not in text:
            raise ValueError("not a surrogate escape problem")
        return json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise FrameError("bad_json", "The frame is not valid JSON.") from None


def parse_client_frame(
    payload: bytes, max_body: int, max_files: int = DEFAULT_MAX_FILES
) -> ClientFrame:
    """Decode and validate one WebSocket text frame (`max_files`: see `validate_message`)."""
    obj = parse_json_object(payload)
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise FrameError("bad_frame", "A frame needs a string type.")
    if kind not in CLIENT_TYPES:
        raise FrameError("unknown_type", "Unknown frame type.")
    if kind == "message":
        return validate_message(obj, max_body, max_files)
    if kind == "history":
        return ClientFrame(type=kind, after=_message_id(obj.get("after")))
    return ClientFrame(type=kind)


# The largest message id a client may name: the largest integer a browser holds exactly
# (2**53 - 1), far below PostgreSQL's bigint, so a bound id never reaches Django as an error.
MAX_MESSAGE_ID = 2**53 - 1


def _message_id(value: object) -> int:
    """`after` of a history request: a JSON integer in [0, MAX_MESSAGE_ID] (no bool, float or
    string); anything else is refused with `bad_frame`."""
    if type(value) is not int or not 0 <= value <= MAX_MESSAGE_ID:
        raise FrameError(
            "bad_frame", f"A history request needs an integer after from 0 to {MAX_MESSAGE_ID}."
        )
    return value
