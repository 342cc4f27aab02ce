"""The upgrade procedure of docs/operations.md ("Upgrading"), behind the shipped nginx: two chat
servers over Redis are restarted one at a time (SIGTERM as systemd sends it, then started again)
while people keep talking, and no message is lost or doubled.

The clients behave as the browser client does (chat/static/chat/client/): a closed socket fetches a
new ticket and reconnects with since=<last id>; a message not yet echoed back is sent again with
the same nonce (stored once); a long poller polls again after any answer or error.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed

from tests.deploy.conftest import Site
from tests.support.live import wait_until
from tests.support.wsclient import ChatClient

pytestmark = [pytest.mark.integration, pytest.mark.redis]


class Talker:
    """A WebSocket member that reconnects through nginx and resends what was not echoed."""

    def __init__(self, site: Site, slug: str):
        self.site, self.slug = site, slug
        self.session = site.guest(slug)
        self.seen: dict[int, str] = {}  # message id -> nonce
        self.unacked: dict[str, str] = {}  # nonce -> body
        self.closes: list[int | None] = []
        self.client: ChatClient = self._connect()

    def _open(self) -> ChatClient:
        url = self.site.ticket(self.session, self.slug)["ws_url"]
        if self.seen:
            url += f"&since={max(self.seen)}"
        return self.site.connect(url)

    def _connect(self) -> ChatClient:
        # While an instance stops, a handshake may meet it draining; the next try goes elsewhere.
        client: ChatClient = wait_until(self._open, timeout=30, interval=0.2)
        for message in client.catch_up():
            self._record(message)
        for nonce, body in list(self.unacked.items()):
            client.say(body, nonce)
        return client

    def reconnect(self) -> None:
        self.client.close()
        self.client = self._connect()

    def _record(self, message: dict[str, Any]) -> None:
        self.seen[message["id"]] = message["nonce"]
        self.unacked.pop(message["nonce"], None)

    def say(self, body: str) -> str:
        nonce = uuid.uuid4().hex
        self.unacked[nonce] = body
        try:
            self.client.say(body, nonce)
        except ConnectionClosed:
            pass  # resent by pump() after the reconnect
        return nonce

    def pump(self, timeout: float = 0.1) -> None:
        """Read what arrived; on a close, reconnect (which catches up and resends)."""
        try:
            frame = self.client._receive_one(timeout)
        except TimeoutError:
            return
        except ConnectionClosed as closed:
            self.closes.append(closed.rcvd.code if closed.rcvd else None)
            self.client = self._connect()
            return
        if frame.get("type") == "message":
            self._record(frame)


class Poller:
    """A long-polling member: a thread keeps a poll held; posts are retried with their nonce."""

    def __init__(self, site: Site, slug: str):
        self.site = site
        session = site.guest(slug)
        self.poll_url = site.ticket(session, slug)["poll_url"]
        self.seen: dict[int, str] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            since = max(self.seen) if self.seen else 0
            try:
                answer = requests.get(
                    f"{self.poll_url}&since={since}", verify=self.site.ca_file, timeout=40
                )
            except requests.RequestException:
                self.errors += 1
                self._stop.wait(0.2)
                continue
            if answer.status_code != 200:
                self.errors += 1
                self._stop.wait(0.2)
                continue
            for message in answer.json()["messages"]:
                self.seen[message["id"]] = message["nonce"]

    def say(self, body: str) -> str:
        """POST until the chat server answers with the stored message (same nonce every time)."""
        nonce = uuid.uuid4().hex

        def stored() -> bool:
            answer = requests.post(
                self.poll_url,
                json={"body": body, "nonce": nonce},
                verify=self.site.ca_file,
                timeout=15,
            )
            return answer.status_code == 200

        wait_until(stored, timeout=30, interval=0.2)
        return nonce

    def stop(self) -> None:
        self._stop.set()


def test_chat_servers_restart_one_by_one_and_no_message_is_lost(site: Site):
    """Both chat servers are restarted in turn, each while messages are in flight to it: every
    member ends with every message exactly once, in the same id order, Django stored each once,
    sockets on the stopped instance were closed with 1001 and came back through nginx, and an
    archive made while an instance was down closed the room's socket on the other (Django's
    control call went through nginx's loopback listener)."""
    slug = "rolling-restart"
    site.system.create_room(slug)
    talkers = [Talker(site, slug), Talker(site, slug)]
    poller = Poller(site, slug)
    sent: list[str] = []

    def burst(tag: str) -> None:
        for n, talker in enumerate(talkers):
            sent.append(talker.say(f"{tag} {n}"))
        sent.append(poller.say(f"{tag} poll"))

    def settle() -> None:
        def everyone_has_everything() -> bool:
            for talker in talkers:
                talker.pump()
            return all(
                set(member.seen.values()) >= set(sent) and not getattr(member, "unacked", {})
                for member in (*talkers, poller)
            )

        wait_until(everyone_has_everything, timeout=60, interval=0)

    def connections(url: str) -> int:
        return site.stats(url)["connections"]

    try:
        burst("before")
        settle()
        for stop, start, url in (
            (site.system.stop_chatserver, site.system.start_chatserver, site.system.chat_url),
            (site.second.stop, site.second.start, site.second.url),
        ):
            # Someone must be on the instance that stops: move a talker until one is.
            wait_until(lambda url=url: connections(url) > 0 or talkers[-1].reconnect(), timeout=30)
            closes_before = sum(len(t.closes) for t in talkers)
            burst("just before the stop")  # in flight while SIGTERM drains
            stop()
            burst("while one instance is down")
            # An admin action now: Django's control call reaches the instance that is up.
            archived = f"archived-while-{url.rsplit(':', 1)[1]}-is-down"
            site.system.create_room(archived)
            member = site.connect(site.ticket(site.guest(archived), archived)["ws_url"])
            site.system.archive_room(archived)
            assert member.wait_closed()[0] == 4004
            settle()
            assert sum(len(t.closes) for t in talkers) > closes_before
            start()
            burst("after the restart")
            settle()
    finally:
        poller.stop()

    assert all(code == 1001 for t in talkers for code in t.closes)
    orders = [[m.seen[i] for i in sorted(m.seen)] for m in (*talkers, poller)]
    assert orders[0] == orders[1] == orders[2]
    assert sorted(orders[0]) == sorted(sent) and len(orders[0]) == len(sent)
    stored = [m["nonce"] for m in site.system.stored_messages(slug)]
    assert stored == orders[0]
    for talker in talkers:
        talker.client.close()
