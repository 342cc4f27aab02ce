"""Attachments in Django: the upload endpoint and its limits, images (detection, bombs, metadata),
serving files, tying uploads to messages in both batch paths, the message shape, deletion.

Storage is a temporary MEDIA_ROOT (the default FileSystemStorage), so every assertion about a
file looks at real files.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from chat.models import PRIVATE, Attachment, Membership, Message, Room

from . import test_admin
from .conftest import protocol_headers
from .test_fastpath import call_fast

chat_server = test_admin.chat_server
BATCH = "/internal/messages/batch/"
UPLOAD = "/api/rooms/{}/attachments/"
GPS_IFD = 0x8825
ORIENTATION = 0x0112


def png(size=(64, 48), color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_gps(size=(80, 40)) -> bytes:
    """A JPEG whose EXIF holds a GPS position and orientation 6 (rotate 90° to show upright)."""
    image = Image.new("RGB", size, (10, 120, 200))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (48.0, 51.0, 29.0)
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    return out.getvalue()


def named(data: bytes, name: str, content_type: str = "application/octet-stream"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


def upload(client: Client, slug: str, data: bytes, name: str, content_type: str = ""):
    return client.post(
        UPLOAD.format(slug), {"file": named(data, name, content_type or "application/octet-stream")}
    )


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture(autouse=True)
def media(settings, tmp_path) -> Path:
    """A fresh MEDIA_ROOT for each test (FileSystemStorage follows the setting)."""
    root = tmp_path / "media"
    settings.MEDIA_ROOT = str(root)
    return root


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="correct horse battery")


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def item(nonce, uid, user_id, attachments=None, room="lobby", body="") -> dict:
    data = {
        "room": room,
        "nonce": nonce,
        "body": body,
        "name": "alice",
        "uid": uid,
        "user_id": user_id,
        "guest": False,
    }
    if attachments is not None:
        data["attachments"] = attachments
    return data


def store(client: Client, items: list[dict]) -> list[dict]:
    body = json.dumps({"messages": items}).encode()
    answer = client.post(
        BATCH, data=body, content_type="application/json", **protocol_headers("POST", BATCH, body)
    )
    assert answer.status_code == 200, answer.content
    return answer.json()["results"]


# --- uploading --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_image_upload_answers_the_shape_and_stores_random_names(alice_client, lobby, media):
    """201 with the contract's shape; the file and its WebP thumbnail are stored under random
    names (never the uploader's file name); the row is unsent."""
    answer = upload(alice_client, "lobby", png((640, 480)), "My Holiday.png", "image/png")
    assert answer.status_code == 201, answer.content
    shape = answer.json()
    assert len(shape["id"]) == 22
    assert shape["name"] == "My Holiday.png"
    assert shape["kind"] == "image" and shape["content_type"] == "image/png"
    assert (shape["width"], shape["height"]) == (640, 480)
    assert shape["url"] == f"/files/{shape['id']}/My%20Holiday.png"
    assert shape["thumbnail"] == {
        "url": f"/files/{shape['id']}/thumb.webp",
        "width": 320,
        "height": 240,
    }
    files = stored_files(media)
    assert len(files) == 2
    assert all("Holiday" not in str(path) for path in files)
    row = Attachment.objects.get(token=shape["id"])
    assert row.message_id is None and row.size == shape["size"]
    with Image.open(media / row.thumbnail_name) as thumb:
        assert thumb.format == "WEBP" and thumb.size == (320, 240)


@pytest.mark.django_db
def test_file_names_are_cleaned(alice_client, lobby, media):
    """A name with a path, control characters, a leading dot or markup keeps its last segment as
    text; a very long one is cut to 255 characters with its extension; no name reaches a path."""
    cases = {
        "../../etc/passwd": "passwd",
        "C:\\Users\\x\\evil.exe": "evil.exe",
        "bad\u202ename\x07.txt": "badname.txt",
        ".htaccess": "htaccess",
        '<img src=x onerror="alert(1)">.txt': '<img src=x onerror="alert(1)">.txt',
        "a" * 300 + ".pdf": "a" * 251 + ".pdf",
        # As Chromium and Firefox send `a"b".pdf` and a name with a line break (HTML standard's
        # multipart escapes); other percent signs are the name's own.
        "a%22b%22.pdf": 'a"b".pdf',
        "two%0D%0Alines.txt": "twolines.txt",
        "100%25 %41.txt": "100%25 %41.txt",
    }
    for sent, kept in cases.items():
        shape = upload(alice_client, "lobby", b"x", sent).json()
        assert shape["name"] == kept
    paths = [str(p.relative_to(media)) for p in stored_files(media)]
    assert len(paths) == len(cases)
    assert all(p.startswith("attachments/") and "passwd" not in p for p in paths)


@pytest.mark.django_db
def test_other_files_are_kind_file(alice_client, lobby):
    """A PDF is a file: no dimensions, no thumbnail, its declared type kept as data."""
    answer = upload(alice_client, "lobby", b"%PDF-1.4 hello", "report.pdf", "application/pdf")
    assert answer.status_code == 201
    shape = answer.json()
    assert shape["kind"] == "file" and shape["thumbnail"] is None
    assert shape["width"] is None and shape["height"] is None
    assert shape["content_type"] == "application/pdf" and shape["size"] == 14


@pytest.mark.django_db
def test_who_may_upload(alice_client, bob_client, lobby, archived_room, alice):
    """Guests: 403 sign_in_required; a non-member of a private room: refused as for history;
    unknown or archived room: 404; GET: 405."""
    assert upload(Client(), "lobby", b"x", "a.txt").json()["error"] == "sign_in_required"
    private = Room.objects.create(slug="secret", name="Secret", visibility=PRIVATE)
    Membership.objects.create(room=private, user=alice, role="owner")
    refused = upload(bob_client, "secret", b"x", "a.txt")
    # As every path answers an outsider of a private room: as a room that does not exist.
    assert (refused.status_code, refused.json()["error"]) == (404, "unknown_room")
    assert upload(alice_client, "secret", b"x", "a.txt").status_code == 201
    assert upload(alice_client, "nowhere", b"x", "a.txt").status_code == 404
    assert upload(alice_client, "old", b"x", "a.txt").status_code == 404
    assert alice_client.get(UPLOAD.format("lobby")).status_code == 405


@pytest.mark.django_db
def test_upload_needs_the_csrf_token(alice, lobby):
    """The view is exempt from the middleware only to check CSRF itself: without the token, 403."""
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    answer = upload(strict, "lobby", b"x", "a.txt")
    assert answer.status_code == 403
    assert not Attachment.objects.exists()
    strict.get("/chats/lobby/")  # sets the csrftoken cookie
    token = strict.cookies["csrftoken"].value
    answer = strict.post(
        UPLOAD.format("lobby"), {"file": named(b"x", "a.txt")}, HTTP_X_CSRFTOKEN=token
    )
    assert answer.status_code == 201


@pytest.mark.django_db
def test_bad_uploads(alice_client, lobby):
    """No file part, two files, another part name, an empty file: 400 bad_upload."""
    assert alice_client.post(UPLOAD.format("lobby"), {"x": "y"}).json()["error"] == "bad_upload"
    two = alice_client.post(
        UPLOAD.format("lobby"), {"file": [named(b"a", "a.txt"), named(b"b", "b.txt")]}
    )
    assert (two.status_code, two.json()["error"]) == (400, "bad_upload")
    other = alice_client.post(UPLOAD.format("lobby"), {"other": named(b"a", "a.txt")})
    assert other.json()["error"] == "bad_upload"
    assert upload(alice_client, "lobby", b"", "empty.txt").json()["error"] == "bad_upload"
    assert not Attachment.objects.exists()


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


class Counting(io.RawIOBase):
    """A request body that counts what is read of it."""

    def __init__(self, data: bytes) -> None:
        self.data = io.BytesIO(data)
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self.data.read(size)
        self.read_bytes += len(chunk)
        return chunk


def multipart(name: str, payload: bytes, boundary: str = "BoUnDaRy") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )


@pytest.mark.django_db
def test_content_length_over_the_limit_is_answered_before_reading(alice_client, lobby, settings):
    """Content-Length already over the limit: 413 file_too_large naming the limit in MiB, and
    not one byte of the body is read."""
    settings.CHAT_MAX_FILE_BYTES = 10 * 1024 * 1024
    answer = alice_client.generic(
        "POST",
        UPLOAD.format("lobby"),
        b"",
        # With an empty `data` the test client sets no content type: given here with the rest.
        CONTENT_TYPE="multipart/form-data; boundary=BoUnDaRy",
        CONTENT_LENGTH=str(50 * 1024 * 1024),
        **{"wsgi.input": Unreadable()},
    )
    assert answer.status_code == 413
    assert answer.json() == {"error": "file_too_large", "message": "A file has at most 10 MiB."}


@pytest.mark.django_db
def test_a_file_over_the_limit_stops_the_reading_at_the_limit(alice_client, lobby, settings):
    """A body whose Content-Length passes the first check but whose file is over the limit: the
    upload handler stops reading soon after the limit (not the whole body), 413, nothing kept."""
    limit = 200_000
    settings.CHAT_MAX_FILE_BYTES = limit
    body = multipart("big.bin", b"x" * (limit + 60_000))
    stream = Counting(body)
    answer = alice_client.generic(
        "POST",
        UPLOAD.format("lobby"),
        b"",
        # With an empty `data` the test client sets no content type: given here with the rest.
        CONTENT_TYPE="multipart/form-data; boundary=BoUnDaRy",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": stream},
    )
    assert answer.status_code == 413, answer.content
    assert answer.json()["error"] == "file_too_large"
    assert stream.read_bytes < limit + 40_000 < len(body)
    assert not Attachment.objects.exists()


@pytest.mark.django_db
def test_daily_quota(alice_client, lobby, settings):
    """Past CHAT_UPLOAD_BYTES_PER_DAY (uploads of the last 24 hours): 429 upload_quota with
    retry_after; uploads older than a day no longer count."""
    settings.CHAT_UPLOAD_BYTES_PER_DAY = 1000
    assert upload(alice_client, "lobby", b"a" * 600, "a.txt").status_code == 201
    refused = upload(alice_client, "lobby", b"b" * 600, "b.txt")
    assert refused.status_code == 429
    data = refused.json()
    assert data["error"] == "upload_quota" and 0 < data["retry_after"] <= 86400
    assert refused["Retry-After"] == str(data["retry_after"])
    Attachment.objects.update(created_at=timezone.now() - timedelta(days=1, seconds=1))
    assert upload(alice_client, "lobby", b"b" * 600, "b.txt").status_code == 201


@pytest.mark.django_db
def test_uploads_are_rate_limited(alice_client, lobby, settings):
    """RATELIMIT_UPLOAD per user: past it, 429 rate_limited with Retry-After."""
    settings.RATELIMIT_UPLOAD = "2/m"
    assert upload(alice_client, "lobby", b"a", "a.txt").status_code == 201
    assert upload(alice_client, "lobby", b"a", "a.txt").status_code == 201
    refused = upload(alice_client, "lobby", b"a", "a.txt")
    assert refused.status_code == 429 and refused.json()["error"] == "rate_limited"
    assert int(refused["Retry-After"]) >= 1


# --- images -----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("pixels", [(60, 60), (200, 200)])
def test_decompression_bombs_are_refused(alice_client, lobby, settings, media, pixels):
    """An image over CHAT_MAX_IMAGE_PIXELS (Pillow's warning band and its error band alike):
    400 bad_image, nothing stored."""
    settings.CHAT_MAX_IMAGE_PIXELS = 2500
    answer = upload(alice_client, "lobby", png(pixels), "bomb.png", "image/png")
    assert (answer.status_code, answer.json()["error"]) == (400, "bad_image")
    assert stored_files(media) == [] and not Attachment.objects.exists()


@pytest.mark.django_db
def test_a_broken_image_is_refused(alice_client, lobby):
    """Bytes that claim to be PNG but are not, and a truncated PNG: 400 bad_image."""
    fake = upload(alice_client, "lobby", b"<html>not an image</html>", "x.png", "image/png")
    assert fake.json()["error"] == "bad_image"
    truncated = upload(alice_client, "lobby", png((300, 300))[:200], "t.png", "image/png")
    assert truncated.json()["error"] == "bad_image"


@pytest.mark.django_db
def test_gps_is_stripped_from_the_thumbnail_and_the_original(alice_client, lobby, media):
    """A JPEG with GPS EXIF: the thumbnail has no EXIF at all; the stored original keeps only
    its orientation (no GPS, no camera make); dimensions are the upright ones."""
    original = jpeg_with_gps((80, 40))
    with Image.open(io.BytesIO(original)) as source:  # the test's own input really has GPS
        assert source.getexif().get_ifd(GPS_IFD)
    answer = upload(alice_client, "lobby", original, "photo.jpg", "image/jpeg")
    assert answer.status_code == 201
    shape = answer.json()
    assert (shape["width"], shape["height"]) == (40, 80)  # orientation 6 turns it upright
    row = Attachment.objects.get(token=shape["id"])
    with Image.open(media / row.thumbnail_name) as thumb:
        assert "exif" not in thumb.info and not thumb.getexif()
    with Image.open(media / row.storage_name) as stored:
        exif = stored.getexif()
        assert not exif.get_ifd(GPS_IFD) and GPS_IFD not in exif
        assert 0x010F not in exif
        assert exif.get(ORIENTATION) == 6
    assert b"PhoneMaker" not in (media / row.storage_name).read_bytes()


# --- serving ----------------------------------------------------------------------------------


def sent(client, alice, token, nonce="n-sent", room="lobby"):
    (result,) = store(client, [item(nonce, f"u:{alice.pk}", alice.pk, [token], room=room)])
    assert result["ok"], result
    return result


@pytest.mark.django_db
def test_files_are_served_with_safe_headers(alice_client, bob_client, lobby, alice):
    """An image inline with its detected type; HTML and SVG-with-script as downloads
    (octet-stream, attachment); every answer nosniff with the sandboxing CSP."""
    image = upload(alice_client, "lobby", png(), "pic.png", "image/png").json()
    html = upload(alice_client, "lobby", b"<script>alert(1)</script>", "x.html", "text/html").json()
    svg_bytes = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    svg = upload(alice_client, "lobby", svg_bytes, "x.svg", "image/svg+xml").json()
    assert html["kind"] == svg["kind"] == "file"
    sent(Client(), alice, image["id"], "n1")
    sent(Client(), alice, html["id"], "n2")
    sent(Client(), alice, svg["id"], "n3")
    shown = bob_client.get(image["url"])
    assert shown.status_code == 200 and shown["Content-Type"] == "image/png"
    assert shown["Content-Disposition"] == "inline; filename*=UTF-8''pic.png"
    assert b"".join(shown.streaming_content) == png()
    thumb = bob_client.get(image["thumbnail"]["url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/webp"
    for shape in (html, svg):
        answer = bob_client.get(shape["url"])
        assert answer.status_code == 200
        assert answer["Content-Type"] == "application/octet-stream"
        assert answer["Content-Disposition"].startswith("attachment; filename*=UTF-8''x.")
    for answer in (shown, thumb, bob_client.get(html["url"])):
        assert answer["X-Content-Type-Options"] == "nosniff"
        assert answer["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert answer["Cache-Control"].startswith("private")
    assert bob_client.get(f"/files/{image['id']}/other-name.png").status_code == 404
    assert bob_client.get(f"/files/{image['id']}x/pic.png").status_code == 404


@pytest.mark.django_db
def test_who_may_fetch_a_file(alice_client, bob_client, alice, bob):
    """An unsent upload is its uploader's alone; a sent one in a private room answers its
    members and 404s for anyone else (signed-in non-member and visitor alike)."""
    private = Room.objects.create(slug="secret", name="Secret", visibility=PRIVATE)
    Membership.objects.create(room=private, user=alice, role="owner")
    shape = upload(alice_client, "secret", png(), "p.png", "image/png").json()
    assert alice_client.get(shape["url"]).status_code == 200
    assert bob_client.get(shape["url"]).status_code == 404
    Membership.objects.create(room=private, user=bob, role="member")
    assert bob_client.get(shape["url"]).status_code == 404  # unsent: still the uploader's
    sent(Client(), alice, shape["id"], room="secret")
    assert bob_client.get(shape["url"]).status_code == 200
    assert bob_client.get(shape["thumbnail"]["url"]).status_code == 200
    Membership.objects.filter(user=bob).delete()
    assert bob_client.get(shape["url"]).status_code == 404
    assert bob_client.get(shape["thumbnail"]["url"]).status_code == 404
    assert Client().get(shape["url"]).status_code == 404


@pytest.mark.django_db
def test_x_accel_redirect(alice_client, alice, lobby, settings):
    """With CHAT_FILES_ACCEL_REDIRECT the answer has no body and names the stored file under the
    prefix, with the same headers."""
    settings.CHAT_FILES_ACCEL_REDIRECT = "/protected-media/"
    shape = upload(alice_client, "lobby", png(), "p.png", "image/png").json()
    row = Attachment.objects.get(token=shape["id"])
    answer = alice_client.get(shape["url"])
    assert answer.status_code == 200 and answer.content == b""
    assert answer["X-Accel-Redirect"] == "/protected-media/" + row.storage_name
    assert answer["X-Content-Type-Options"] == "nosniff"


# --- messages ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_message_takes_its_uploads_in_the_order_it_names_them(alice_client, alice, lobby):
    """An item with attachments (and an empty body) is stored with them in the item's order (the
    composer's, whichever upload finished first); history and search carry the same list; a
    resend of the nonce returns the original with its attachments."""
    first = upload(alice_client, "lobby", png(), "one.png", "image/png").json()
    second = upload(alice_client, "lobby", b"two", "two.txt", "text/plain").json()
    uid = f"u:{alice.pk}"
    (result,) = store(Client(), [item("n-1", uid, alice.pk, [second["id"], first["id"]])])
    assert result["ok"] and result["created"]
    message = result["message"]
    assert message["body"] == ""
    assert message["attachments"] == [second, first]
    history = alice_client.get("/api/rooms/lobby/messages/").json()["messages"]
    assert history[-1]["attachments"] == [second, first]
    (again,) = store(Client(), [item("n-1", uid, alice.pk, [first["id"], second["id"]])])
    assert again["created"] is False and again["message"]["attachments"] == [second, first]
    assert Attachment.objects.filter(message_id=message["id"]).count() == 2


@pytest.mark.django_db
def test_attachments_not_yours_are_refused(alice_client, bob_client, alice, bob, lobby):
    """Someone else's upload, an upload to another room, one already sent, an unknown id, a bad
    list: the item is refused bad_attachments (with its nonce), nothing is stored or claimed."""
    Room.objects.create(slug="other", name="Other", allow_guests=True)
    mine = upload(alice_client, "lobby", b"a", "a.txt").json()["id"]
    elsewhere = upload(alice_client, "other", b"a", "a.txt").json()["id"]
    bobs = upload(bob_client, "lobby", b"b", "b.txt").json()["id"]
    uid = f"u:{alice.pk}"
    results = store(
        Client(),
        [
            item("a", uid, alice.pk, [bobs]),
            item("b", uid, alice.pk, [elsewhere]),
            item("c", uid, alice.pk, ["A" * 22]),
            item("d", uid, alice.pk, []),
            item("e", uid, alice.pk, [mine, mine]),
            item("f", uid, alice.pk, "nope"),
            item("g", uid, alice.pk, [mine]),
            item("h", uid, alice.pk, [mine], body="again"),
        ],
    )
    codes = [(r.get("nonce"), r.get("error")) for r in results]
    assert codes[:6] == [(n, "bad_attachments") for n in "abcdef"]
    assert results[6]["ok"] and results[6]["created"]
    assert codes[7] == ("h", "bad_attachments")  # already taken by "g" in the same batch
    assert Message.objects.count() == 1
    assert Attachment.objects.filter(message__isnull=False).count() == 1


@pytest.mark.django_db
def test_an_empty_body_still_needs_attachments(alice, lobby):
    """Without attachments the old rule stands: an empty body is empty_body."""
    (result,) = store(Client(), [item("e", f"u:{alice.pk}", alice.pk)])
    assert result["error"] == "empty_body"


@pytest.mark.django_db
def test_the_fast_path_claims_uploads_like_the_view(alice_client, alice, lobby):
    """The lean WSGI path (chat/fastpath.py, what gunicorn serves) stores the same shape."""
    from django.core.handlers.wsgi import WSGIHandler

    from chat.fastpath import InternalFastPath

    shape = upload(alice_client, "lobby", png(), "p.png", "image/png").json()
    other = upload(alice_client, "lobby", b"x", "x.txt").json()
    uid = f"u:{alice.pk}"
    body = json.dumps(
        {"messages": [item("fast", uid, alice.pk, [shape["id"]]), item("bad", uid, "x", [])]}
    ).encode()
    status, payload, _ = call_fast(
        InternalFastPath(WSGIHandler()), "POST", BATCH, body, protocol_headers("POST", BATCH, body)
    )
    assert status == 200
    results = json.loads(payload)["results"]
    assert results[0]["message"]["attachments"] == [shape]
    assert results[1]["error"] == "bad_item"
    assert Attachment.objects.get(token=other["id"]).message_id is None


@pytest.mark.django_db
def test_lists_of_messages_cost_no_query_per_attachment(
    alice_client, alice, lobby, django_assert_max_num_queries
):
    """History of 1 or 6 messages with attachments: the same number of queries (prefetched)."""
    uid = f"u:{alice.pk}"

    def send(n: int) -> None:
        token = upload(alice_client, "lobby", b"x", f"{n}.txt").json()["id"]
        store(Client(), [item(f"n{n}", uid, alice.pk, [token])])

    send(0)
    with CaptureQueriesContext(connection) as one:
        assert alice_client.get("/api/rooms/lobby/messages/").status_code == 200
    first = len(one)  # read now: every request clears the connection's query log
    assert first > 0
    for n in range(1, 6):
        send(n)
    with django_assert_max_num_queries(first):
        data = alice_client.get("/api/rooms/lobby/messages/").json()
    assert all(len(m["attachments"]) == 1 for m in data["messages"])


@pytest.mark.django_db
def test_a_reply_to_a_message_of_files_only_quotes_the_files(
    alice_client, alice, lobby, django_assert_max_num_queries
):
    """A parent with no text is quoted by its files (a paperclip and their names, in the order
    it named them), in the batch answer and in history; and a page of such replies still costs
    a fixed number of queries (the parents' files are prefetched)."""
    uid = f"u:{alice.pk}"
    tokens = [upload(alice_client, "lobby", b"x", name).json()["id"] for name in ("b.pdf", "a.txt")]
    [parent] = store(Client(), [item("p", uid, alice.pk, tokens)])
    parent_id = parent["message"]["id"]

    def reply(n: int) -> dict:
        answer = item(f"r{n}", uid, alice.pk, body=f"nice {n}")
        answer["reply_to"] = parent_id
        return store(Client(), [answer])[0]["message"]

    assert reply(0)["reply_to"]["snippet"] == "📎 b.pdf, a.txt"
    with CaptureQueriesContext(connection) as one:
        page = alice_client.get("/api/rooms/lobby/messages/").json()["messages"]
    first = len(one)
    assert page[-1]["reply_to"]["snippet"] == "📎 b.pdf, a.txt"
    for n in range(1, 6):
        other = upload(alice_client, "lobby", b"x", f"{n}.txt").json()["id"]
        [files_only] = store(Client(), [item(f"f{n}", uid, alice.pk, [other])])
        answer = item(f"q{n}", uid, alice.pk, body="and this")
        answer["reply_to"] = files_only["message"]["id"]
        store(Client(), [answer])
    with django_assert_max_num_queries(first):
        page = alice_client.get("/api/rooms/lobby/messages/").json()["messages"]
    quotes = [m["reply_to"]["snippet"] for m in page if m["reply_to"]]
    assert quotes[-5:] == [f"📎 {n}.txt" for n in range(1, 6)]


@pytest.mark.django_db
def test_search_results_carry_attachments(alice_client, alice, lobby):
    """A search hit's message has its attachments."""
    token = upload(alice_client, "lobby", b"x", "notes.txt").json()["id"]
    store(Client(), [item("s", f"u:{alice.pk}", alice.pk, [token], body="findme please")])
    results = alice_client.get("/api/search/?q=findme").json()["results"]
    assert [a["id"] for a in results[0]["message"]["attachments"]] == [token]


# --- deletion ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_deleting_a_message_deletes_its_files(
    alice_client, alice, lobby, media, django_capture_on_commit_callbacks
):
    """The author deletes the message: its rows go, its files leave storage after commit, and
    the file URL answers 404."""
    shape = upload(alice_client, "lobby", png(), "p.png", "image/png").json()
    message_id = sent(Client(), alice, shape["id"])["message"]["id"]
    assert len(stored_files(media)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        answer = alice_client.post(f"/api/rooms/lobby/messages/{message_id}/delete/")
    assert answer.status_code == 200
    assert stored_files(media) == []
    assert not Attachment.objects.exists()
    assert alice_client.get(shape["url"]).status_code == 404


@pytest.mark.django_db
def test_moderation_and_room_deletion_delete_files(
    alice_client, alice, lobby, media, django_capture_on_commit_callbacks
):
    """Staff moderation in the admin (a bulk update) and deleting the whole room remove files."""
    from django.contrib.admin.sites import site

    from chat.admin import MessageAdmin

    first = upload(alice_client, "lobby", b"a", "a.txt").json()
    message_id = sent(Client(), alice, first["id"], "m1")["message"]["id"]
    request = type("R", (), {"user": alice, "_messages": None})()
    admin = MessageAdmin(Message, site)
    admin.message_user = lambda *args, **kwargs: None
    with django_capture_on_commit_callbacks(execute=True):
        admin.moderate_messages(request, Message.objects.filter(pk=message_id))
    assert stored_files(media) == []
    room = Room.objects.create(slug="gone", name="Gone", allow_guests=True)
    second = upload(alice_client, "gone", png(), "p.png", "image/png").json()
    sent(Client(), alice, second["id"], "m2", room="gone")
    assert len(stored_files(media)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        room.delete()
    assert stored_files(media) == []


@pytest.mark.django_db
def test_unsent_uploads_older_than_the_ttl_are_purged(
    alice_client, alice, lobby, media, django_capture_on_commit_callbacks
):
    """The next upload (and `manage.py purgeuploads`) deletes uploads never sent within
    CHAT_UNSENT_UPLOAD_TTL, files included; sent ones and fresh ones stay."""
    stale = upload(alice_client, "lobby", b"old", "old.txt").json()["id"]
    kept = upload(alice_client, "lobby", b"sent", "sent.txt").json()["id"]
    sent(Client(), alice, kept)
    Attachment.objects.update(created_at=timezone.now() - timedelta(days=2))
    with django_capture_on_commit_callbacks(execute=True):
        fresh = upload(alice_client, "lobby", b"new", "new.txt").json()["id"]
    assert set(Attachment.objects.values_list("token", flat=True)) == {kept, fresh}
    assert len(stored_files(media)) == 2
    Attachment.objects.filter(token=fresh).update(created_at=timezone.now() - timedelta(days=2))
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("purgeuploads", stdout=out)
    assert "Deleted 1" in out.getvalue()
    assert list(Attachment.objects.values_list("token", flat=True)) == [kept]
    assert stale not in {p.name for p in stored_files(media)}


@pytest.mark.django_db
def test_admin_lists_attachments(alice_client, alice, lobby, django_user_model):
    """The admin's attachment list shows name, size, room, uploader and message."""
    upload(alice_client, "lobby", b"x" * 2048, "listed.txt")
    staff = django_user_model.objects.create_superuser("root", password="pw-pw-pw-pw")
    admin_client = Client()
    admin_client.force_login(staff)
    page = admin_client.get("/admin/chat/attachment/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "listed.txt" in text and "2.0 KiB" in text and "Lobby" in text and "alice" in text


@pytest.mark.django_db
def test_a_message_with_files_may_lose_its_caption(alice_client, alice, lobby):
    """Editing the text of a message with attachments down to nothing keeps the message (its
    files are its content); without attachments an empty edit is still empty_body, and the
    model's validation (admin forms) follows the same rule."""
    token = upload(alice_client, "lobby", b"x", "a.txt").json()["id"]
    with_files = sent(Client(), alice, token, "cap")["message"]["id"]
    edit = alice_client.post(
        f"/api/rooms/lobby/messages/{with_files}/edit/",
        {"body": "  "},
        content_type="application/json",
    )
    assert edit.status_code == 200 and edit.json()["message"]["body"] == ""
    Message.objects.get(pk=with_files).full_clean()
    (plain,) = store(Client(), [item("plain", f"u:{alice.pk}", alice.pk, body="text")])
    refused = alice_client.post(
        f"/api/rooms/lobby/messages/{plain['message']['id']}/edit/",
        {"body": ""},
        content_type="application/json",
    )
    assert refused.json()["error"] == "empty_body"
    from django.core.exceptions import ValidationError

    bare = Message.objects.get(pk=plain["message"]["id"])
    bare.body = ""
    with pytest.raises(ValidationError):
        bare.full_clean()


@pytest.mark.django_db
def test_a_direct_message_of_files_notifies_with_their_names(
    alice_client, alice, bob, chat_server, django_capture_on_commit_callbacks
):
    """A direct message with no text: the other person's feed event (its desktop notification)
    names the files instead of showing nothing."""
    from chat import direct

    room = direct.open_direct(alice, bob.pk)
    first = upload(alice_client, room.slug, b"x", "plan.pdf").json()["id"]
    second = upload(alice_client, room.slug, png(), "map.png", "image/png").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        (result,) = store(
            Client(), [item("dm", f"u:{alice.pk}", alice.pk, [first, second], room=room.slug)]
        )
    events = [
        entry["event"]
        for r in chat_server.requests
        if r["path"] == "/internal/users/events"
        for entry in r["body"]
    ]
    excerpts = [e["excerpt"] for e in events if e.get("id") == result["message"]["id"]]
    assert excerpts == ["📎 plan.pdf, map.png"]


def animated_gif() -> bytes:
    frames = [Image.new("P", (30, 20), i) for i in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return out.getvalue()


def png_with_text() -> bytes:
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "home address: 1 Secret Lane")
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    Image.new("RGBA", (40, 40), (1, 2, 3, 128)).save(out, "PNG", pnginfo=info, exif=exif)
    return out.getvalue()


def webp_with_exif(lossless: bool) -> bytes:
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD)[1] = "N"
    exif[0x010F] = "PhoneMaker"
    out = io.BytesIO()
    Image.new("RGB", (50, 30), (9, 9, 9)).save(out, "WEBP", exif=exif.tobytes(), lossless=lossless)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, name, mime",
    [
        (png_with_text(), "t.png", "image/png"),
        (webp_with_exif(True), "l.webp", "image/webp"),
        (webp_with_exif(False), "y.webp", "image/webp"),
    ],
)
def test_png_and_webp_originals_lose_their_metadata(alice_client, lobby, media, data, name, mime):
    """PNG text chunks and EXIF, WebP EXIF (GPS, camera): gone from the stored original, which
    is still the same kind of image with the same size; transparency survives."""
    assert b"PhoneMaker" in data
    shape = upload(alice_client, "lobby", data, name, "application/octet-stream").json()
    assert shape["content_type"] == mime
    row = Attachment.objects.get(token=shape["id"])
    stored = (media / row.storage_name).read_bytes()
    assert b"PhoneMaker" not in stored and b"Secret Lane" not in stored
    with Image.open(io.BytesIO(stored)) as image, Image.open(io.BytesIO(data)) as source:
        assert (image.format, image.size, image.mode) == (source.format, source.size, source.mode)


@pytest.mark.django_db
def test_an_animated_gif_is_kept_as_uploaded(alice_client, lobby, media):
    """GIF carries no EXIF: its bytes are stored as uploaded, every frame kept; the thumbnail is
    its first frame as WebP."""
    data = animated_gif()
    shape = upload(alice_client, "lobby", data, "a.gif").json()
    assert shape["kind"] == "image" and shape["content_type"] == "image/gif"
    row = Attachment.objects.get(token=shape["id"])
    assert (media / row.storage_name).read_bytes() == data
    with Image.open(media / row.thumbnail_name) as thumb:
        assert thumb.format == "WEBP" and not getattr(thumb, "is_animated", False)


@pytest.mark.django_db
def test_the_message_admin_shows_its_files(alice_client, alice, lobby, django_user_model):
    """A moderator opening a message in the admin sees its attachments."""
    token = upload(alice_client, "lobby", b"x" * 10, "evidence.txt").json()["id"]
    message_id = sent(Client(), alice, token, "adm")["message"]["id"]
    staff = django_user_model.objects.create_superuser("root", password="pw-pw-pw-pw")
    admin_client = Client()
    admin_client.force_login(staff)
    page = admin_client.get(f"/admin/chat/message/{message_id}/change/")
    assert page.status_code == 200 and "evidence.txt" in page.content.decode()


@pytest.mark.django_db
def test_odd_names_round_trip_through_the_url(alice_client, alice, lobby):
    """Spaces, `%`, `#`, `?` and non-ASCII letters in a name: the URL quotes them, serves the
    file, and the download name says the same (RFC 5987)."""
    shape = upload(alice_client, "lobby", b"x", "100% ü #1?.txt").json()
    assert shape["name"] == "100% ü #1?.txt"
    assert shape["url"].endswith("/100%25%20%C3%BC%20%231%3F.txt")
    sent(Client(), alice, shape["id"], "odd")
    answer = alice_client.get(shape["url"])
    assert answer.status_code == 200
    assert answer["Content-Disposition"] == (
        "attachment; filename*=UTF-8''100%25%20%C3%BC%20%231%3F.txt"
    )


@pytest.mark.django_db
def test_an_image_named_like_the_thumbnail_keeps_both_reachable(alice_client, lobby):
    """An image whose own name is thumb.webp: its file URL is distinct from its thumbnail's, and
    each serves what it names."""
    out = io.BytesIO()
    Image.new("RGB", (800, 400), (5, 6, 7)).save(out, "WEBP")
    shape = upload(alice_client, "lobby", out.getvalue(), "thumb.webp").json()
    assert shape["name"] == "thumb.webp"
    assert shape["url"] != shape["thumbnail"]["url"]
    with Image.open(io.BytesIO(b"".join(alice_client.get(shape["url"]).streaming_content))) as full:
        assert full.size == (800, 400)
    thumb = b"".join(alice_client.get(shape["thumbnail"]["url"]).streaming_content)
    with Image.open(io.BytesIO(thumb)) as small:
        assert small.size == (320, 160)
