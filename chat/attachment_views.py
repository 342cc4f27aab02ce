"""Uploading and serving attachments (docs/protocol.md, "Attachments").

``POST /api/rooms/<slug>/attachments/``: one file per request, for signed-in users who may write
in the room (chat/access.py). What needs no body is checked first (the room, the asker, the rate
limit, ``Content-Length`` against the file limit and the daily quota); only then is the body read,
through :class:`chat.attachments.SizeLimitHandler`, which stops reading at the limit. That is why
the view is ``csrf_exempt`` and checks CSRF itself afterwards: Django's CSRF middleware would parse
the body with the default upload handlers before the view could install its own (Django's docs,
"Modifying upload handlers on the fly").

``GET /files/<id>/<name>`` and ``/files/<id>/thumb.webp``: the file after the room's read rule;
an upload not yet sent is its uploader's alone. Never HTML from the site's origin: images of the
four detected formats inline with their detected type, everything else as a download, with
``nosniff`` and a sandboxing CSP.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

from . import access, attachments, ratelimits
from .models import IMAGE, Attachment, Room
from .signing import error_response

FILE_CSP = "default-src 'none'; sandbox"


def _refused(refusal: attachments.UploadRefused) -> JsonResponse:
    """The JSON error body; a refusal with ``retry_after`` carries it in the body and as
    ``Retry-After`` (as the ticket endpoint's 429 does)."""
    if refusal.retry_after is None:
        return error_response(refusal.status, refusal.code, refusal.message)
    response = JsonResponse(
        {"error": refusal.code, "message": refusal.message, "retry_after": refusal.retry_after},
        status=refusal.status,
    )
    response["Retry-After"] = str(refusal.retry_after)
    return response


def _writable_room(request: HttpRequest, slug: str) -> Room:
    # Who may know the room comes first: an archived private room answers an outsider as an
    # unknown one, never "archived" (chat/access.py `known_room`).
    room = access.known_room(request.user, slug)
    if room is None:
        raise attachments.UploadRefused(404, "unknown_room", "No such room.")
    if room.is_archived:
        raise attachments.UploadRefused(404, "room_archived", "This room is archived.")
    refused = access.refusal(request.user, room)
    if refused is not None:
        raise attachments.UploadRefused(refused.status, refused.code, refused.message)
    if not request.user.is_authenticated:
        raise attachments.UploadRefused(
            403, "sign_in_required", "Sign in to attach files: guests can send text only."
        )
    return room


def _csrf_refused(request: HttpRequest) -> HttpResponse | None:
    """Django's own CSRF check (the middleware's ``process_view``), run once our upload handlers
    are in place: it reads the body through them. None when the request passes."""
    check = CsrfViewMiddleware(lambda req: HttpResponse())
    check.process_request(request)
    try:
        return check.process_view(request, lambda req: HttpResponse(), (), {})
    except MultiPartParserError:
        return None  # answered by `_files` as bad_upload


@csrf_exempt  # checked in the view, after the upload handlers are installed (module docstring)
def upload(request: HttpRequest, slug: str) -> HttpResponse:
    """``POST /api/rooms/<slug>/attachments/`` (multipart, one part ``file``): 201 with the
    attachment shape; errors as in docs/protocol.md."""
    if request.method != "POST":
        response = error_response(405, "method_not_allowed", "Use POST.")
        response["Allow"] = "POST"
        return response
    try:
        room = _writable_room(request, slug)
        retry_after = ratelimits.upload_limited(request)
        if retry_after is not None:
            raise attachments.UploadRefused(
                429, "rate_limited", "Too many uploads; wait and retry.", retry_after=retry_after
            )
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if attachments.body_too_large(length):
            raise attachments.too_large()  # answered before a byte of the body is read
        who = attachments.Uploader(request.user.pk, f"u:{request.user.pk}")
        # The body cannot be bigger than Content-Length says (Django reads no more than that).
        attachments.check_quota(who.uid, max(length - attachments.MULTIPART_ALLOWANCE, 0))
        limit = attachments.SizeLimitHandler(request)
        request.upload_handlers = [
            limit,
            MemoryFileUploadHandler(request),
            TemporaryFileUploadHandler(request),
        ]
        csrf = _csrf_refused(request)  # reads the body through `limit` when it checks a form
        if csrf is not None:
            return csrf
        files = _files(request, limit)
        upload_file = files[0]
        attachments.purge_unsent()
        row = attachments.store_upload(room, who, upload_file, upload_file.content_type or "")
    except attachments.UploadRefused as refusal:
        return _refused(refusal)
    return JsonResponse(row.shape(), status=201)


def _files(request: HttpRequest, limit: attachments.SizeLimitHandler) -> list[Any]:
    """The request's one uploaded file (a list of it), read through ``limit``; raises the
    refusal ``limit`` recorded (too large, a second file) or ``bad_upload``."""
    try:
        files = request.FILES.getlist("file")
        count = len(request.FILES)
    except MultiPartParserError:
        files, count = [], 0
    if limit.refusal is not None:
        raise limit.refusal
    if len(files) != 1 or count != 1:
        raise attachments.UploadRefused(
            400, "bad_upload", "Send exactly one file, in a part named `file`."
        )
    return files


def _readable(request: HttpRequest, token: str) -> Attachment:
    row = Attachment.objects.select_related("room", "message").filter(token=token).first()
    if row is None:
        raise Http404("No such file.")
    if row.message_id is None:
        # Not sent yet: its uploader's alone.
        if not (request.user.is_authenticated and row.uploader_uid == f"u:{request.user.pk}"):
            raise Http404("No such file.")
    elif row.message.is_deleted:
        raise Http404("No such file.")
    # Archived rooms stay readable (chat/access.py); anyone else gets the same 404 as for a file
    # that does not exist, so a URL tells an outsider nothing.
    if not access.may_read(request.user, row.room):
        raise Http404("No such file.")
    return row


def serve(request: HttpRequest, token: str, name: str) -> HttpResponse:
    """``GET /files/<id>/<name>`` and ``GET /files/<id>/thumb.webp``."""
    if request.method not in ("GET", "HEAD"):
        response = HttpResponse(status=405)
        response["Allow"] = "GET, HEAD"
        return response
    row = _readable(request, token)
    if name == attachments.THUMBNAIL_NAME and row.thumbnail_name:
        path, content_type, inline = row.thumbnail_name, "image/webp", True
    elif name == attachments.url_name(row):
        path = row.storage_name
        inline = row.kind == IMAGE
        content_type = row.image_type if inline else "application/octet-stream"
    else:
        raise Http404("No such file.")
    response = _file_response(path, content_type)
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = (
        f"{disposition}; filename*=UTF-8''{quote(row.original_name, safe='')}"
    )
    response["Content-Type"] = content_type
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cache-Control"] = "private, max-age=3600"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response._csp_exempt = True  # django-csp must not replace the file's own policy
    return response


def _file_response(path: str, content_type: str) -> HttpResponse:
    """The bytes (a streamed ``FileResponse``), or with ``CHAT_FILES_ACCEL_REDIRECT`` an empty
    answer that hands the file to nginx (``X-Accel-Redirect``, docs/operations.md)."""
    prefix = settings.CHAT_FILES_ACCEL_REDIRECT
    if prefix:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(path)
        return response
    try:
        handle: Any = default_storage.open(path, "rb")
    except FileNotFoundError:
        raise Http404("No such file.") from None
    return FileResponse(handle, content_type=content_type)
