"""The message lifecycle with real processes: Django (gunicorn) and two `twistd` chat servers
sharing Redis. An edit, a deletion or a reaction made through Django's public API (session,
CSRF) reaches a socket reader on one instance and a long-polling reader on the other, after the
message it refers to, and a reader that comes back with `since` sees the current state."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from tests.integration import test_redis_scaleout
from tests.integration.test_redis_scaleout import nonce, pair, room
from tests.support.live import LiveSystem, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.redis]

# Django plus two chat servers on the shared Redis (a module-scoped fixture of its own here).
cluster = test_redis_scaleout.cluster


class Poller:
    """A long-polling reader: polls again with the answer's `cursor` and `event_cursor` (as
    the browser client does), keeps every frame.

    It is built only once its first poll (no `since`: the newest messages at once) has been
    answered, so what the test does next reaches it as live events: a first poll that a busy
    machine delayed past the test's actions would find them in its history page instead (a
    message with its reactions, no `reactions` frame) and the test would wait in vain.
    """

    def __init__(self, poll_url: str, origin: str) -> None:
        self.frames: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._first_answer = threading.Event()
        self._url, self._origin = poll_url, origin
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._first_answer.wait(timeout=30):
            self.stop()
            raise AssertionError(f"the first poll of {poll_url} was not answered within 30 s")

    def _run(self) -> None:
        cursor = event_cursor = None
        while not self._stop.is_set():
            url = self._url if cursor is None else f"{self._url}&since={cursor}"
            if event_cursor is not None:
                url += f"&event_cursor={event_cursor}"
            answer = requests.get(url, headers={"Origin": self._origin}, timeout=60).json()
            self.frames.extend(answer.get("events", []))
            cursor = answer.get("cursor", cursor)
            event_cursor = answer.get("event_cursor") or event_cursor
            self._first_answer.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in list(self.frames) if f.get("type") == kind]

    def stop(self) -> None:
        self._stop.set()


def action(
    live: LiveSystem, session: requests.Session, slug: str, message_id: int, verb: str, **data
):
    return session.post(
        f"{live.django_url}/api/rooms/{slug}/messages/{message_id}/{verb}/",
        json=data,
        headers={"X-CSRFToken": session.cookies["csrftoken"]},
        timeout=10,
    )


def edit(live: LiveSystem, session: requests.Session, slug: str, message_id: int, body: str):
    return action(live, session, slug, message_id, "edit", body=body)


def positions(frames: list[dict], message_id: int, *more: str) -> list[str]:
    """The kinds of the frames about `message_id`, in arrival order."""
    kinds = ("message", "edited", "deleted", *more)
    return [f["type"] for f in frames if f.get("id") == message_id and f.get("type") in kinds]


def test_an_edit_reaches_socket_and_poll_readers_on_both_instances_in_order(cluster):
    a, b = pair(cluster)
    slug = room(cluster, "edit")
    alice = a.join(slug)
    bob = b.join(slug)  # a socket on the other instance
    poller = Poller(cluster.ticket(cluster.guest_session(slug), slug)["poll_url"], cluster.origin)
    try:
        alice.say("helo", nonce())
        sent = alice.wait_for(lambda f: f.get("type") == "message")
        assert sent["html"] == "<p>helo</p>"  # Django's rendering, carried as is
        answer = edit(cluster, alice.session, slug, sent["id"], "hello")
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"]["version"] == 1
        edited = bob.wait_for(lambda f: f.get("type") == "edited")
        assert (edited["id"], edited["body"], edited["version"]) == (sent["id"], "hello", 1)
        assert edited["html"] == "<p>hello</p>"
        wait_until(lambda: poller.of_type("edited"))
        alice.wait_for(lambda f: f.get("type") == "edited")
        for frames in (alice.frames, bob.frames, poller.frames):
            kinds = positions(frames, sent["id"])
            assert kinds[0] == "message" and "edited" in kinds, kinds
        # A second edit, and someone else's edit refused: the newest body wins everywhere.
        assert edit(cluster, alice.session, slug, sent["id"], "*hello!*").status_code == 200
        stranger = cluster.guest_session(slug)
        refused = edit(cluster, stranger, slug, sent["id"], "mine")
        assert refused.status_code == 403 and refused.json()["error"] == "not_author"
        bob.wait_for(lambda f: f.get("type") == "edited" and f["version"] == 2)
        assert [f["version"] for f in bob.of_type("edited")] == [1, 2]
        wait_until(lambda: max(f["version"] for f in poller.of_type("edited")) == 2)
        # Reconnecting with `since` past the message: hello's events carry the edit; without
        # `since` the history holds the new body (memory on B was revised, Django was updated).
        again = b.join(slug, since=sent["id"])
        assert again.hello["history"] == []
        newest = [e for e in again.hello["events"] if e["type"] == "edited"][-1]
        assert (newest["id"], newest["body"], newest["version"]) == (sent["id"], "*hello!*", 2)
        assert newest["html"] == "<p><em>hello!</em></p>"
        fresh = a.join(slug)
        [message] = fresh.hello["history"]
        assert (message["body"], message["html"], message["version"]) == (
            "*hello!*",
            "<p><em>hello!</em></p>",
            2,
        )
        assert message["edited_at"]
        assert [m["body"] for m in cluster.stored_messages(slug)] == ["*hello!*"]
        for client in (alice, bob, again, fresh):
            client.close()
    finally:
        poller.stop()


def test_a_deletion_reaches_socket_and_poll_readers_on_both_instances_in_order(cluster):
    a, b = pair(cluster)
    slug = room(cluster, "delete")
    alice = a.join(slug)
    bob = b.join(slug)
    poller = Poller(cluster.ticket(cluster.guest_session(slug), slug)["poll_url"], cluster.origin)
    try:
        alice.say("oops", nonce())
        oops = alice.wait_for(lambda f: f.get("type") == "message")
        alice.say("fine", nonce())
        alice.wait_for(lambda f: f.get("type") == "message" and f["body"] == "fine")
        refused = action(cluster, cluster.guest_session(slug), slug, oops["id"], "delete")
        assert refused.status_code == 403 and refused.json()["error"] == "not_author"
        answer = action(cluster, alice.session, slug, oops["id"], "delete")
        assert answer.status_code == 200 and answer.json() == {"deleted": oops["id"]}
        bob.wait_for(lambda f: f.get("type") == "deleted")
        alice.wait_for(lambda f: f.get("type") == "deleted")
        wait_until(lambda: poller.of_type("deleted"))
        for frames in (alice.frames, bob.frames, poller.frames):
            kinds = positions(frames, oops["id"])
            assert kinds[0] == "message" and "deleted" in kinds, kinds
        gone = action(cluster, alice.session, slug, oops["id"], "delete")
        assert gone.status_code == 404 and gone.json()["error"] == "message_gone"
        # Coming back: with `since` hello's events carry the deletion; without, history (from
        # memory on B, retracted) no longer holds the message, as Django's lists do not.
        again = b.join(slug, since=oops["id"])
        assert {"type": "deleted", "id": oops["id"]} in again.hello["events"]
        fresh = b.join(slug)
        assert [m["body"] for m in fresh.hello["history"]] == ["fine"]
        assert [m["body"] for m in cluster.stored_messages(slug)] == ["fine"]
        for client in (alice, bob, again, fresh):
            client.close()
    finally:
        poller.stop()


def test_reactions_reach_socket_and_poll_readers_on_both_instances_in_order(cluster):
    a, b = pair(cluster)
    slug = room(cluster, "react")
    alice = a.join(slug)
    bob = b.join(slug)
    poller = Poller(cluster.ticket(cluster.guest_session(slug), slug)["poll_url"], cluster.origin)
    try:
        alice.say("vote", nonce())
        vote = alice.wait_for(lambda f: f.get("type") == "message")
        answer = action(cluster, bob.session, slug, vote["id"], "react", emoji="👍")
        assert answer.status_code == 200, answer.text
        answer = action(cluster, alice.session, slug, vote["id"], "react", emoji="👍")
        assert answer.json()["message"]["reactions"][0]["count"] == 2
        refused = action(cluster, alice.session, slug, vote["id"], "react", emoji="no")
        assert refused.status_code == 400 and refused.json()["error"] == "bad_emoji"

        def newest(frames: list[dict]) -> dict | None:
            found = [f for f in frames if f.get("type") == "reactions" and f["version"] == 2]
            return found[-1] if found else None

        for client in (alice, bob):
            client.wait_for(lambda f: f.get("type") == "reactions" and f["version"] == 2)
        wait_until(lambda: newest(poller.frames))
        for frames in (alice.frames, bob.frames, poller.frames):
            kinds = positions(frames, vote["id"], "reactions")
            assert kinds[0] == "message" and "reactions" in kinds, kinds
            summary = newest(frames)["reactions"]
            assert [(r["emoji"], r["count"]) for r in summary] == [("👍", 2)]
        # Coming back with `since`: hello's events carry the newest summary; without it, the
        # history (memory on B, revised) lists the reactions with the message.
        again = b.join(slug, since=vote["id"])
        assert newest(again.hello["events"])["reactions"][0]["count"] == 2
        fresh = b.join(slug)
        [message] = fresh.hello["history"]
        assert (message["reactions"][0]["count"], message["reactions_version"]) == (2, 2)
        for client in (alice, bob, again, fresh):
            client.close()
    finally:
        poller.stop()


def on_instance(url: str, instance) -> str:
    """`url` (a chat server URL Django handed out) pointed at `instance` instead."""
    return instance.url + url[url.index("/poll/") :]


def test_a_reply_reaches_both_transports_after_its_parent_and_follows_its_deletion(cluster):
    """A reply sent on instance A reaches a socket reader and a long-polling reader on instance
    B with the quote of its parent, after the parent; a poller replies too, and refusals
    (another room's message, not an id) come back to their sender. Once the parent is deleted,
    the deletion carries the quote, and whoever comes back (a socket with `since`, a fresh
    socket, the history API) sees the reply as a reply to a deleted message."""
    a, b = pair(cluster)
    slug = room(cluster, "reply")
    elsewhere = room(cluster, "elsewhere")
    alice = a.join(slug)
    bob = b.join(slug)
    guest = cluster.guest_session(slug)
    poll_url = on_instance(cluster.ticket(guest, slug)["poll_url"], b)
    poller = Poller(poll_url, cluster.origin)
    try:
        outsider = a.join(elsewhere)
        outsider.say("not yours", nonce())
        foreign = outsider.wait_for(lambda f: f.get("type") == "message")
        alice.say("lunch at noon?", nonce())
        parent = alice.wait_for(lambda f: f.get("type") == "message")
        alice.send({"type": "message", "body": "yes!", "nonce": nonce(), "reply_to": parent["id"]})
        reply = bob.wait_for(lambda f: f.get("type") == "message" and f["body"] == "yes!")
        quote = {
            "id": parent["id"],
            "author": parent["user"],
            "snippet": "lunch at noon?",
            "deleted": False,
        }
        assert reply["reply_to"] == quote
        wait_until(lambda: [f for f in poller.of_type("message") if f["body"] == "yes!"])
        for frames in (bob.frames, poller.frames):
            ids = [f["id"] for f in frames if f.get("type") == "message"]
            assert ids.index(parent["id"]) < ids.index(reply["id"]), ids
            [seen] = [f for f in frames if f.get("type") == "message" and f["body"] == "yes!"]
            assert seen["reply_to"] == quote
        # A poller replies with a POST; what Django or the chat server refuses comes back.
        headers = {"Origin": cluster.origin}

        def post(**frame):
            return requests.post(poll_url, json=frame, headers=headers, timeout=30)

        answer = post(body="me too", nonce=nonce(), reply_to=parent["id"])
        assert answer.status_code == 200, answer.text
        assert answer.json()["message"]["reply_to"] == quote
        refused = post(body="sneaky", nonce=nonce(), reply_to=foreign["id"])
        assert refused.status_code == 400 and refused.json()["error"] == "unknown_parent"
        refused = post(body="odd", nonce=nonce(), reply_to="1")
        assert refused.status_code == 400 and refused.json()["error"] == "bad_reply_to"
        sent = nonce()
        alice.send({"type": "message", "body": "gone?", "nonce": sent, "reply_to": 2**53 - 1})
        error = alice.wait_for(lambda f: f.get("type") == "error")
        assert (error["code"], error["nonce"]) == ("unknown_parent", sent)
        # The parent is deleted: the deletion carries the quote replies show now.
        answer = action(cluster, alice.session, slug, parent["id"], "delete")
        assert answer.status_code == 200
        gone = {"id": parent["id"], "author": None, "snippet": "", "deleted": True}
        deleted = bob.wait_for(lambda f: f.get("type") == "deleted")
        assert deleted == {"type": "deleted", "id": parent["id"], "quote": gone}
        wait_until(lambda: poller.of_type("deleted"))
        assert poller.of_type("deleted")[-1]["quote"] == gone
        # Coming back: every path shows the reply as a reply to a deleted message.
        again = b.join(slug, since=parent["id"])
        replies = {m["body"]: m["reply_to"] for m in again.hello["history"]}
        assert replies == {"yes!": gone, "me too": gone}
        assert {"type": "deleted", "id": parent["id"], "quote": gone} in again.hello["events"]
        fresh = a.join(slug)
        assert {m["body"]: m["reply_to"] for m in fresh.hello["history"]} == replies
        listed = guest.get(f"{cluster.django_url}/api/rooms/{slug}/messages/", timeout=10).json()
        assert {m["body"]: m["reply_to"] for m in listed["messages"]} == replies
        for client in (alice, bob, outsider, again, fresh):
            client.close()
    finally:
        poller.stop()
