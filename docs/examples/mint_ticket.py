"""Mint a socket ticket for the chat server from a backend that is not Django.

A ticket is an HS256 JSON Web Token signed with the chat server's `CHAT_SHARED_SECRET`, with the
claims of docs/protocol.md ("Socket tickets"). Any JWT library can mint one; this example needs
PyJWT only (`pip install PyJWT`) and imports nothing from this project.

    export CHAT_SHARED_SECRET=...        # the chat server's; never pass it on the command line
    python mint_ticket.py lobby "Ada"                     # a guest called Ada, for room lobby
    python mint_ticket.py lobby "ada" --user-id 42        # Django user 42
    python mint_ticket.py lobby "Ada" --chat-url https://chat.example.org
        -> wss://chat.example.org/ws/lobby?ticket=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9....

Messages are stored by Django, which checks the author: a guest is `g:<16 hex>` with no user id,
a signed-in user `u:<id>` with that Django user id.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from urllib.parse import quote, urlsplit

import jwt


def mint_ticket(
    secret: str,
    room: str,
    name: str,
    *,
    user_id: int | None = None,
    guest_id: str | None = None,
    ttl: int = 60,
) -> str:
    """A ticket letting one identity join `room` for `ttl` seconds (60 by default).

    Without `user_id` the identity is a guest: keep its `guest_id` (16 hex digits) for the same
    person across tickets, so the chat shows their messages as their own.
    """
    # Milliseconds first, seconds from them: `iat_ms // 1000` must equal `iat`.
    iat_ms = time.time_ns() // 1_000_000
    iat = iat_ms // 1000
    if user_id is None:
        subject = "g:" + (guest_id or secrets.token_hex(8))
    else:
        subject = f"u:{user_id}"
    claims = {
        "aud": f"room:{room}",  # one room per ticket
        "sub": subject,  # the stable author id
        "user_id": user_id,  # null for a guest
        "name": name,  # shown as the author's name, 1 to 64 characters
        "guest": user_id is None,
        "iat": iat,
        "exp": iat + ttl,  # the chat server refuses lifetimes over CHAT_MAX_TICKET_TTL
        "iat_ms": iat_ms,  # compared with revocations; optional
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def socket_url(chat_url: str, room: str, ticket: str) -> str:
    """The WebSocket address of `room` on the chat server at `chat_url` (http or https)."""
    parts = urlsplit(chat_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path}/ws/{quote(room)}?ticket={ticket}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("room", help="the room slug")
    parser.add_argument("name", help="the display name")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--user-id", type=int, help="a signed-in Django user id (default: a guest)")
    who.add_argument("--guest-id", help="the guest's 16 hex digits (default: a new guest)")
    parser.add_argument("--ttl", type=int, default=60, help="seconds the ticket is valid")
    parser.add_argument("--chat-url", help="print the socket URL on this chat server instead")
    args = parser.parse_args(argv)
    secret = os.environ.get("CHAT_SHARED_SECRET", "")
    if not secret:
        parser.error("set CHAT_SHARED_SECRET in the environment")
    ticket = mint_ticket(
        secret, args.room, args.name, user_id=args.user_id, guest_id=args.guest_id, ttl=args.ttl
    )
    print(socket_url(args.chat_url, args.room, ticket) if args.chat_url else ticket)
    return 0


if __name__ == "__main__":
    sys.exit(main())
