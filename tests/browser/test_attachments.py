"""Attachments in Chromium (issue 14), against the real Django and chat server: an image pasted
into the composer reaches the other reader live as a thumbnail (and a reload draws the very
same markup), a PDF dropped on the room becomes a download card for both, the upload's progress
shows in a labelled chip while Send waits, refusals (the page's size limit, the server's
`bad_image`) are said in the composer, guests get no attach button, a phone shows thumbnails
without sideways scrolling, and axe finds nothing on a room with attachments, light and dark.

Playwright cannot reach the OS clipboard or drag from the desktop headless: the page builds a
real `File` and dispatches a real `paste` / `dragenter` / `drop` event carrying it in a
`DataTransfer`, which is what the browser hands the page for the real gestures.
"""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.people import new_user, signed_in
from tests.browser.test_axe import AXE
from tests.browser.test_resilience import refuse_websockets

pytestmark = pytest.mark.browser


# Pastes a PNG drawn on a canvas (`name`, `width`×`height`, with `text` beside it when given)
# into the message box; true when the composer took it (the paste's default action prevented).
PASTE_IMAGE = """async ([name, width, height, text]) => {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext("2d");
  g.fillStyle = "#2a7"; g.fillRect(0, 0, width, height);
  g.fillStyle = "#fff"; g.fillRect(width / 4, height / 4, width / 2, height / 2);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const data = new DataTransfer();
  data.items.add(new File([blob], name, { type: "image/png" }));
  if (text) data.setData("text/plain", text);
  const box = document.getElementById("composer-input");
  box.focus();
  const paste = new ClipboardEvent("paste", {
    clipboardData: data, bubbles: true, cancelable: true,
  });
  box.dispatchEvent(paste);
  return paste.defaultPrevented;
}"""

# Drags a file (`name`, `type`, `size` bytes of a PDF-looking text) over the message list:
# `dragenter` now, `drop` with DROP_FILE.
DRAG_FILE = """([name, type, size]) => {
  const head = "%PDF-1.4\\n% a test document\\n";
  const file = new File([head + "x".repeat(Math.max(0, size - head.length))], name, { type });
  window.__drag = new DataTransfer();
  window.__drag.items.add(file);
  const list = document.getElementById("message-list");
  const init = { dataTransfer: window.__drag, bubbles: true, cancelable: true };
  const enter = new DragEvent("dragenter", init);
  list.dispatchEvent(enter);
  list.dispatchEvent(new DragEvent("dragover", init));
  return enter.defaultPrevented;
}"""
DROP_FILE = """() => {
  const init = { dataTransfer: window.__drag, bubbles: true, cancelable: true };
  const drop = new DragEvent("drop", init);
  document.querySelector("#message-list > li, #message-list").dispatchEvent(drop);
  return drop.defaultPrevented;
}"""

THUMBNAIL_LOADED = """(img) => img.complete && img.naturalWidth > 0"""


def chips(page: Page):
    return page.locator("#upload-chips > li.upload-chip")


def pump_until(page: Page, condition, timeout_ms: int = 20_000) -> None:
    """Lets Playwright deliver events (route handlers) until `condition()` holds."""
    for _ in range(timeout_ms // 25):
        if condition():
            return
        page.wait_for_timeout(25)
    raise AssertionError("condition not met in time")


def test_pasted_image_reaches_the_other_reader_live_and_a_reload_draws_the_same(
    live, live_room, open_room
):
    """Alice pastes an image and sends it without text: Bob sees the thumbnail live (alt = the
    file's name, box reserved by width/height, the link to the full image), the thumbnail is
    really served, a click opens the image in a dialog that Escape closes, and after a reload
    the server renders exactly the markup the live client drew."""
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    bob = open_room(live_room, before_load=signed_in(live, new_user(live, "bob")))
    expect(alice.page.get_by_role("button", name="Attach files")).to_be_visible()

    # Cells copied from a spreadsheet come with a picture of them: the text is pasted, not it.
    assert alice.page.evaluate(PASTE_IMAGE, ["cells.png", 40, 20, "a\tb"]) is False
    expect(chips(alice.page)).to_have_count(0)
    assert alice.page.evaluate(PASTE_IMAGE, ["pasted.png", 640, 360]) is True
    chip = chips(alice.page)
    expect(chip).to_have_count(1)
    expect(chip.locator(".chip-name")).to_have_text("pasted.png")
    expect(chip).to_have_attribute("data-state", "done")
    expect(alice.page.locator("#composer-input")).to_have_value("")
    alice.page.locator("#composer-input").press("Enter")
    expect(chips(alice.page)).to_have_count(0)

    img = bob.page.locator("#message-list > li.message .attachments a.attachment-image img")
    expect(img).to_have_count(1)
    expect(img).to_have_attribute("alt", "pasted.png")
    expect(img).to_have_attribute("loading", "lazy")
    width, height = int(img.get_attribute("width")), int(img.get_attribute("height"))
    assert width > 0 and height > 0 and abs(width / height - 640 / 360) < 0.05
    bob.page.wait_for_function(THUMBNAIL_LOADED, arg=img.element_handle(), timeout=20_000)
    link = img.locator("xpath=..")
    href = link.get_attribute("href") or ""
    assert re.fullmatch(r"/files/[A-Za-z0-9_-]+/pasted\.png", href), href
    # The author's own message is the stored one with the same files (no pending copy left).
    own = alice.page.locator("#message-list > li.message:not(.pending) .attachments img")
    expect(own).to_have_attribute("alt", "pasted.png")
    expect(alice.page.locator("#message-list > li.pending")).to_have_count(0)

    # A click opens the full image in a dialog; Escape closes it and focus returns.
    link.click()
    dialog = bob.page.locator("dialog#lightbox")
    expect(dialog).to_be_visible()
    expect(dialog.locator("img")).to_have_attribute("src", href)
    expect(dialog.locator("img")).to_have_attribute("alt", "pasted.png")
    bob.page.wait_for_function(THUMBNAIL_LOADED, arg=dialog.locator("img").element_handle())
    bob.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(link).to_be_focused()

    live_markup = bob.page.locator("#message-list .attachments").evaluate("el => el.outerHTML")
    bob.page.reload()
    bob.wait_live()
    expect(img).to_have_count(1)
    assert bob.page.locator("#message-list .attachments").evaluate("el => el.outerHTML") == (
        live_markup
    )


def test_dropped_pdf_is_a_download_card_for_both_readers(live, live_room, open_room):
    """Dragging a file over the room highlights it and says so to screen readers; dropping it
    attaches it; sent with text, both readers get the body and a card naming the file, its size
    and type, linking to the download (served as an attachment)."""
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    bob = open_room(live_room, before_load=signed_in(live, new_user(live, "bob")))
    page = alice.page

    assert page.evaluate(DRAG_FILE, ["report.pdf", "application/pdf", 1536]) is True
    expect(page.locator(".drop-zone")).to_be_visible()
    expect(page.locator(".drop-zone")).to_have_text("Drop files to attach them")
    expect(page.locator("#chat-room")).to_have_class(re.compile(r"\bdropping\b"))
    expect(page.get_by_role("status").filter(has_text="Drop the files")).to_have_count(1)
    assert page.evaluate(DROP_FILE) is True
    expect(page.locator(".drop-zone")).to_be_hidden()
    expect(page.locator("#drop-status")).to_have_text("")
    chip = chips(page)
    expect(chip.locator(".chip-size")).to_have_text("1.5 KB")
    expect(chip).to_have_attribute("data-state", "done")
    alice.send("the report")

    for reader in (alice, bob):
        message = reader.message("the report")
        card = message.locator(".attachments a.attachment-file")
        expect(card).to_have_count(1)
        expect(card.locator(".attachment-name")).to_have_text("report.pdf")
        expect(card.locator(".attachment-meta")).to_have_text("1.5 KB, PDF")
        expect(card).to_have_attribute("download", "")
        expect(message).not_to_have_class(re.compile(r"\bpending\b"))
    href = bob.message("the report").locator("a.attachment-file").get_attribute("href")
    answer = bob.page.evaluate(
        """async (url) => {
          const r = await fetch(url);
          return [r.status, r.headers.get("content-disposition") || "", (await r.text()).length];
        }""",
        href,
    )
    assert answer[0] == 200 and answer[1].startswith("attachment") and answer[2] == 1536, answer


def test_upload_progress_shows_and_send_waits_for_it(live, live_room, open_room):
    """The Attach button (reached and pressed by keyboard) opens the file chooser; while the
    upload is held back (the request intercepted), its chip shows a labelled progress bar with
    the file's size as its maximum, and Send is disabled (Enter says why); once the upload goes
    through, the chip says so and the message goes with the file. On a throttled line the bar
    shows the part sent so far."""
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    page = alice.page
    held = []
    uploads = re.compile(r".*/api/rooms/[^/]+/attachments/$")
    page.route(uploads, lambda route: held.append(route))

    # Playwright turns on its file chooser interception when a listener is added, without waiting
    # for it: a listener added now has it on long before the key press (else the chooser could
    # open natively, unseen, under load).
    page.on("filechooser", lambda chooser: None)
    # Keyboard: the button is one Shift+Tab before the message box, and Enter opens the chooser.
    page.locator("#composer-input").focus()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Attach files")).to_be_focused()
    with page.expect_file_chooser() as chooser_info:
        page.keyboard.press("Enter")
    chooser = chooser_info.value
    assert chooser.is_multiple()
    size = 300_000
    chooser.set_files([{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"n" * size}])
    progress = page.get_by_role("progressbar", name="Uploading notes.txt")
    expect(progress).to_be_visible()
    expect(progress).to_have_attribute("max", str(size))
    expect(progress).to_have_attribute("value", "0")
    expect(chips(page).locator(".chip-size")).to_have_text("293 KB")
    send = page.locator('#composer button[type="submit"]')
    expect(send).to_be_disabled()
    page.locator("#composer-input").fill("with notes")
    page.locator("#composer-input").press("Enter")
    expect(page.locator("#attach-error")).to_have_text(
        "Not sent yet: wait until the files are uploaded."
    )
    expect(page.locator("#message-list > li.pending")).to_have_count(0)

    pump_until(page, lambda: bool(held))
    held[0].continue_()
    page.unroute(uploads)
    expect(chips(page)).to_have_attribute("data-state", "done")
    expect(page.locator("#attach-status")).to_have_text("notes.txt uploaded.")
    expect(progress).to_be_hidden()
    expect(send).to_be_enabled()
    page.locator("#composer-input").press("Enter")
    card = alice.message("with notes").locator("a.attachment-file")
    expect(card.locator(".attachment-meta")).to_have_text("293 KB, TXT")
    expect(page.locator("#attach-error")).to_be_hidden()

    # On a slow line (upload throttled to 100 kB/s by Chromium's network emulation) the bar
    # moves: a value between none and all of the file is shown while it uploads.
    cdp = alice.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 100_000},
    )
    page.locator("#attach-input").set_input_files(
        [{"name": "slow.bin", "mimeType": "application/octet-stream", "buffer": b"s" * 400_000}]
    )
    page.wait_for_function(
        """() => {
          const bar = document.querySelector("#upload-chips progress");
          return bar && !bar.hidden && bar.value > 0 && bar.value < bar.max;
        }""",
        timeout=20_000,
    )
    expect(send).to_be_disabled()
    expect(chips(page)).to_have_attribute("data-state", "done", timeout=60_000)
    expect(send).to_be_enabled()


def test_refusals_are_said_in_the_composer(live, live_room, open_room):
    """A file over the page's limit never leaves (the limit named); a `.png` that is not an
    image is refused by the server (`bad_image`), whose message is shown as an alert; neither
    stays as a chip, and the chip's remove button takes a file out."""
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    page = alice.page
    limit = int(page.locator("#chat-room").get_attribute("data-max-file-bytes") or 0)
    assert limit > 0, "the page hands over CHAT_MAX_FILE_BYTES"
    uploads = []
    page.on("request", lambda r: uploads.append(r.url) if "/attachments/" in r.url else None)

    page.locator("#attach-input").set_input_files(
        [
            {
                "name": "huge.bin",
                "mimeType": "application/octet-stream",
                "buffer": b"\0" * (limit + 1),
            }
        ]
    )
    alert = page.get_by_role("alert").filter(has_text="huge.bin")
    expect(alert).to_contain_text("at most")
    expect(chips(page)).to_have_count(0)
    assert uploads == []

    page.locator("#attach-input").set_input_files(
        [{"name": "fake.png", "mimeType": "image/png", "buffer": b"not a png at all" * 10}]
    )
    expect(page.get_by_role("alert")).to_contain_text("fake.png was not attached:")
    expect(chips(page)).to_have_count(0)
    assert len(uploads) == 1

    page.locator("#attach-input").set_input_files(
        [{"name": "keep.txt", "mimeType": "text/plain", "buffer": b"keep me"}]
    )
    expect(page.get_by_role("alert")).to_be_hidden()  # a new attempt clears the old reasons
    expect(chips(page)).to_have_attribute("data-state", "done")
    page.get_by_role("button", name="Remove keep.txt").click()
    expect(chips(page)).to_have_count(0)
    expect(page.locator("#composer-input")).to_be_focused()
    # Without files and text, nothing goes.
    page.locator("#composer-input").press("Enter")
    expect(page.locator("#message-list > li.pending")).to_have_count(0)


def test_guests_get_no_attach_button(live_room, open_room):
    guest = open_room(live_room)
    expect(guest.page.locator("#composer-input")).to_be_visible()
    expect(guest.page.locator("#attach-button, #attach-input")).to_have_count(0)


def test_phone_shows_thumbnails_without_sideways_scrolling(live, live_room, open_room):
    """At 320 px a wide image's thumbnail scales down into the list, a long file name wraps,
    and nothing scrolls sideways, live and after a reload."""
    alice = open_room(
        live_room,
        viewport={"width": 320, "height": 600},
        before_load=signed_in(live, new_user(live, "alice")),
    )
    page = alice.page
    assert page.evaluate(PASTE_IMAGE, ["wide.png", 1600, 400]) is True
    expect(chips(page)).to_have_attribute("data-state", "done")
    long_name = "a-very-long-file-name-that-does-not-fit-on-a-phone-screen-at-all.pdf"
    page.evaluate(DRAG_FILE, [long_name, "application/pdf", 2048])
    page.evaluate(DROP_FILE)
    expect(chips(page)).to_have_count(2)
    expect(chips(page).nth(1)).to_have_attribute("data-state", "done")
    assert page.evaluate(
        "() => document.scrollingElement.scrollWidth <= document.scrollingElement.clientWidth"
    )
    page.locator("#composer-input").press("Enter")
    for reload in (False, True):
        if reload:
            page.reload()
            alice.wait_live()
        img = page.locator("#message-list .attachments img")
        expect(img).to_have_count(1)
        page.wait_for_function(THUMBNAIL_LOADED, arg=img.element_handle())
        fits = page.evaluate(
            """() => {
              const list = document.getElementById("message-list");
              const box = list.getBoundingClientRect();
              const parts = [...list.querySelectorAll(".attachments > *")];
              const doc = document.scrollingElement;
              return {
                page: doc.scrollWidth <= doc.clientWidth,
                list: list.scrollWidth <= list.clientWidth,
                parts: parts.every((el) => el.getBoundingClientRect().right <= box.right + 0.5),
              };
            }"""
        )
        assert fits == {"page": True, "list": True, "parts": True}, (reload, fits)


def axe(page: Page, context: object = None) -> list[dict]:
    """axe's violations (every rule axe enables by default) on `context` (the whole page when
    None), each with its rule id, help and the first nodes it found."""
    if not page.evaluate("() => typeof axe === 'object'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate("async (context) => await axe.run(context || document)", context)
    return [
        {
            "id": v["id"],
            "help": v["help"],
            "nodes": [
                {"target": n["target"], "summary": n.get("failureSummary", "")}
                for n in v["nodes"][:5]
            ],
        }
        for v in result["violations"]
    ]


# The parts attachments add to the room page.
ATTACHMENT_PARTS = {
    "include": [
        ["#message-list .attachments"],
        [".attach-tray"],
        ["#attach-button"],
        [".drop-zone"],
        ["#drop-status"],
    ]
}


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_room_with_attachments_has_no_new_axe_violations(live, live_room, open_room, color_scheme):
    """A signed-in reader's room with an image, a file card, a file waiting in the composer (its
    chip) and then the drop highlight: axe finds nothing in any of those parts, and the whole
    page has no rule broken that the same room without attachments did not already break (a
    signed-in room's composer has known findings of its own, see the report of this test)."""
    alice = open_room(
        live_room,
        before_load=signed_in(live, new_user(live, "alice")),
        color_scheme=color_scheme,
        bypass_csp=True,
    )
    page = alice.page
    # (Both colour schemes share the room: live_room's slug is cut before the parameter.)
    alice.send(f"before any file, {color_scheme}")
    expect(alice.message(f"before any file, {color_scheme}")).to_have_class(re.compile(r"\bown\b"))
    expect(page.locator("#message-list > li.pending")).to_have_count(0)
    baseline = {v["id"] for v in axe(page)}

    page.evaluate(PASTE_IMAGE, ["chart.png", 400, 300])
    page.evaluate(DRAG_FILE, ["minutes.pdf", "application/pdf", 4096])
    page.evaluate(DROP_FILE)
    expect(chips(page)).to_have_count(2)
    expect(chips(page).nth(0)).to_have_attribute("data-state", "done")
    expect(chips(page).nth(1)).to_have_attribute("data-state", "done")
    alice.send(f"the chart and the minutes, {color_scheme}")
    message = alice.message(f"the chart and the minutes, {color_scheme}")
    # In the order they were added (the chips'), whichever upload finished first.
    expect(message.locator(".attachments > a")).to_have_class(
        [re.compile(r"attachment-image"), re.compile(r"attachment-file")]
    )
    page.wait_for_function(THUMBNAIL_LOADED, arg=message.locator("img").element_handle())
    # One more waiting in the composer, so its chip is checked too.
    page.locator("#attach-input").set_input_files(
        [{"name": "draft.txt", "mimeType": "text/plain", "buffer": b"draft"}]
    )
    expect(chips(page)).to_have_attribute("data-state", "done")
    assert axe(page, ATTACHMENT_PARTS) == []
    new = [v for v in axe(page) if v["id"] not in baseline]
    assert new == [], json.dumps(new, indent=2)

    # The drop highlight as it shows while dragging.
    page.evaluate(DRAG_FILE, ["x.pdf", "application/pdf", 100])
    expect(page.locator(".drop-zone")).to_be_visible()
    assert axe(page, ATTACHMENT_PARTS) == []
    new = [v for v in axe(page) if v["id"] not in baseline]
    assert new == [], json.dumps(new, indent=2)


def test_message_with_a_file_typed_during_an_outage_is_stored_once_with_it(
    live, live_room, open_room
):
    """The file uploads to Django while the chat server is down; the message typed then shows
    at once as unsent with its file card, survives a reload (the outbox keeps the file), and
    once the chat server is back it is stored exactly once, with its file, for both readers."""
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    bob = open_room(live_room, before_load=signed_in(live, new_user(live, "bob")))
    page = alice.page
    live.stop_chatserver()
    try:
        expect(alice.state).not_to_have_text("Live")
        page.locator("#attach-input").set_input_files(
            [{"name": "agenda.txt", "mimeType": "text/plain", "buffer": b"1. files\n" * 100}]
        )
        expect(chips(page)).to_have_attribute("data-state", "done")
        alice.send("typed during the outage")
        pending = alice.message("typed during the outage")
        expect(pending).to_have_class(re.compile(r"\bpending\b"))
        expect(pending.locator(".attachment-name")).to_have_text("agenda.txt")
        page.reload()
        expect(pending).to_have_class(re.compile(r"\bpending\b"))
        expect(pending.locator(".attachment-meta")).to_have_text("900 bytes, TXT")
    finally:
        live.start_chatserver()

    for reader in (alice, bob):
        reader.wait_live()
        message = reader.message("typed during the outage")
        expect(message).to_have_count(1)
        expect(message).not_to_have_class(re.compile(r"\bpending\b"))
        expect(message.locator(".attachment-name")).to_have_text("agenda.txt")
    stored = [m for m in live.stored_messages(live_room) if m["body"] == "typed during the outage"]
    assert len(stored) == 1
    assert [a["name"] for a in stored[0]["attachments"]] == ["agenda.txt"]


def test_edits_keep_the_files_and_deleting_takes_them_away(live, live_room, open_room):
    """Editing a message with a file keeps the file (also when its text is edited away, for
    the author and live for the other reader); deleting it removes the message and its file
    from both pages, and the file's URL answers 404 from then on."""
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    bob = open_room(live_room, before_load=signed_in(live, new_user(live, "bob")))
    page = alice.page
    page.locator("#attach-input").set_input_files(
        [{"name": "plan.txt", "mimeType": "text/plain", "buffer": b"the plan"}]
    )
    expect(chips(page)).to_have_attribute("data-state", "done")
    alice.send("see the plan")
    mine = alice.message("see the plan")
    expect(mine).not_to_have_class(re.compile(r"\bpending\b"))
    theirs = bob.message("see the plan")
    href = theirs.locator("a.attachment-file").get_attribute("href")
    message_id = mine.get_attribute("data-id")

    mine.hover()
    mine.get_by_role("button", name="Edit your message").click()
    box = page.get_by_role("textbox", name="Edit message")
    box.fill("")
    box.press("Enter")
    expect(box).to_have_count(0)
    for reader in (alice, bob):
        item = reader.page.locator(f'#message-list > li.message[data-id="{message_id}"]')
        expect(item.locator(".edited")).to_have_text("(edited)")
        expect(item.locator(".body")).to_have_text("")
        expect(item.locator(".attachment-name")).to_have_text("plan.txt")

    item = page.locator(f'#message-list > li.message[data-id="{message_id}"]')
    item.hover()
    item.get_by_role("button", name="Delete your message").click()
    item.get_by_role("button", name="Yes, delete your message").click()
    for reader in (alice, bob):
        expect(reader.page.locator(f'li.message[data-id="{message_id}"]')).to_have_count(0)
        expect(reader.page.locator("#message-list .attachments")).to_have_count(0)
    status = bob.page.evaluate("async (url) => (await fetch(url)).status", href)
    assert status == 404


def test_a_thumbnail_has_its_box_before_it_loads_so_the_list_does_not_jump(
    live, live_room, open_room
):
    """While the thumbnail is still on its way (held back), its box already has the thumbnail's
    size (width and height reserved), the newest message is in view at the bottom, and when it
    arrives nothing moves."""
    live.store_messages(live_room, 30, body="filler")
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    bob = open_room(
        live_room,
        viewport={"width": 390, "height": 700},
        before_load=signed_in(live, new_user(live, "bob")),
    )
    expect(bob.message("filler 29")).to_have_count(1)
    held = []
    thumbs = re.compile(r".*/files/[^/]+/thumb\.webp$")
    bob.page.route(thumbs, lambda route: held.append(route))

    assert alice.page.evaluate(PASTE_IMAGE, ["tall.png", 300, 600]) is True
    expect(chips(alice.page)).to_have_attribute("data-state", "done")
    alice.page.locator("#composer-input").press("Enter")
    img = bob.page.locator("#message-list .attachments img")
    expect(img).to_have_count(1)
    pump_until(bob.page, lambda: bool(held))
    width, height = int(img.get_attribute("width")), int(img.get_attribute("height"))
    geometry = """(img) => {
      const list = document.getElementById("message-list");
      const box = img.getBoundingClientRect();
      return {
        width: Math.round(box.width), height: Math.round(box.height), complete: img.complete,
        bottom: Math.round(list.scrollHeight - list.scrollTop - list.clientHeight),
      };
    }"""
    before = img.evaluate(geometry)
    assert before["complete"] is False
    # (Within its 1 px border: the ratio applies to the box inside it.)
    assert abs(before["width"] - width) <= 3 and abs(before["height"] - height) <= 3, before
    assert before["bottom"] <= 1, before
    held[0].continue_()
    bob.page.unroute(thumbs)
    bob.page.wait_for_function(THUMBNAIL_LOADED, arg=img.element_handle())
    after = img.evaluate(geometry)
    assert {**after, "complete": False} == before, (before, after)


def test_a_file_name_that_looks_like_markup_stays_text(live, live_room, open_room):
    """A name with markup in it is shown as typed, live and after a reload, and nothing runs."""
    # (No entity such as `&amp;`: Django's multipart parser unescapes HTML entities in file
    # names; no `/`: a name is its last path segment.)
    name = '<img src=x onerror="alert(1)"><b>"x" & y.pdf'
    alice = open_room(live_room, before_load=signed_in(live, new_user(live, "alice")))
    bob = open_room(live_room, before_load=signed_in(live, new_user(live, "bob")))
    alice.page.locator("#attach-input").set_input_files(
        [{"name": name, "mimeType": "application/pdf", "buffer": b"%PDF-1.4 hostile"}]
    )
    expect(chips(alice.page).locator(".chip-name")).to_have_text(name)
    expect(chips(alice.page)).to_have_attribute("data-state", "done")
    alice.send("hostile name")
    for reload in (False, True):
        for reader in (alice, bob):
            if reload:
                reader.page.reload()
                reader.wait_live()
            card = reader.message("hostile name").locator("a.attachment-file")
            expect(card.locator(".attachment-name")).to_have_text(name)
            expect(reader.page.locator("#message-list img:not(.avatar img)")).to_have_count(0)
    assert alice.dialogs == [] and bob.dialogs == []


def test_a_long_polling_reader_sends_and_receives_files(live, live_room, open_room):
    """With WebSockets refused, the page on long polling sends a message with a file (the POST
    carries the ids) and gets the other reader's image live, both stored once."""
    block = refuse_websockets([])
    login = signed_in(live, new_user(live, "poller"))

    def both(context, page) -> None:
        block(context, page)
        login(context, page)

    poller = open_room(live_room, before_load=both, wait_live=False)
    expect(poller.state).to_have_text("Live (polling)")
    socket = open_room(live_room, before_load=signed_in(live, new_user(live, "socket")))

    poller.page.locator("#attach-input").set_input_files(
        [{"name": "polled.txt", "mimeType": "text/plain", "buffer": b"over long polling"}]
    )
    expect(chips(poller.page)).to_have_attribute("data-state", "done")
    poller.send("from the poller")
    assert socket.page.evaluate(PASTE_IMAGE, ["socket.png", 200, 100]) is True
    expect(chips(socket.page)).to_have_attribute("data-state", "done")
    socket.send("from the socket")
    for reader in (poller, socket):
        expect(reader.message("from the poller").locator(".attachment-name")).to_have_text(
            "polled.txt"
        )
        expect(reader.message("from the socket").locator("img")).to_have_attribute(
            "alt", "socket.png"
        )
        expect(reader.page.locator("#message-list li.pending")).to_have_count(0)
    stored = {m["body"]: m["attachments"] for m in live.stored_messages(live_room)}
    assert [a["name"] for a in stored["from the poller"]] == ["polled.txt"]
    assert [a["name"] for a in stored["from the socket"]] == ["socket.png"]
