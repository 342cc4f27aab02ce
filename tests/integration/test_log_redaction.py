"""Log redaction: after a real chat flow, no log file holds a ticket, a secret or a message body.

Its own `LiveSystem` (so its log files hold this flow only): tickets, WebSocket messages, long
polling (GET and POST), refused tickets, a Django outage the chat server logs about, and the
admin screens. Then every `*.log` the processes wrote is searched for the secrets and canaries.
"""

from __future__ import annotations

import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from websockets.exceptions import InvalidStatus

from tests.support.live import LiveSystem, mint_ticket, wait_until
from tests.support.wsclient import ChatClient

pytestmark = pytest.mark.integration

ROOM = "redaction"


@pytest.fixture(scope="module", params=["text", "json"])
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveSystem]:
    """A LiveSystem whose log files this module reads: debug level, in each log format (the
    JSON lines carry every field of an event, not only those its message shows)."""
    log_env = {
        "CHAT_LOG_LEVEL": "debug",
        "CHAT_LOG_FORMAT": request.param,
        "DJANGO_LOG_LEVEL": "DEBUG",
        "DJANGO_LOG_FORMAT": request.param,
    }
    live = LiveSystem(tmp_path_factory.mktemp(f"redaction-{request.param}"), log_env)
    try:
        live.start()
        live.create_room(ROOM, guests=True)
        live.create_user("staffer", "staff-pass-123", staff=True)
        yield live
    finally:
        live.stop()


def run_chat_flow(live: LiveSystem) -> tuple[list[str], list[str]]:
    """Exercise every path that handles a ticket or a body; returns (tickets, bodies)."""
    tickets: list[str] = []
    bodies: list[str] = []

    def canary() -> str:
        body = f"canary-{secrets.token_hex(8)}"
        bodies.append(body)
        return body

    session = live.guest_session(ROOM)
    first = live.ticket(session, ROOM)
    tickets.append(first["ticket"])
    alice = ChatClient(first["ws_url"], origin=live.origin)
    alice.say(canary(), "redact-1")
    alice.wait_for(lambda f: f.get("nonce") == "redact-1")
    alice.say("", "redact-empty")  # refused: an error frame, logged as a count at most
    alice.wait_for(lambda f: f.get("type") == "error")

    second = live.ticket(live.guest_session(ROOM), ROOM)
    tickets.append(second["ticket"])
    poll = requests.post(
        second["poll_url"], json={"body": canary(), "nonce": "redact-2"}, timeout=10
    )
    assert poll.status_code == 200
    got = requests.get(second["poll_url"] + "&since=0", timeout=10)
    assert got.status_code == 200 and got.json()["messages"]

    # Refused tickets: forged, other room, expired (each logged as a reason, never the ticket).
    forged = first["ticket"][:-6] + "AAAAAA"
    expired = mint_ticket(live.secret, ROOM, ttl=-10)
    other = mint_ticket(live.secret, "elsewhere")
    tickets += [forged, expired, other]
    base = f"{live.chat_url}/poll/{ROOM}?ticket="
    for bad in (forged, expired, other):
        assert requests.get(base + bad + "&since=0", timeout=10).status_code == 403
        ws = base.replace("http://", "ws://").replace("/poll/", "/ws/") + bad
        with pytest.raises(InvalidStatus):  # refused with 403 before the upgrade
            ChatClient(ws, origin=live.origin)

    # A Django outage: the chat server logs its retries (with the message queued).
    live.django.stop(signal.SIGKILL)
    alice.say(canary(), "redact-3")
    wait_until(lambda: "retry" in (live.workdir / "chatserver.log").read_text(), timeout=15)
    live.start_django()
    alice.wait_for(lambda f: f.get("nonce") == "redact-3", timeout=20)
    alice.close()

    # The admin: a staff member reads the messages (bodies appear in the page, not the logs).
    staff = live.user_session("staffer", "staff-pass-123")
    page = staff.get(f"{live.django_url}/admin/chat/message/", timeout=10)
    assert page.status_code == 200 and bodies[0] in page.text
    return tickets, bodies


def test_logs_hold_no_ticket_secret_or_message_body(system: LiveSystem):
    """Every process log, after the whole flow: no ticket, no secret, no body appears."""
    tickets, bodies = run_chat_flow(system)
    logs = {path.name: path.read_text(errors="replace") for path in system.workdir.glob("*.log")}
    assert {"django.log", "chatserver.log"} <= set(logs)
    assert "socket opened" in logs["chatserver.log"]  # debug events reach the log too
    needles = {
        "DJANGO_SECRET_KEY": system.env["DJANGO_SECRET_KEY"],
        "CHAT_SHARED_SECRET": system.secret,
    }
    for i, ticket in enumerate(tickets):
        needles[f"ticket {i}"] = ticket
        needles[f"ticket {i} signature"] = ticket.rsplit(".", 1)[1]
        needles[f"ticket {i} payload"] = ticket.split(".")[1]
    for i, body in enumerate(bodies):
        needles[f"body {i}"] = body
    leaks = [
        f"{what} in {name}"
        for name, text in logs.items()
        for what, needle in needles.items()
        if needle in text
    ]
    assert not leaks, leaks


def test_redaction_check_can_fail(system: LiveSystem, tmp_path: Path):
    """The search itself finds a planted secret (so a clean result means something)."""
    planted = system.workdir / "planted.log"
    planted.write_text(f"oops {system.secret}\n")
    try:
        text = {p.name: p.read_text() for p in system.workdir.glob("*.log")}
        assert any(system.secret in t for t in text.values())
    finally:
        planted.unlink()
