"""Replies in Django (docs/protocol.md, `reply_to`): the internal batch stores a reply only to a
message of the same room (else the item is refused `unknown_parent`, the same answer for a
message of another room as for one that never existed), every list shows the quote of the
parent as it is now (edited: the new snippet; deleted, even purged: `deleted: true` and nothing
of its text), the events about an edited or deleted parent carry the quote replies show now, and
the room page renders quotes and reactions as the client draws them."""

from __future__ import annotations

import json

import pytest

from chat.models import REPLY_SNIPPET_CHARS, Message, Reaction, Room

from . import test_admin
from .test_internal_api import BATCH, item

# The recording fake chat server of the admin tests (a real HTTP server on a free port).
chat_server = test_admin.chat_server


def reply(nonce: str, parent: object, room: str = "lobby", **fields) -> dict:
    return {**item(nonce, room=room, body="an answer", **fields), "reply_to": parent}


def store(signed, *items: dict) -> list[dict]:
    response = signed.post_json(BATCH, {"messages": list(items)})
    assert response.status_code == 200
    return response.json()["results"]


def history(client, room: str = "lobby") -> dict[int, dict]:
    return {m["id"]: m for m in client.get(f"/api/rooms/{room}/messages/").json()["messages"]}


def test_a_reply_is_stored_with_the_quote_of_its_parent(signed, lobby, alice_message, client):
    [result] = store(signed, reply("r-1", alice_message.pk))
    assert result["ok"] and result["created"]
    quote = {
        "id": alice_message.pk,
        "author": {"id": alice_message.author_uid, "name": "alice", "guest": False},
        "snippet": "helo",
        "deleted": False,
    }
    assert result["message"]["reply_to"] == quote
    stored = Message.objects.get(nonce="r-1")
    assert stored.reply_to_id == alice_message.pk
    listed = history(client)
    assert listed[stored.pk]["reply_to"] == quote
    assert listed[alice_message.pk]["reply_to"] is None


def test_the_snippet_is_cut_at_the_documented_length(signed, lobby):
    long = "é" * REPLY_SNIPPET_CHARS + "tail"
    parent = Message.objects.create(room=lobby, author_name="a", body=long, nonce="p")
    exact = Message.objects.create(
        room=lobby, author_name="a", body="x" * REPLY_SNIPPET_CHARS, nonce="q"
    )
    cut, whole = store(signed, reply("r-1", parent.pk), reply("r-2", exact.pk))
    assert cut["message"]["reply_to"]["snippet"] == "é" * REPLY_SNIPPET_CHARS + "…"
    assert whole["message"]["reply_to"]["snippet"] == "x" * REPLY_SNIPPET_CHARS


def test_a_parent_in_another_room_or_missing_is_refused_alike(signed, lobby, alice_message):
    other = Room.objects.create(slug="other", name="Other", allow_guests=True)
    secret = Message.objects.create(room=other, author_name="x", body="secret", nonce="s")
    results = store(
        signed,
        reply("r-1", secret.pk),
        reply("r-2", secret.pk + 1000),
        reply("r-3", alice_message.pk),
    )
    assert [r.get("error") for r in results] == ["unknown_parent", "unknown_parent", None]
    assert results[0] == {
        "ok": False,
        "nonce": "r-1",
        "room": "lobby",
        "error": "unknown_parent",
        "message": "The message this replies to is not in this room.",
    }
    assert results[0]["message"] == results[1]["message"]  # nothing tells the two apart
    assert not Message.objects.filter(nonce__in=["r-1", "r-2"]).exists()


@pytest.mark.parametrize("value", ["12", 0, -1, 1.5, True, 2**53, [1], {"id": 1}])
def test_a_reply_to_that_is_not_a_message_id_is_a_bad_item(signed, lobby, value):
    [result] = store(signed, reply("r-1", value))
    assert result["error"] == "bad_item"


def test_guests_reply_where_they_may_send_and_the_room_rules_come_first(
    signed, lobby, alice_message, archived_room, alice
):
    """A guest's item with `reply_to` is judged like any guest message: stored in a room that
    allows guests; in an archived room refused `room_archived` before the parent is looked at."""
    old = Message.objects.create(room=archived_room, author_name="a", body="old", nonce="o")
    guest, archived = store(
        signed, reply("g-1", alice_message.pk), reply("g-2", old.pk, room="old")
    )
    assert guest["ok"] and guest["message"]["user"]["guest"] is True
    assert guest["message"]["reply_to"]["id"] == alice_message.pk
    assert archived["error"] == "room_archived"
    signed_in = reply("u-1", alice_message.pk, user_id=alice.pk, guest=False)
    [stored] = store(signed, signed_in)
    assert stored["message"]["user"]["id"] == f"u:{alice.pk}"


def test_a_resent_nonce_answers_the_original_whatever_it_replies_to(signed, alice_message):
    [first] = store(signed, reply("r-1", alice_message.pk))
    [again] = store(signed, reply("r-1", alice_message.pk + 1000))  # a changed resend
    assert again["created"] is False and again["id"] == first["message"]["id"]
    assert again["message"]["reply_to"]["id"] == alice_message.pk
    assert Message.objects.filter(nonce="r-1").count() == 1


def test_a_deleted_parent_shows_as_deleted_and_nothing_of_it(
    signed, alice_client, alice_message, client
):
    [result] = store(signed, reply("r-1", alice_message.pk))
    reply_id = result["message"]["id"]
    response = alice_client.post(f"/api/rooms/lobby/messages/{alice_message.pk}/delete/")
    assert response.status_code == 200
    gone = {"id": alice_message.pk, "author": None, "snippet": "", "deleted": True}
    assert history(client)[reply_id]["reply_to"] == gone
    around = client.get(f"/api/rooms/lobby/messages/?around={reply_id}").json()["messages"]
    assert [m["reply_to"] for m in around] == [gone]
    # A reply sent after the deletion (it raced the deletion) is a reply to a deleted message.
    [late] = store(signed, reply("r-2", alice_message.pk))
    assert late["message"]["reply_to"] == gone
    # Even with the row purged, the reply keeps the id and says "deleted".
    Message.objects.filter(pk=alice_message.pk).delete()
    assert Message.objects.get(pk=reply_id).reply_to_id == alice_message.pk
    assert history(client)[reply_id]["reply_to"] == gone
    page = client.get("/chats/lobby/").content.decode()
    assert 'class="reply-quote deleted"' in page and "helo" not in page


def test_an_edited_parent_gives_its_replies_the_new_snippet(signed, alice_client, alice_message):
    [result] = store(signed, reply("r-1", alice_message.pk))
    response = alice_client.post(
        f"/api/rooms/lobby/messages/{alice_message.pk}/edit/",
        json.dumps({"body": "hello"}),
        content_type="application/json",
    )
    assert response.status_code == 200
    listed = history(alice_client)[result["message"]["id"]]
    assert listed["reply_to"]["snippet"] == "hello"


def test_events_about_a_parent_carry_the_quote_its_replies_show(
    signed, alice_client, alice_message, chat_server, django_capture_on_commit_callbacks, lobby
):
    lonely = Message.objects.create(
        room=lobby,
        author=alice_message.author,
        author_uid=alice_message.author_uid,
        author_name="alice",
        body="nobody answers",
        nonce="l",
    )
    store(signed, reply("r-1", alice_message.pk))
    url = "/api/rooms/lobby/messages/{}/{}/"
    # One request after the other, each committed (and its event sent) before the next.
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            url.format(alice_message.pk, "edit"),
            json.dumps({"body": "hello"}),
            content_type="application/json",
        )
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(url.format(alice_message.pk, "delete"))
    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(url.format(lonely.pk, "delete"))
    edited, deleted, plain = [r["body"] for r in chat_server.requests if r["method"] == "POST"]
    author = {"id": alice_message.author_uid, "name": "alice", "guest": False}
    assert edited["type"] == "edited" and edited["quote"] == {
        "id": alice_message.pk,
        "author": author,
        "snippet": "hello",
        "deleted": False,
    }
    assert deleted == {
        "type": "deleted",
        "id": alice_message.pk,
        "quote": {"id": alice_message.pk, "author": None, "snippet": "", "deleted": True},
    }
    assert plain == {"type": "deleted", "id": lonely.pk}  # no replies: no quote


def test_the_room_page_renders_quotes_and_reactions(signed, alice_client, alice, alice_message):
    [result] = store(signed, reply("r-1", alice_message.pk))
    Reaction.objects.create(message=alice_message, uid=f"u:{alice.pk}", name="alice", emoji="👍")
    Reaction.objects.create(message=alice_message, uid="g:0123456789abcdef", name="g", emoji="👍")
    Message.objects.filter(pk=alice_message.pk).update(reactions_version=2)
    page = alice_client.get("/chats/lobby/").content.decode()
    assert f'data-reply-to="{alice_message.pk}"' in page
    assert 'class="reply-quote"' in page and ">helo</span>" in page
    assert 'data-reactions-version="2"' in page
    chip = 'aria-label="👍 2: alice, g. Remove your reaction" data-emoji="👍" aria-pressed="true"'
    assert chip + ' title="alice, g"' in page
    assert '<span class="reaction-count">2</span>' in page
    assert result["message"]["id"]


def test_a_hostile_parent_is_quoted_as_text(signed, lobby, client):
    """Markup in a parent's body or author name stays text in the server-rendered quote."""
    parent = Message.objects.create(
        room=lobby,
        author_name='<b onmouseover="x()">eve</b>',
        body='<img src=x onerror="alert(1)">',
        nonce="evil",
    )
    store(signed, reply("r-1", parent.pk))
    page = client.get("/chats/lobby/").content.decode()
    quote = page[page.index('class="reply-quote"') :]
    quote = quote[: quote.index("</button>")]
    assert "<img" not in quote and "<b " not in quote
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in quote
