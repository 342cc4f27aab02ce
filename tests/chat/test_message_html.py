"""The stored rendering (`Message.html`): made once when a message is stored by the internal
batch endpoint, made again on an edit, written by every save of a body, and made for the rows
that existed before the column (the migration). `body` stays the source everywhere.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from chat import search_index
from chat.markdown import render
from chat.models import Message

from . import test_admin
from .test_message_edit import edit, posts

# The recording fake chat server of the admin tests (a real HTTP server on a free port).
chat_server = test_admin.chat_server

pytestmark = pytest.mark.django_db

BATCH = "/internal/messages/batch/"
SOURCE = "**bold** and `code` <b>raw</b>"
RENDERED = "<p><strong>bold</strong> and <code>code</code> &lt;b&gt;raw&lt;/b&gt;</p>"


def item(nonce: str, body: str) -> dict:
    return {
        "room": "lobby",
        "nonce": nonce,
        "body": body,
        "name": "alice",
        "uid": "g:" + "ab" * 8,
        "user_id": None,
        "guest": True,
    }


def test_batch_stores_source_and_rendering(signed, lobby):
    """The internal batch endpoint (bulk insert, no save()) stores both and answers both."""
    response = signed.post_json(BATCH, {"messages": [item("n-1", f"  {SOURCE}\n")]})
    [result] = response.json()["results"]
    assert result["message"]["body"] == SOURCE
    assert result["message"]["html"] == RENDERED
    row = Message.objects.get(nonce="n-1")
    assert (row.body, row.html) == (SOURCE, RENDERED)


def test_a_repeat_answers_the_stored_rendering(signed, lobby):
    """A resent nonce answers the original's html, not a rendering of the resend's body."""
    signed.post_json(BATCH, {"messages": [item("n-1", "**first**")]})
    response = signed.post_json(BATCH, {"messages": [item("n-1", "*other*")]})
    [result] = response.json()["results"]
    assert result["created"] is False
    assert result["message"]["html"] == "<p><strong>first</strong></p>"


def test_refused_items_do_not_stop_the_rendering_of_others(signed, lobby):
    """A refused body is never rendered; its neighbours are stored with their html."""
    response = signed.post_json(BATCH, {"messages": [item("bad", "a\x00b"), item("good", "~~x~~")]})
    bad, good = response.json()["results"]
    assert bad["error"] == "bad_body"
    assert good["message"]["html"] == "<p><s>x</s></p>"


def test_history_and_page_carry_html(signed, lobby, client):
    """The history APIs list `html` beside `body`; the room page shows the stored html."""
    signed.post_json(BATCH, {"messages": [item("n-1", SOURCE)]})
    [listed] = client.get("/api/rooms/lobby/messages/").json()["messages"]
    assert (listed["body"], listed["html"]) == (SOURCE, RENDERED)
    internal = signed.get("/internal/rooms/lobby/messages/?after=0").json()["messages"]
    assert [m["html"] for m in internal] == [RENDERED]
    page = client.get("/chats/lobby/").content.decode()
    source = "**bold** and `code` &lt;b&gt;raw&lt;/b&gt;"  # escaped in the attribute
    assert f'<div class="body" dir="auto" data-body="{source}">{RENDERED}</div>' in page
    assert "<b>raw</b>" not in page


def test_a_row_without_rendering_shows_its_source_as_text(lobby, client):
    """A row stored without `html` (raw SQL, a bulk insert that skipped it) shows its source as
    escaped text, never as markup, and marked `plain` for the client."""
    message = Message.objects.create(room=lobby, author_name="a", body="<i>x</i>", nonce="n")
    Message.objects.filter(pk=message.pk).update(html="")
    page = client.get("/chats/lobby/").content.decode()
    assert (
        '<div class="body plain" dir="auto" data-body="&lt;i&gt;x&lt;/i&gt;">&lt;i&gt;x&lt;/i&gt;'
        in page
    )


def test_saving_a_body_renders_it_again(lobby):
    """Any save that writes `body` (a new row, the admin's change form, an edit with
    update_fields) writes its rendering too; a save of other fields leaves it alone."""
    message = Message.objects.create(room=lobby, author_name="a", body="*one*", nonce="n")
    assert message.html == "<p><em>one</em></p>"
    message.body = "*two*"
    message.save()
    assert Message.objects.get(pk=message.pk).html == "<p><em>two</em></p>"
    message.body = "*three*"
    message.save(update_fields=["body"])
    assert Message.objects.get(pk=message.pk).html == "<p><em>three</em></p>"
    Message.objects.filter(pk=message.pk).update(html="kept")
    message.refresh_from_db()
    message.save(update_fields=["is_deleted"])
    assert Message.objects.get(pk=message.pk).html == "kept"


def test_edit_renders_again_and_the_event_carries_html(
    alice_client, alice, lobby, chat_server, django_capture_on_commit_callbacks
):
    """The edit endpoint stores the new rendering, answers it, and the `edited` event carries
    it (the chat server passes it on to every reader); `body` stays the source."""
    message = Message.objects.create(
        room=lobby,
        author=alice,
        author_uid=f"u:{alice.pk}",
        author_name="alice",
        body="old",
        nonce="e",
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = edit(alice_client, "lobby", message.pk, "> **new**")
    assert response.status_code == 200, response.content
    shape = response.json()["message"]
    expected = "<blockquote>\n<p><strong>new</strong></p>\n</blockquote>"
    assert (shape["body"], shape["html"]) == ("> **new**", expected)
    assert Message.objects.get(pk=message.pk).html == expected
    [call] = posts(chat_server)
    assert call["body"]["html"] == expected and call["body"]["body"] == "> **new**"


@pytest.mark.django_db(transaction=True)
def test_migration_renders_existing_rows():
    """Rows stored before the column existed get their rendering when it is added."""
    executor = MigrationExecutor(connection)
    [target] = [key for key in executor.loader.graph.leaf_nodes() if key[0] == "chat"] or [None]
    [html_migration] = [
        key
        for key in executor.loader.graph.nodes
        if key[0] == "chat" and key[1].endswith("_message_html")
    ]
    [before] = executor.loader.graph.node_map[html_migration].parents
    try:
        executor.migrate([before.key])
        old_apps = executor.loader.project_state([before.key]).apps
        room = old_apps.get_model("chat", "Room").objects.create(name="Old", slug="old")
        old_apps.get_model("chat", "Message").objects.create(
            room=room, author_name="a", body="_was_ <i>here</i>", nonce="old-1"
        )
        executor = MigrationExecutor(connection)
        executor.migrate([target])
        assert Message.objects.get(nonce="old-1").html == render("_was_ <i>here</i>")
        assert (
            Message.objects.get(nonce="old-1").html == "<p><em>was</em> &lt;i&gt;here&lt;/i&gt;</p>"
        )
    finally:
        MigrationExecutor(connection).migrate([target])
        # Going back and forth may rebuild chat_message on SQLite (dropping its search
        # triggers); a real `migrate` reinstalls them in post_migrate, as here.
        search_index.install(connection)


def test_search_reads_the_source_and_snippets_stay_escaped(lobby, client):
    """Search indexes `body` (the source), never the rendering: a tag name of the rendering
    finds nothing, and the snippet is the escaped source with only our `<mark>`."""
    assert client.get("/chats/lobby/").status_code == 200  # a guest of the room
    message = Message.objects.create(
        room=lobby, author_name="a", body="**deploy** <b>now</b> `strong`", nonce="s"
    )
    assert "<strong>" in message.html
    [hit] = client.get("/api/search/", {"q": "deploy"}).json()["results"]
    assert hit["snippet_html"] == ("**<mark>deploy</mark>** &lt;b&gt;now&lt;/b&gt; `strong`")
    assert hit["message"]["body"] == message.body and hit["message"]["html"] == message.html
    assert client.get("/api/search/", {"q": "code"}).json()["results"] == []
    assert client.get("/api/search/", {"q": "p"}).json()["results"] == []
