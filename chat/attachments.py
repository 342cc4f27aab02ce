"""Attachments: storing uploads, their limits, tying them to messages, and removing their files.

Files go through Django's ``default_storage`` (the ``STORAGES["default"]`` setting: files under
``MEDIA_ROOT`` in development, any django-storages backend in production) under a random name,
``attachments/<2 hex>/<32 hex>`` plus ``-thumb.webp`` for a thumbnail: the uploader's file name is
data on the row, never part of a path. The limits are settings (docs/operations.md,
"Attachments"): ``CHAT_MAX_FILE_BYTES`` per file, ``CHAT_MAX_FILES_PER_MESSAGE`` per message,
``CHAT_UPLOAD_BYTES_PER_DAY`` per user over a rolling 24 hours.

The bytes of an upload are counted while they arrive (:class:`SizeLimitHandler`, a Django upload
handler, https://docs.djangoproject.com/en/5.2/topics/http/file-uploads/#upload-handlers): past
the limit it stops reading the request, so an oversized body is never read whole.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.db import transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from . import images
from .models import ATTACHMENT_ID_RE, FILE, IMAGE, Attachment, Room

log = logging.getLogger(__name__)

# Room in a request body around the file: the multipart boundary and part headers. A body whose
# Content-Length is over the file limit plus this cannot hold an acceptable file and is refused
# before a byte of it is read.
MULTIPART_ALLOWANCE = 64 * 1024
MAX_NAME_CHARS = 255
THUMBNAIL_NAME = "thumb.webp"
MIB = 1024 * 1024


class UploadRefused(Exception):
    """An upload that is not stored: ``status``, the protocol's ``code``, a text for people and,
    for quota refusals, ``retry_after`` seconds (docs/protocol.md, "Attachments")."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


def mib(value: int) -> str:
    """Bytes as MiB for people: ``10 MiB``, ``1.5 MiB``."""
    return f"{value / MIB:.1f}".removesuffix(".0") + " MiB"


def too_large() -> UploadRefused:
    """413 ``file_too_large``, naming the limit."""
    return UploadRefused(
        413, "file_too_large", f"A file has at most {mib(settings.CHAT_MAX_FILE_BYTES)}."
    )


def body_too_large(content_length: int) -> bool:
    """True when a request body of ``content_length`` bytes cannot hold an acceptable file."""
    return content_length > settings.CHAT_MAX_FILE_BYTES + MULTIPART_ALLOWANCE


class SizeLimitHandler(FileUploadHandler):
    """An upload handler placed first: counts each file's bytes as they arrive and stops the
    upload (``StopUpload(connection_reset=True)``: Django reads no more of the body) once a file
    passes ``CHAT_MAX_FILE_BYTES`` or a second file part starts. ``refusal`` then says why; the
    view answers it. Data is passed on to the next handler, which keeps it."""

    # Smaller than Django's 64 KiB default, so reading stops soon after the limit.
    chunk_size = 16 * 1024

    def __init__(self, request: Any = None) -> None:
        super().__init__(request)
        self.files = 0
        self.refusal: UploadRefused | None = None

    def new_file(self, field_name: str, *args: Any, **kwargs: Any) -> None:
        """Count file parts: one per request."""
        super().new_file(field_name, *args, **kwargs)
        self.files += 1
        if self.files > 1 or field_name != "file":
            self.refusal = UploadRefused(
                400, "bad_upload", "Send exactly one file, in a part named `file`."
            )
            raise StopUpload(connection_reset=True)

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        """Stop once the file has more bytes than the limit (``start`` is its bytes so far)."""
        if start + len(raw_data) > settings.CHAT_MAX_FILE_BYTES:
            self.refusal = too_large()
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        """Nothing to build: the next handler returns the file."""
        return None


def used_today(uid: str) -> tuple[int, int | None]:
    """Bytes ``uid`` uploaded in the last 24 hours, and seconds until its oldest upload in that
    window leaves it (None when there is none)."""
    since = timezone.now() - timedelta(days=1)
    mine = Attachment.objects.filter(uploader_uid=uid, created_at__gt=since)
    total = mine.aggregate(total=Sum("size"))["total"] or 0
    oldest = mine.order_by("created_at").values_list("created_at", flat=True).first()
    if oldest is None:
        return total, None
    return total, max(int((oldest + timedelta(days=1) - timezone.now()).total_seconds()), 1)


def check_quota(uid: str, incoming: int) -> None:
    """Raise 429 ``upload_quota`` when ``incoming`` more bytes would pass the daily total."""
    used, retry_after = used_today(uid)
    if used + incoming > settings.CHAT_UPLOAD_BYTES_PER_DAY:
        raise UploadRefused(
            429,
            "upload_quota",
            f"You may upload {mib(settings.CHAT_UPLOAD_BYTES_PER_DAY)} a day; try again later.",
            retry_after=retry_after or 60,
        )


# The escapes browsers apply to a file name in multipart/form-data (HTML standard, "multipart/
# form-data encoding algorithm": LF, CR and '"' become %0A, %0D and %22); Django keeps them.
BROWSER_NAME_ESCAPES = {"%0A": "\n", "%0D": "\r", "%22": '"'}


def clean_name(name: str) -> str:
    """The file name to keep and show: the browser's three escapes undone (``%22`` is ``"``), its
    last path segment, NFC, without control characters, at most 255 characters (the extension
    kept); ``file`` when nothing is left. Any other ``%xx`` stays as typed."""
    name = name or ""
    for escape, char in BROWSER_NAME_ESCAPES.items():
        name = name.replace(escape, char)
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    name = name.lstrip(".") or "file"
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:16] if dot else ""
        name = (stem if dot else name)[: MAX_NAME_CHARS - len(ext) - 1] + ("." + ext if ext else "")
    return name


def _storage_base() -> str:
    token = secrets.token_hex(16)
    return f"attachments/{token[:2]}/{token}"


@dataclass(frozen=True)
class Uploader:
    """Who uploads: the signed-in user's id and uid (``u:<id>``)."""

    user_id: int
    uid: str


def store_upload(room: Room, who: Uploader, upload: File, declared_type: str) -> Attachment:
    """Check, process and store one uploaded file for ``room``; return its unsent row.

    Raises :class:`UploadRefused`: ``bad_upload`` (empty), ``file_too_large``, ``upload_quota``,
    ``bad_image`` (see ``chat.images.process``). Files are written before the row; when the row
    cannot be written they are removed again.
    """
    size = upload.size or 0
    if size <= 0:
        raise UploadRefused(400, "bad_upload", "The file is empty.")
    if size > settings.CHAT_MAX_FILE_BYTES:
        raise too_large()
    check_quota(who.uid, size)
    name = clean_name(upload.name or "")
    declared_type = (declared_type or "")[:255]
    try:
        processed = images.process(upload, name, declared_type)
    except images.BadImage as exc:
        raise UploadRefused(400, "bad_image", str(exc)) from None
    base = _storage_base()
    written: list[str] = []
    try:
        if processed is None:
            upload.seek(0)
            stored = default_storage.save(base, upload)
            written.append(stored)
            row = Attachment(kind=FILE, size=size)
        else:
            if processed.original is not None:
                body: IO[bytes] | File = ContentFile(processed.original)
                stored_size = len(processed.original)
            else:
                upload.seek(0)
                body, stored_size = upload, size
            stored = default_storage.save(base, body)
            written.append(stored)
            thumb = default_storage.save(base + "-thumb.webp", ContentFile(processed.thumbnail))
            written.append(thumb)
            row = Attachment(
                kind=IMAGE,
                size=stored_size,
                image_type=processed.mime,
                width=processed.width,
                height=processed.height,
                thumbnail_name=thumb,
                thumbnail_width=processed.thumbnail_width,
                thumbnail_height=processed.thumbnail_height,
            )
        row.room = room
        row.uploader_id = who.user_id
        row.uploader_uid = who.uid
        row.original_name = name
        row.content_type = declared_type
        row.storage_name = stored
        row.save()
    except BaseException:
        for path in written:
            _delete_file(path)
        raise
    return row


def purge_unsent(now: Any = None) -> int:
    """Delete uploads never sent within ``CHAT_UNSENT_UPLOAD_TTL`` seconds (their files go after
    commit); returns how many. Called on every upload, and by ``manage.py purgeuploads``."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.CHAT_UNSENT_UPLOAD_TTL)
    stale = Attachment.objects.filter(message__isnull=True, created_at__lt=cutoff)
    count = 0
    # A bounded slice per call, so an upload never waits for a big backlog.
    for row in list(stale.order_by("id")[:100]):
        row.delete()
        count += 1
    return count


def discard_for_messages(message_ids: Iterable[int]) -> int:
    """Delete the attachments of deleted messages (rows now, files after commit)."""
    ids = list(message_ids)
    if not ids:
        return 0
    rows = list(Attachment.objects.filter(message_id__in=ids))
    for row in rows:
        row.delete()
    return len(rows)


def files_of(row: Attachment) -> list[str]:
    """The storage names of ``row``'s files."""
    return [name for name in (row.storage_name, row.thumbnail_name) if name]


def delete_files_after_commit(row: Attachment) -> None:
    """Remove ``row``'s files once the transaction that deleted it commits (never on rollback)."""
    names = files_of(row)
    transaction.on_commit(lambda: [_delete_file(name) for name in names])


def _delete_file(name: str) -> None:
    try:
        default_storage.delete(name)
    except Exception:  # a storage outage must not undo the deletion; the name is logged
        log.exception("could not delete attachment file %s", name)


def url_name(row: Attachment) -> str:
    """The last segment of the file's URL: its original name, except that a file itself named
    ``thumb.webp`` is ``file-thumb.webp`` there (the thumbnail owns ``thumb.webp``)."""
    if row.original_name == THUMBNAIL_NAME:
        return "file-" + THUMBNAIL_NAME
    return row.original_name


def file_url(row: Attachment) -> str:
    """The site-relative URL of the file, ending in its (URL-quoted) name (:func:`url_name`)."""
    return reverse("chat:attachment_file", args=[row.token, url_name(row)])


def thumbnail_url(row: Attachment) -> str:
    """The site-relative URL of the thumbnail."""
    return reverse("chat:attachment_file", args=[row.token, THUMBNAIL_NAME])


def ids_shape_ok(value: Any) -> bool:
    """``attachments`` of a batch item: absent/None, or a list of 1 to
    ``CHAT_MAX_FILES_PER_MESSAGE`` distinct ids of the token alphabet."""
    if value is None:
        return True
    return (
        isinstance(value, list)
        and 1 <= len(value) <= settings.CHAT_MAX_FILES_PER_MESSAGE
        and all(isinstance(v, str) and ATTACHMENT_ID_RE.fullmatch(v) for v in value)
        and len(set(value)) == len(value)
    )
