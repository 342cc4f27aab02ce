"""The internal API: signature checks, idempotent batches, per-item errors, history, health."""

from __future__ import annotations

import functools
import json
import time

import pytest
from django.test import Client, override_settings

from chat.models import Message, Room
from chat.signing import SignatureError, compute_signature, verify_signature

from .conftest import protocol_headers

BATCH = "/internal/messages/batch/"


def item(nonce="n-1", room="lobby", body="hi", name="alice", user_id=None, guest=True):
    return {
        "room": room,
        "nonce": nonce,
        "body": body,
        "name": name,
        "uid": "g:0123456789abcdef" if guest else f"u:{user_id}",
        "user_id": user_id,
        "guest": guest,
    }


# --- signatures -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unsigned_request_refused(client):
    """No signature headers: 403 bad_signature."""
    response = client.get("/internal/health/")
    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"


@pytest.mark.django_db
def test_wrong_secret_refused(client):
    """A signature made with another secret: 403 bad_signature."""
    response = client.get(
        "/internal/health/", **protocol_headers("GET", "/internal/health/", secret="x")
    )
    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"


@pytest.mark.django_db
def test_signature_binds_path_query_and_method(client):
    """A signature for one target, query or method does not authorise another."""
    headers = protocol_headers("GET", "/internal/rooms/lobby/messages/?after=1")
    assert client.get("/internal/rooms/lobby/messages/?after=2", **headers).status_code == 403
    headers = protocol_headers("POST", "/internal/health/")
    assert client.get("/internal/health/", **headers).status_code == 403


@pytest.mark.django_db
def test_body_is_signed(client):
    """Changing the body after signing is refused."""
    signed_body = json.dumps({"messages": [item()]}).encode()
    other_body = json.dumps({"messages": [item(body="evil")]}).encode()
    response = client.post(
        BATCH,
        other_body,
        content_type="application/json",
        **protocol_headers("POST", BATCH, signed_body),
    )
    assert response.status_code == 403
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_stale_request_refused(client):
    """A correct signature on a timestamp well outside the window (or ahead) is refused as
    stale_request. (Not 61 s: a second passing before Django reads its clock would make it 60.)"""
    for ts in (int(time.time()) - 90, int(time.time()) + 90):
        response = client.get(
            "/internal/health/", **protocol_headers("GET", "/internal/health/", ts=ts)
        )
        assert response.status_code == 403
        assert response.json()["error"] == "stale_request"


@pytest.mark.parametrize("offset, stale", [(-61, True), (-60, False), (60, False), (61, True)])
def test_the_window_edge_is_exact(offset: int, stale: bool):
    """The window's edge, on a fixed clock: 60 s either way is accepted, 61 s is not."""
    now = 1_795_000_000
    ts = str(now + offset)
    sig = compute_signature("k", ts, "GET", "/internal/health/", b"")
    verify = functools.partial(
        verify_signature, ts, sig, "GET", "/internal/health/", b"", ["k"], 60, now=now
    )
    if stale:
        with pytest.raises(SignatureError) as refused:
            verify()
        assert refused.value.code == "stale_request"
    else:
        verify()


@pytest.mark.django_db
def test_previous_secret_accepted_during_rotation(client):
    """CHAT_PREVIOUS_SHARED_SECRET is accepted, so rotation does not break running servers."""
    headers = protocol_headers("GET", "/internal/health/", secret="old-one")
    assert client.get("/internal/health/", **headers).status_code == 403
    with override_settings(CHAT_PREVIOUS_SHARED_SECRET="old-one"):
        assert client.get("/internal/health/", **headers).status_code == 200


@pytest.mark.django_db
def test_oversized_body_gets_413(client):
    """Bodies over 1 MiB are refused with 413 before the signature is even checked."""
    body = b"x" * (1024 * 1024 + 1)
    response = client.post(
        BATCH, body, content_type="application/json", **protocol_headers("POST", BATCH, body)
    )
    assert response.status_code == 413


@pytest.mark.django_db
def test_no_csrf_and_no_cookies(signed, alice):
    """Signed calls work without a CSRF token and never set a session cookie."""
    signed.client = Client(enforce_csrf_checks=True)
    signed.client.force_login(alice)
    response = signed.post_json(BATCH, {"messages": [item()]})
    assert response.status_code == 200
    assert "sessionid" not in response.cookies
    # The stored author comes from the item, not from the session's user.
    assert Message.objects.get().author_id is None


def test_health(signed, db):
    """GET /internal/health/ answers {"status": "ok"}."""
    response = signed.get("/internal/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


# --- batches ----------------------------------------------------------------------------------


def test_batch_stores_and_answers_messages(signed, lobby, alice):
    """New items are stored with the sender's identity and answered with the protocol shape."""
    response = signed.post_json(
        BATCH,
        {"messages": [item("a", body="  hello  ", name="alice", user_id=alice.id, guest=False)]},
    )
    assert response.status_code == 200
    (result,) = response.json()["results"]
    assert result["ok"] is True and result["created"] is True
    stored = Message.objects.get()
    assert stored.author == alice and stored.body == "hello"
    assert result["message"] == stored.to_dict()


def test_batch_is_idempotent(signed, lobby):
    """The same (room, nonce) twice stores one row and answers the original, created false."""
    first = signed.post_json(BATCH, {"messages": [item("same", body="one")]}).json()["results"][0]
    second = signed.post_json(BATCH, {"messages": [item("same", body="two")]}).json()["results"][0]
    assert Message.objects.count() == 1
    assert second["ok"] is True and second["created"] is False
    assert second["message"] == first["message"]
    assert second["message"]["body"] == "one"


def test_repeat_says_whether_the_original_survives(signed, lobby):
    """A repeat carries the original id and `deleted: false` beside the original message."""
    first = signed.post_json(BATCH, {"messages": [item("same")]}).json()["results"][0]
    (again,) = signed.post_json(BATCH, {"messages": [item("same", body="two")]}).json()["results"]
    assert again["created"] is False and again["deleted"] is False
    assert again["id"] == first["message"]["id"] and again["message"] == first["message"]


@pytest.mark.parametrize("body", ["secret", "  another  ", "x" * 4000])
def test_repeat_of_a_deleted_message_says_deleted_without_the_text(signed, lobby, body):
    """Resending the nonce of a message staff deleted stores nothing and answers
    `created: false, deleted: true` with the original id and no message: the chat server can
    never learn (and so never show again) the deleted text from a repeat."""
    first = signed.post_json(BATCH, {"messages": [item("gone", body=body)]}).json()["results"][0]
    Message.objects.filter(pk=first["message"]["id"]).update(is_deleted=True)
    for resent in (body, "different text"):
        (again,) = signed.post_json(BATCH, {"messages": [item("gone", body=resent)]}).json()[
            "results"
        ]
        assert again == {
            "ok": True,
            "created": False,
            "id": first["message"]["id"],
            "deleted": True,
            "nonce": "gone",
            "room": "lobby",
        }
    assert Message.objects.count() == 1


def test_repeat_inside_one_batch(signed, lobby):
    """A nonce repeated inside one batch is stored once; the repeat says created false."""
    results = signed.post_json(BATCH, {"messages": [item("r"), item("r")]}).json()["results"]
    assert [r["created"] for r in results] == [True, False]
    assert results[0]["message"]["id"] == results[1]["message"]["id"]
    assert Message.objects.count() == 1


def test_same_nonce_in_two_rooms(signed, lobby):
    """Nonces are unique per room only."""
    Room.objects.create(slug="other", name="Other", allow_guests=True)
    results = signed.post_json(BATCH, {"messages": [item("n"), item("n", room="other")]}).json()[
        "results"
    ]
    assert all(r["created"] for r in results)
    assert Message.objects.count() == 2


def test_per_item_errors_do_not_fail_the_rest(signed, lobby, archived_room):
    """Each bad item gets its own error code, in order, and the good ones are stored."""
    items = [
        item("ok-1"),
        item("u", room="gone"),
        item("a", room="old"),
        item("e", body="   "),
        item("l", body="x" * 4001),
        item("bad nonce"),
        {"room": "lobby", "nonce": "t", "body": "hi", "name": "a", "user_id": "7", "guest": False},
        "not an object",
        item("ok-2", body="x" * 4000),
    ]
    response = signed.post_json(BATCH, {"messages": items})
    results = response.json()["results"]
    assert [r.get("error") for r in results] == [
        None,
        "unknown_room",
        "room_archived",
        "empty_body",
        "body_too_long",
        "bad_nonce",
        "bad_item",
        "bad_item",
        None,
    ]
    assert results[1] == {
        "ok": False,
        "nonce": "u",
        "room": "gone",
        "error": "unknown_room",
        "message": "No such room.",
    }
    assert sorted(Message.objects.values_list("nonce", flat=True)) == ["ok-1", "ok-2"]


def test_retry_after_archive_returns_original(signed, lobby):
    """A retry of a stored message still answers the original after the room is archived."""
    signed.post_json(BATCH, {"messages": [item("k")]})
    Room.objects.filter(slug="lobby").update(is_archived=True)
    (result,) = signed.post_json(BATCH, {"messages": [item("k")]}).json()["results"]
    assert result["ok"] is True and result["created"] is False


@pytest.mark.parametrize(
    "payload",
    [[], {"messages": "x"}, {"nothing": []}, {"messages": [item(str(i)) for i in range(1001)]}],
)
def test_malformed_batch_is_400(signed, lobby, payload):
    """A top level that is not {"messages": [...]} with at most 1,000 items answers 400."""
    assert signed.post_json(BATCH, payload).status_code == 400
    assert not Message.objects.exists()


def test_not_json_is_400(client, lobby):
    """A signed body that is not JSON answers 400."""
    body = b"{nope"
    response = client.post(
        BATCH, body, content_type="application/json", **protocol_headers("POST", BATCH, body)
    )
    assert response.status_code == 400


def test_batch_query_count_is_constant(signed, lobby, django_assert_max_num_queries):
    """A batch of 200 uses a handful of queries, not one per message."""
    items = [item(f"q{i}") for i in range(200)]
    with django_assert_max_num_queries(12):
        response = signed.post_json(BATCH, {"messages": items})
    assert all(r["created"] for r in response.json()["results"])
    ids = [r["message"]["id"] for r in response.json()["results"]]
    assert ids == sorted(ids) and len(set(ids)) == 200


# --- history and room -------------------------------------------------------------------------


def _fill(room: Room, n: int) -> list[int]:
    return [
        Message.objects.create(room=room, author_name="a", body=f"m{i}", nonce=f"f{i}").id
        for i in range(n)
    ]


def test_internal_history_paging(signed, lobby):
    """Without after: newest limit; with after: oldest limit above it; deleted ones hidden."""
    ids = _fill(lobby, 5)
    Message.objects.filter(id=ids[2]).update(is_deleted=True)
    data = signed.get("/internal/rooms/lobby/messages/?limit=2").json()
    assert [m["id"] for m in data["messages"]] == ids[3:5]
    data = signed.get(f"/internal/rooms/lobby/messages/?after={ids[0]}&limit=2").json()
    assert [m["id"] for m in data["messages"]] == [ids[1], ids[3]]
    assert data["has_more"] is True
    data = signed.get(f"/internal/rooms/lobby/messages/?after={ids[3]}").json()
    assert [m["id"] for m in data["messages"]] == [ids[4]] and data["has_more"] is False


def test_internal_history_unknown_and_archived(signed, archived_room):
    """Unknown rooms are 404 unknown_room; archived rooms still answer."""
    response = signed.get("/internal/rooms/nope/messages/")
    assert response.status_code == 404 and response.json()["error"] == "unknown_room"
    assert signed.get("/internal/rooms/old/messages/").status_code == 200


def test_internal_history_bad_parameter(signed, lobby):
    """Non-numeric parameters answer 400."""
    assert signed.get("/internal/rooms/lobby/messages/?after=x").status_code == 400
    assert signed.get("/internal/rooms/lobby/messages/?limit=0").status_code == 400


def test_internal_room_detail(signed, lobby, archived_room):
    """GET /internal/rooms/<slug>/ describes the room and its last message id."""
    assert signed.get("/internal/rooms/lobby/").json() == {
        "slug": "lobby",
        "name": "Lobby",
        "allow_guests": True,
        "is_archived": False,
        "last_id": None,
    }
    ids = _fill(lobby, 2)
    assert signed.get("/internal/rooms/lobby/").json()["last_id"] == ids[-1]
    assert signed.get("/internal/rooms/old/").json()["is_archived"] is True
    assert signed.get("/internal/rooms/nope/").status_code == 404
