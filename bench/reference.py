"""The reference broadcaster: the smallest Autobahn/Twisted room server the load generator accepts.

No authentication, no persistence, no presence: a socket opened on `/ws/<room>` joins the room,
gets a `hello` frame, and every `{"type": "message", "body", "nonce"}` it sends is given an id and
written to everyone in the room as one frame prepared once (`prepareMessage`) and sent with
`sendPreparedMessage`. Every benchmark figure of the real chat server is a ratio to this process
under the same load in the same run.

Run: `python -m bench.reference --port 9100`.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

log = Logger()
_USER = {"id": "g:0000000000000000", "name": "reference", "guest": True}


class ReferenceProtocol(WebSocketServerProtocol):
    """One socket: joins the room named by the path, relays message frames back to the room."""

    factory: ReferenceFactory

    def onConnect(self, request: Any) -> None:
        parts = [part for part in urlsplit(request.path).path.split("/") if part]
        if len(parts) != 2 or parts[0] != "ws":
            raise ConnectionDeny(404, "not found")
        self.room = parts[1]

    def onOpen(self) -> None:
        self.factory.join(self)
        hello = {"type": "hello", "room": self.room, "user": _USER, "history": [], "online": []}
        self.sendMessage(json.dumps(hello).encode())

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if isBinary:
            return
        try:
            frame = json.loads(payload)
        except ValueError:
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "message":
            self.factory.broadcast(self.room, frame.get("body", ""), frame.get("nonce", ""))
        elif kind == "ping":
            self.sendMessage(b'{"type":"pong"}')

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.leave(self)


class ReferenceFactory(WebSocketServerFactory):
    """Shared state: the members of each room and the id counter."""

    protocol = ReferenceProtocol

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.rooms: dict[str, set[ReferenceProtocol]] = {}
        self.last_id = 0

    def join(self, member: ReferenceProtocol) -> None:
        self.rooms.setdefault(member.room, set()).add(member)

    def leave(self, member: ReferenceProtocol) -> None:
        members = self.rooms.get(getattr(member, "room", ""))
        if members is not None:
            members.discard(member)

    def broadcast(self, room: str, body: str, nonce: str) -> None:
        """Give the message an id and write one prepared frame to every member of the room."""
        self.last_id += 1
        sent_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        frame = {
            "type": "message",
            "id": self.last_id,
            "room": room,
            "user": _USER,
            "body": body,
            "sent_at": sent_at,
            "nonce": nonce,
        }
        prepared = self.prepareMessage(json.dumps(frame).encode())
        for member in self.rooms.get(room, ()):
            member.sendPreparedMessage(prepared)


def main(argv: list[str] | None = None) -> None:
    """Listen on the given port until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interface", default="127.0.0.1")
    parser.add_argument(
        "--backlog", type=int, default=50, help="listen backlog (Twisted's default)"
    )
    args = parser.parse_args(argv)

    # Thousands of idle sockets need file descriptors: take the hard limit.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    from twisted.internet import reactor

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    factory = ReferenceFactory(f"ws://{args.interface}:{args.port}")
    # The chat server's defaults (payload limit, keep-alive pings), so the comparison is about
    # what the chat server does per message and per socket, not about differently tuned options.
    factory.setProtocolOptions(
        maxFramePayloadSize=65536,
        maxMessagePayloadSize=65536,
        autoPingInterval=20.0,
        autoPingTimeout=20.0,
    )
    reactor.listenTCP(args.port, factory, backlog=args.backlog, interface=args.interface)
    log.info("reference broadcaster listening on {interface}:{port}", **vars(args))
    reactor.run()


if __name__ == "__main__":
    main()
