"""Full-text search (chat/search.py, ``GET /api/search/``, ``/search/``) and history ``around``.

Runs on SQLite (FTS5) in the first pass of ``make test`` and on PostgreSQL (GIN index) in the
second: every test here goes through the real index of the back end it runs on.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client, override_settings

from chat import search_index
from chat.models import Message, Room
from chat.search import matching, snippet

SEARCH = "/api/search/"


def post(room: Room, body: str, n: int | None = None) -> Message:
    """Store a message as the internal API would."""
    nonce = f"n{Message.objects.count() if n is None else n}-{room.slug}"
    return Message.objects.create(
        room=room, body=body, nonce=nonce, author_name="bob", author_uid="g:" + "1" * 16
    )


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["message"]["id"] for r in response.json()["results"]]


@pytest.fixture
def guest(lobby) -> Client:
    browser = Client()
    assert browser.get("/chats/lobby/").status_code == 200
    return browser


def test_finds_by_a_body_word_newest_first_with_marked_snippet(guest, lobby):
    """A word from the body finds the message; results are newest first; the snippet marks the
    hit and links to the message in context."""
    older = post(lobby, "The deploy went fine")
    post(lobby, "nothing to see here")
    newer = post(lobby, "Another DEPLOY tomorrow, deploy twice")
    response = guest.get(SEARCH, {"q": "deploy"})
    assert ids(response) == [newer.id, older.id]
    first = response.json()["results"][0]
    assert (
        first["snippet_html"] == "Another <mark>DEPLOY</mark> tomorrow, <mark>deploy</mark> twice"
    )
    assert first["url"] == f"/chats/lobby/?around={newer.id}"
    assert first["room_name"] == "Lobby" and first["message"]["room"] == "lobby"
    assert response.json()["has_more"] is False


def test_two_words_must_both_occur(guest, lobby):
    """Every term must occur (AND), in any order."""
    both = post(lobby, "blue whale sighted")
    post(lobby, "blue sky")
    post(lobby, "a whale")
    assert ids(guest.get(SEARCH, {"q": "whale blue"})) == [both.id]


def test_guest_never_sees_sign_in_room_messages(guest, lobby, members_room, alice_client):
    """Across rooms a guest gets only guest rooms; asking for a sign-in room is 403; a signed-in
    user sees both. The filter is the room page's rule (``may_join``)."""
    public = post(lobby, "secret plans in public")
    hidden = post(members_room, "secret plans for members")
    assert ids(guest.get(SEARCH, {"q": "secret"})) == [public.id]
    refused = guest.get(SEARCH, {"q": "secret", "room": "members"})
    assert refused.status_code == 403 and refused.json()["error"] == "sign_in_required"
    page = guest.get("/search/", {"q": "secret"})
    assert b"for members" not in page.content and b"in public" in page.content
    assert ids(alice_client.get(SEARCH, {"q": "secret"})) == [hidden.id, public.id]
    only = alice_client.get(SEARCH, {"q": "secret", "room": "members"})
    assert ids(only) == [hidden.id]


def test_archived_rooms_are_not_searched(alice_client, archived_room):
    """An archived room's messages are gone for readers, in search too (404 when named)."""
    post(archived_room, "forgotten words")
    assert ids(alice_client.get(SEARCH, {"q": "forgotten"})) == []
    assert alice_client.get(SEARCH, {"q": "forgotten", "room": "old"}).status_code == 404


def test_edits_and_deletions_are_reflected_at_once(guest, lobby):
    """An edited body is found by its new words only; a moderator-deleted or removed message is
    never found."""
    edited = post(lobby, "original wording")
    edited.body = "revised wording"
    edited.save()
    assert ids(guest.get(SEARCH, {"q": "original"})) == []
    assert ids(guest.get(SEARCH, {"q": "revised"})) == [edited.id]
    Message.objects.filter(pk=edited.pk).update(body="bulk changed")
    assert ids(guest.get(SEARCH, {"q": "revised"})) == []
    assert ids(guest.get(SEARCH, {"q": "bulk"})) == [edited.id]
    hidden = post(lobby, "removed by moderator")
    Message.objects.filter(pk=hidden.pk).update(is_deleted=True)
    assert ids(guest.get(SEARCH, {"q": "moderator"})) == []
    gone = post(lobby, "erased entirely")
    gone.delete()
    assert ids(guest.get(SEARCH, {"q": "erased"})) == []
    again = post(lobby, "erased again later")
    assert ids(guest.get(SEARCH, {"q": "erased"})) == [again.id]


@pytest.mark.parametrize(
    "query",
    [
        '"quoted',
        "star*",
        "NEAR",
        "NEAR(a b)",
        "-minus",
        "a OR b",
        "col:umn",
        "(paren",
        "^caret",
        "AND",
    ],
)
def test_query_syntax_is_text(guest, lobby, query):
    """FTS5 and tsquery operators in the search text are words, not syntax: never a 500, and
    the words are searched for as written."""
    target = post(lobby, f"literal {query} here, with a b star minus quoted column paren caret")
    response = guest.get(SEARCH, {"q": query})
    assert response.status_code == 200, response.content
    assert target.id in ids(response)


def test_a_word_only_inside_another_word_is_no_hit(guest, lobby):
    """``star*`` is not a prefix search: it finds "star", not "starling"."""
    post(lobby, "a starling sang")
    assert ids(guest.get(SEARCH, {"q": "star*"})) == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "empty_query"),
        ("   ", "empty_query"),
        ("*** --", "empty_query"),
        ("x" * 201, "query_too_long"),
    ],
)
def test_bad_queries_are_400(guest, lobby, query, code):
    """No word, or more than 200 characters: 400 with the documented code."""
    response = guest.get(SEARCH, {"q": query})
    assert response.status_code == 400
    assert response.json()["error"] == code


def test_bad_cursor_is_400(guest, lobby):
    response = guest.get(SEARCH, {"q": "x", "before": "-1"})
    assert response.status_code == 400 and response.json()["error"] == "bad_parameter"


def test_older_results_page_with_before(guest, lobby):
    """``next_before`` pages further back; pages neither overlap nor skip."""
    made = [post(lobby, f"paging word {n}", n) for n in range(25)]
    first = guest.get(SEARCH, {"q": "paging"}).json()
    assert first["has_more"] is True and len(first["results"]) == 20
    second = guest.get(SEARCH, {"q": "paging", "before": first["next_before"]}).json()
    got = [r["message"]["id"] for r in first["results"] + second["results"]]
    assert got == [m.id for m in reversed(made)]
    assert second["has_more"] is False and second["next_before"] is None


@override_settings(RATELIMIT_SEARCH="3/h")
def test_rate_limited_per_session(guest, lobby):
    """The fourth search in a window is 429 with Retry-After; another session is not limited."""
    for _ in range(3):
        assert guest.get(SEARCH, {"q": "x"}).status_code == 200
    response = guest.get(SEARCH, {"q": "x"})
    assert response.status_code == 429 and response.json()["error"] == "rate_limited"
    assert int(response["Retry-After"]) >= 1
    page = guest.get("/search/", {"q": "x"})
    assert page.status_code == 429
    other = Client()
    other.get("/chats/lobby/")
    assert other.get(SEARCH, {"q": "x"}).status_code == 200


def test_snippet_escapes_the_body_and_marks_only_hits():
    """Body text is escaped; the only tags are our own ``<mark>``; long bodies are cut around the
    first hit with an ellipsis."""
    html = snippet('<script>alert("x")</script> & alert', ["alert"])
    assert html == (
        "&lt;script&gt;<mark>alert</mark>(&quot;x&quot;)&lt;/script&gt; &amp; <mark>alert</mark>"
    )
    long = "word " * 100 + "needle " + "word " * 100
    cut = snippet(long, ["needle"])
    assert cut.startswith("…") and cut.endswith("…") and "<mark>needle</mark>" in cut


def test_search_page_shows_escaped_snippets_and_links_in_context(guest, lobby):
    """The HTML results page: a hostile body is shown as text, the hit is marked, the link opens
    the room around the message."""
    msg = post(lobby, "<img src=x onerror=alert(1)> findme")
    page = guest.get("/search/", {"q": "findme"})
    assert page.status_code == 200
    html = page.content.decode()
    assert (
        "<img src=x" not in html
        and "&lt;img src=x onerror=alert(1)&gt; <mark>findme</mark>" in html
    )
    assert f'href="/chats/lobby/?around={msg.id}"' in html
    assert guest.get("/search/", {"q": ""}).status_code == 200  # just the form
    assert guest.get("/search/", {"q": "***"}).status_code == 400


def test_search_forms_on_room_list_and_room_page(guest, lobby):
    """The room list searches every readable room; the room page searches its room."""
    assert b'role="search"' in guest.get("/chats/").content
    room_page = guest.get("/chats/lobby/").content.decode()
    assert 'role="search"' in room_page and 'name="room" value="lobby"' in room_page


def test_history_around_a_message(guest, lobby):
    """``around=<id>``: the message with up to half a page before it and the rest after, with
    ``has_more`` (older) and ``has_newer``; the room page renders the same window."""
    made = [post(lobby, f"line {n}", n) for n in range(70)]
    target = made[10]
    body = guest.get(f"/api/rooms/lobby/messages/?around={target.id}&limit=6").json()
    assert [m["id"] for m in body["messages"]] == [m.id for m in made[7:13]]
    assert body["has_more"] is True and body["has_newer"] is True
    edge = guest.get(f"/api/rooms/lobby/messages/?around={made[1].id}&limit=6").json()
    assert [m["id"] for m in edge["messages"]] == [m.id for m in made[0:6]]
    assert edge["has_more"] is False and edge["has_newer"] is True
    bad = guest.get(f"/api/rooms/lobby/messages/?around={target.id}&before=3")
    assert bad.status_code == 400 and bad.json()["error"] == "bad_parameter"
    page = guest.get(f"/chats/lobby/?around={target.id}").content.decode()
    assert f'data-id="{target.id}"' in page and f'data-id="{made[69].id}"' not in page


def test_index_is_installed_and_used(db):
    """The migration installed this back end's index; on PostgreSQL the planner uses the GIN
    index for a search (sequential scans off, so the answer does not depend on table size)."""
    assert search_index.missing(connection) == []
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # A one-room test database whose room table has fresh statistics (any migration that
        # builds an index on it, e.g. 0010's direct_key) makes a nested loop over the room's
        # message index the cheapest plan; at any real size the GIN index wins.
        cursor.execute("SET LOCAL enable_nestloop = off")
        query = matching(Room.objects.all(), ["word"]).order_by("-id")[:21]
        sql, params = query.query.sql_with_params()
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert search_index.PG_INDEX in plan, plan


def test_lost_index_is_restored_after_migrate(guest, lobby):
    """A later migration that rebuilds ``chat_message`` (SQLite drops its triggers) cannot leave
    search blind: the post-migrate check reinstalls and refills the index."""
    search_index.uninstall(connection)
    assert search_index.missing(connection)
    msg = post(lobby, "survivor text")
    if connection.vendor == "postgresql":
        # The test's transaction still holds the deferred foreign-key checks of the insert,
        # which CREATE INDEX refuses to run beside (a real migrate has none pending).
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    search_index.ensure(using="default")
    assert search_index.missing(connection) == []
    assert ids(guest.get(SEARCH, {"q": "survivor"})) == [msg.id]
