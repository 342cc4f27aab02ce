"""Text the database cannot store (NUL, UTF-16 surrogates) is refused at every Django entry.

Bodies: the internal batch answers the item `bad_body` and stores the rest; `Message.full_clean`
refuses it. Room fields (name, slug, description): `Room.full_clean`, the admin's form and
`createroom` refuse them before anything is written. Runs on SQLite and on PostgreSQL (where a
NUL or a lone surrogate in a text column fails the whole statement).
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import RequestFactory

from chat.models import Message, Room

UNSTORABLE = ["a\x00b", "\ud800", "tail \udfff", "\udc00\ud800"]


def item(nonce: str, body: str) -> dict:
    return {
        "room": "lobby",
        "nonce": nonce,
        "body": body,
        "name": "x",
        "user_id": None,
        "guest": True,
        "uid": "g:0123456789abcdef",
    }


def test_batch_refuses_each_unstorable_body_and_stores_the_rest(signed, lobby):
    """Every unstorable body gets `bad_body` with its nonce; the good items around them land."""
    items = [item("ok-1", "before")]
    items += [item(f"bad-{i}", body) for i, body in enumerate(UNSTORABLE)]
    items += [item("ok-2", "after \U0001f600")]
    response = signed.post_json("/internal/messages/batch/", {"messages": items})
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True] + [False] * len(UNSTORABLE) + [True]
    for i, result in enumerate(results[1:-1]):
        assert (result["error"], result["nonce"]) == ("bad_body", f"bad-{i}")
    stored = Message.objects.filter(room=lobby).order_by("id")
    assert [(m.nonce, m.body) for m in stored] == [
        ("ok-1", "before"),
        ("ok-2", "after \U0001f600"),
    ]


@pytest.mark.parametrize("body", UNSTORABLE)
def test_message_full_clean_refuses_unstorable_body(lobby, body):
    """The model's own validation names the body field."""
    message = Message(room=lobby, author_name="x", body=body, nonce="n-1")
    with pytest.raises(ValidationError) as info:
        message.full_clean()
    assert "body" in info.value.message_dict


@pytest.mark.parametrize("field", ["name", "slug", "description"])
@pytest.mark.parametrize("bad", UNSTORABLE)
def test_room_full_clean_refuses_unstorable_fields(db, field, bad):
    """Name, slug and description each refuse NUL and surrogates, naming the field."""
    fields = {"name": "Room", "slug": "room", "description": "About"}
    fields[field] = bad
    with pytest.raises(ValidationError) as info:
        Room(**fields).full_clean()
    assert field in info.value.message_dict


@pytest.mark.parametrize("field", ["name", "description"])
@pytest.mark.parametrize("bad", UNSTORABLE)
def test_admin_room_form_refuses_unstorable_fields(db, django_user_model, field, bad):
    """The admin's own add form for rooms is invalid on that field; nothing is saved."""
    staff = django_user_model.objects.create_superuser("boss", password="pw-boss-123456")
    request = RequestFactory().get("/admin/chat/room/add/")
    request.user = staff
    form_class = admin.site._registry[Room].get_form(request)
    data = {"name": "Room", "slug": "new-room", "description": "About"}
    data[field] = bad
    form = form_class(data=data)
    assert not form.is_valid()
    assert field in form.errors
    assert not Room.objects.filter(slug="new-room").exists()


@pytest.mark.parametrize("option", ["--name", "--description"])
@pytest.mark.parametrize("bad", ["\udcff", "a\x00b"])
def test_createroom_refuses_unstorable_text(db, option, bad):
    """An argument that is not UTF-8 (Python hands it over as lone surrogates) or holds NUL is a
    clear error and creates no room."""
    with pytest.raises(CommandError, match="not valid"):
        call_command("createroom", "odd-room", option, bad, stdout=StringIO())
    assert not Room.objects.filter(slug="odd-room").exists()
