"""X-Accel-Redirect as docs/operations.md ("Attachments") configures it, through a real nginx.

The nginx `location` is read from the documentation itself (only the media path is swapped for
the test's), so the documented snippet is what is tested: Django checks access and answers with
`X-Accel-Redirect` and no body; nginx sends the stored bytes with Django's headers; the internal
location cannot be fetched directly.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pytest
import requests
from PIL import Image

from tests.integration.test_access_changes import sign_in
from tests.support.live import ROOT, LiveSystem, free_port, wait_until
from tests.support.nginx import NginxServer

pytestmark = pytest.mark.integration

DOC_MEDIA = "/var/lib/chat/media/"


def documented_location() -> str:
    """The ```nginx block of docs/operations.md's Attachments section."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("## Attachments", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```nginx\n(.*?)```", section, re.S)
    assert block, "docs/operations.md shows no nginx block for attachments"
    assert DOC_MEDIA in block.group(1)
    return block.group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveSystem, str]]:
    workdir = tmp_path_factory.mktemp("accel")
    with LiveSystem(workdir / "live", {"CHAT_FILES_ACCEL_REDIRECT": "/protected-media/"}) as live:
        port = free_port()
        location = documented_location().replace(DOC_MEDIA, f"{live.media_root}/")
        conf = f"""
upstream accel_django {{ server 127.0.0.1:{live.django_port}; }}
server {{
    listen 127.0.0.1:{port};
    client_max_body_size 11m;
    location / {{
        proxy_pass http://accel_django;
        proxy_set_header Host $http_host;
    }}
{location}
}}
"""
        nginx = NginxServer(workdir / "nginx", conf).start()
        origin = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: requests.get(f"{origin}/chats/", timeout=2).ok, timeout=30)
            yield live, origin
        finally:
            nginx.stop()


def test_nginx_sends_the_file_django_allowed(site):
    """The uploader's file through nginx: the stored bytes with Django's type, disposition,
    nosniff and CSP. Django's own answer carries only the redirect; the internal location and a
    stranger get nothing."""
    live, origin = site
    _name, _pw, alice = sign_in(live)
    slug = "accel-room"
    live.create_room(slug)
    out = io.BytesIO()
    Image.new("RGB", (120, 60), (200, 10, 10)).save(out, "PNG")
    answer = alice.post(
        f"{origin}/api/rooms/{slug}/attachments/",
        files={"file": ("red.png", out.getvalue(), "image/png")},
        headers={"X-CSRFToken": alice.cookies["csrftoken"]},
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    shape = answer.json()
    stored = [p for p in live.media_root.rglob("*") if p.is_file() and "thumb" not in p.name]
    assert len(stored) == 1

    direct = alice.get(live.django_url + shape["url"], timeout=10)
    assert direct.status_code == 200 and direct.content == b""
    target = direct.headers["X-Accel-Redirect"]
    assert target == "/protected-media/" + str(stored[0].relative_to(live.media_root))

    through = alice.get(origin + shape["url"], timeout=10)
    assert through.status_code == 200
    assert through.content == stored[0].read_bytes()
    assert through.headers["Content-Type"] == "image/png"
    assert through.headers["Content-Disposition"] == "inline; filename*=UTF-8''red.png"
    assert through.headers["X-Content-Type-Options"] == "nosniff"
    assert through.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
    thumb = alice.get(origin + shape["thumbnail"]["url"], timeout=10)
    assert thumb.status_code == 200 and thumb.headers["Content-Type"] == "image/webp"

    assert requests.get(origin + target, timeout=10).status_code == 404
    _other, _pw, bob = sign_in(live)
    assert bob.get(origin + shape["url"], timeout=10).status_code == 404
