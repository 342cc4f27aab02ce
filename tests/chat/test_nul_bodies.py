"""A NUL character in a body is refused per item: PostgreSQL cannot store it in text."""

from chat.models import Message


def item(nonce: str, body: str) -> dict:
    return {
        "room": "lobby",
        "nonce": nonce,
        "body": body,
        "name": "x",
        "uid": "g:0123456789abcdef",
        "user_id": None,
        "guest": True,
    }


def test_nul_body_is_refused_per_item_and_the_rest_of_the_batch_is_stored(signed, lobby):
    """One NUL body gets `bad_body`; the other item of the same batch is stored (both DBs)."""
    response = signed.post_json(
        "/internal/messages/batch/", {"messages": [item("n-1", "a\x00b"), item("n-2", "fine")]}
    )
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["ok"] is False and first["error"] == "bad_body" and first["nonce"] == "n-1"
    assert second["ok"] is True and second["message"]["body"] == "fine"
    assert list(Message.objects.filter(room=lobby).values_list("nonce", flat=True)) == ["n-2"]
