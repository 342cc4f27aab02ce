"""The room page's server-rendered attachments (chat/templatetags/chat_messages.py
`attachments`): the markup the browser client builds live (static/chat/client/
attachment-view.js, pinned by tests/js/attachments.test.js), sizes in the same words, names
escaped, only site-relative links. tests/browser/test_attachments.py checks in Chromium that a
reload draws exactly what the live page drew."""

from __future__ import annotations

import re

from chat.templatetags.chat_messages import attachments, human_size, type_label

IMAGE = {
    "id": "A1",
    "name": "shot.png",
    "size": 48213,
    "content_type": "image/png",
    "kind": "image",
    "url": "/files/A1/shot.png",
    "width": 1280,
    "height": 720,
    "thumbnail": {"url": "/files/A1/thumb.webp", "width": 320, "height": 180},
}
HOSTILE = '<img src=x onerror="alert(1)">.pdf'
FILE = {
    "id": "B2",
    "name": HOSTILE,
    "size": 2516582,
    "content_type": "application/pdf",
    "kind": "file",
    "url": "/files/B2/report.pdf",
    "width": None,
    "height": None,
    "thumbnail": None,
}


class Shaped:
    """A message as the tag sees it: only its attachments."""

    def __init__(self, shapes):
        self.shapes = shapes

    def attachment_shapes(self):
        return self.shapes


def test_sizes_in_the_same_words_as_the_client():
    # The same table as tests/js/attachments.test.js (formatSize).
    cases = [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1.0 KB"),
        (1280, "1.3 KB"),
        (10188, "9.9 KB"),
        (10189, "10 KB"),
        (48213, "47 KB"),
        (1048575, "1024 KB"),
        (1048576, "1.0 MB"),
        (2516582, "2.4 MB"),
        (10 * 1048576, "10 MB"),
        (3 * 1024**3, "3.0 GB"),
        (5 * 1024**4, "5.0 TB"),
        (-5, "0 bytes"),
    ]
    assert [human_size(size) for size, _ in cases] == [words for _, words in cases]


def test_type_label_as_the_client():
    assert type_label({"name": "report.final.pdf", "content_type": "application/pdf"}) == "PDF"
    assert type_label({"name": "Makefile", "content_type": "text/plain"}) == "text/plain"
    assert type_label({"name": "noext", "content_type": ""}) == "File"


def test_image_and_file_markup_in_upload_order():
    html = str(attachments(Shaped([IMAGE, FILE])))
    assert html == (
        '<div class="attachments" data-ids="A1 B2">'
        '<a href="/files/A1/shot.png" class="attachment attachment-image" target="_blank"'
        ' rel="noopener"><img src="/files/A1/thumb.webp" alt="shot.png" width="320"'
        ' height="180" loading="lazy"></a>'
        '<a href="/files/B2/report.pdf" class="attachment attachment-file" download="">'
        '<span class="attachment-name" dir="auto">'
        "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.pdf</span> "
        '<span class="attachment-meta">2.4 MB, PDF</span></a></div>'
    )


def test_no_attachments_no_markup_and_foreign_urls_are_not_linked():
    assert attachments(Shaped([])) == ""
    assert attachments(object()) == ""
    foreign = {**FILE, "url": "//evil.example/x", "name": "x.txt"}
    assert 'href="#"' in str(attachments(Shaped([foreign])))


def test_the_page_offers_attaching_to_signed_in_readers_with_the_limits(
    client, lobby, alice, settings
):
    """Signed in: the upload URL and the limits from the settings (never literals) on
    `#chat-room`, for the client's button and pre-check. Guests get none of it (they may not
    upload: the client shows no button)."""
    guest_main = re.search(r"<main [^>]*>", client.get("/chats/lobby/").content.decode()).group(0)
    assert "data-attachments-url" not in guest_main
    assert "data-max-file-bytes" not in guest_main

    settings.CHAT_MAX_FILE_BYTES = 1234567
    settings.CHAT_MAX_FILES_PER_MESSAGE = 3
    client.force_login(alice)
    main = re.search(r"<main [^>]*>", client.get("/chats/lobby/").content.decode()).group(0)
    assert (
        ' data-attachments-url="/api/rooms/lobby/attachments/"'
        ' data-max-file-bytes="1234567" data-max-files="3"'
    ) in main
