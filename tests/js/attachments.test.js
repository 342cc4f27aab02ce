/**
 * Unit tests for attachments in the client (run by `node --test tests/js/`, from `make test`):
 * chat/static/chat/client/attachment-view.js (sizes in words, the markup under a message),
 * uploads.js (the upload queue's states) and the frames sender.js / outbox.js send for a
 * message with files.
 *
 * The queue is driven with a fake `upload` whose uploads the test settles by hand (progress,
 * answer, refusal); the sender with the fake connection and timeline of sender.test.js's kind
 * and the real outbox over a fake Web Storage. What they pin: a file is uploading until the
 * server answers, then done (with the server's shape) or gone with the server's message; files
 * over the page's limits never start; the message cannot take files while one uploads; the
 * frame names the files' ids, and every resend (reconnect, reload) names the same ids with the
 * same nonce; names stay text.
 */

import assert from "node:assert/strict";
import { webcrypto } from "node:crypto";
import { beforeEach, test } from "node:test";

import { FakeText, installFakeDocument } from "./fake-dom.js";
import { FakeStorage } from "./fake-storage.js";

if (!globalThis.crypto) globalThis.crypto = webcrypto;
installFakeDocument();

const { formatSize, typeLabel, buildAttachments, safeUrl } = await import(
  "../../chat/static/chat/client/attachment-view.js"
);
const { UploadQueue } = await import("../../chat/static/chat/client/uploads.js");
const { buildMessage } = await import("../../chat/static/chat/client/render.js");
const { Outbox } = await import("../../chat/static/chat/client/outbox.js");
const { Sender } = await import("../../chat/static/chat/client/sender.js");

beforeEach(() => {
  installFakeDocument();
});

const tick = () => new Promise((resolve) => setImmediate(resolve));

function image(id, name = "shot.png") {
  return {
    id,
    name,
    size: 48213,
    content_type: "image/png",
    kind: "image",
    url: `/files/${id}/${name}`,
    width: 1280,
    height: 720,
    thumbnail: { url: `/files/${id}/thumb.webp`, width: 320, height: 180 },
  };
}

function file(id, name = "report.pdf", size = 2516582) {
  return {
    id,
    name,
    size,
    content_type: "application/pdf",
    kind: "file",
    url: `/files/${id}/${name}`,
    width: null,
    height: null,
    thumbnail: null,
  };
}

/** Every text node under `node`, in order. */
function texts(node) {
  if (node instanceof FakeText) return [node.data];
  return node.childNodes.flatMap(texts);
}

test("sizes in words: bytes, then one decimal below 10 units, whole numbers above", () => {
  const cases = [
    [0, "0 bytes"],
    [1, "1 byte"],
    [1023, "1023 bytes"],
    [1024, "1.0 KB"],
    [1280, "1.3 KB"], // exactly 1.25: half up (the server's tag rounds the same way)
    [10188, "9.9 KB"],
    [10189, "10 KB"],
    [48213, "47 KB"],
    [1048575, "1024 KB"],
    [1048576, "1.0 MB"],
    [2516582, "2.4 MB"],
    [10 * 1048576, "10 MB"],
    [3 * 1024 ** 3, "3.0 GB"],
    [5 * 1024 ** 4, "5.0 TB"],
    [-5, "0 bytes"],
  ];
  for (const [bytes, words] of cases) assert.equal(formatSize(bytes), words, `${bytes} bytes`);
});

test("a file's type is its extension in capitals, else its content type", () => {
  assert.equal(typeLabel({ name: "report.final.pdf", content_type: "application/pdf" }), "PDF");
  assert.equal(typeLabel({ name: "Makefile", content_type: "text/plain" }), "text/plain");
  assert.equal(typeLabel({ name: "noext", content_type: "" }), "File");
});

test("only site-relative URLs are linked", () => {
  assert.equal(safeUrl("/files/a/b.png"), "/files/a/b.png");
  assert.equal(safeUrl("//evil.example/x"), "#");
  assert.equal(safeUrl("javascript:alert(1)"), "#");
  assert.equal(safeUrl("https://evil.example/x"), "#");
});

test("an image is a link to the full image around its thumbnail, its box reserved", () => {
  const box = buildAttachments([image("A1")]);
  assert.equal(box.className, "attachments");
  const [link] = box.children;
  assert.equal(link.tagName, "A");
  assert.equal(link.href, "/files/A1/shot.png");
  assert.match(link.className, /attachment-image/);
  const [img] = link.children;
  assert.equal(img.tagName, "IMG");
  assert.equal(img.src, "/files/A1/thumb.webp");
  assert.equal(img.alt, "shot.png");
  assert.equal(img.width, 320);
  assert.equal(img.height, 180);
  assert.equal(img.loading, "lazy");
});

test("a file is a download card with its name, size and type, the name as text", () => {
  const hostile = '<img src=x onerror="alert(1)">.pdf';
  const box = buildAttachments([file("B2", hostile)]);
  const [card] = box.children;
  assert.equal(card.tagName, "A");
  assert.match(card.className, /attachment-file/);
  assert.equal(card.getAttribute("download"), "");
  assert.equal(card.href, `/files/B2/${hostile}`);
  assert.deepEqual(texts(card), [hostile, " ", "2.4 MB, PDF"]);
  assert.equal(card.all("img").length, 0);
});

test("a message shows its attachments under the body, in upload order; none: nothing", () => {
  const msg = {
    id: 3,
    user: { id: "u:1", name: "alice" },
    body: "",
    sent_at: "2026-11-22T09:14:03.512Z",
    attachments: [image("A1"), file("B2")],
  };
  const li = buildMessage(msg);
  const classes = li.children.map((child) => child.className);
  const body = li.children.findIndex((child) => child.classList.contains("body"));
  assert.ok(body > 0);
  assert.equal(classes[body + 1], "attachments");
  const box = li.children[body + 1];
  assert.equal(box.dataset.ids, "A1 B2");
  assert.deepEqual(
    box.children.map((child) => child.href),
    ["/files/A1/shot.png", "/files/B2/report.pdf"],
  );
  const plain = buildMessage({ ...msg, attachments: [] });
  assert.ok(!plain.children.some((child) => child.className === "attachments"));
  assert.equal(buildAttachments(undefined), null);
  assert.equal(buildAttachments([{ name: "no id" }]), null);
});

/** An `upload` whose uploads the test settles by hand. */
function fakeUploads() {
  const started = [];
  const upload = (blob, onProgress) => {
    let resolve;
    let reject;
    const promise = new Promise((yes, no) => {
      resolve = yes;
      reject = no;
    });
    const entry = { blob, onProgress, resolve, reject, aborted: false };
    entry.abort = () => {
      entry.aborted = true;
      const err = new Error("The upload was cancelled.");
      err.code = "aborted";
      reject(err);
    };
    started.push(entry);
    return { promise, abort: entry.abort };
  };
  return { started, upload };
}

const blob = (name, size) => ({ name, size });

test("upload queue: uploading with progress, then done; the message takes the files in order", async () => {
  const { started, upload } = fakeUploads();
  const changes = [];
  const queue = new UploadQueue({ upload, onChange: (item) => changes.push(item?.state ?? "cleared") });
  queue.add([blob("a.png", 1000), blob("b.pdf", 3000)]);
  assert.deepEqual(
    queue.items().map((item) => [item.name, item.state, item.loaded, item.total]),
    [
      ["a.png", "uploading", 0, 1000],
      ["b.pdf", "uploading", 0, 3000],
    ],
  );
  assert.equal(queue.busy(), true);
  assert.equal(queue.ready(), false);
  assert.deepEqual(queue.take(), [], "never half the files");

  started[1].onProgress(1500, 3000);
  assert.equal(queue.items()[1].loaded, 1500);
  started[1].resolve(file("B"));
  await tick();
  assert.equal(queue.items()[1].state, "done");
  assert.equal(queue.busy(), true, "a.png still uploads");
  started[0].onProgress(1000, 1000);
  started[0].resolve(image("A"));
  await tick();
  assert.equal(queue.busy(), false);
  assert.equal(queue.ready(), true);
  assert.deepEqual(
    queue.take().map((a) => a.id),
    ["A", "B"],
    "upload order (the order they were added), not the order they finished",
  );
  assert.deepEqual(queue.items(), []);
  assert.equal(queue.ready(), false);
  assert.deepEqual(changes.slice(-1), ["cleared"]);
});

test("upload queue: a refusal removes the file and says the server's message", async () => {
  const { started, upload } = fakeUploads();
  const errors = [];
  const queue = new UploadQueue({ upload, onError: (name, message, code) => errors.push([name, message, code]) });
  queue.add([blob("huge.bin", 5000), blob("ok.txt", 10)]);
  const refusal = new Error("Files may be 10 MiB at most.");
  refusal.code = "file_too_large";
  started[0].reject(refusal);
  await tick();
  assert.deepEqual(errors, [["huge.bin", "huge.bin was not attached: Files may be 10 MiB at most.", "file_too_large"]]);
  assert.deepEqual(
    queue.items().map((item) => item.name),
    ["ok.txt"],
  );
  started[1].resolve(file("T", "ok.txt", 10));
  await tick();
  assert.equal(queue.ready(), true);
});

test("upload queue: files over the page's limits never start", () => {
  const { started, upload } = fakeUploads();
  const errors = [];
  const queue = new UploadQueue({
    upload,
    maxBytes: 1048576,
    maxFiles: 2,
    onError: (name, message, code) => errors.push([name, code, message]),
  });
  queue.add([blob("big.mov", 1048577), blob("empty.txt", 0), blob("a", 1), blob("b", 1048576), blob("c", 1)]);
  assert.deepEqual(
    started.map((entry) => entry.blob.name),
    ["a", "b"],
  );
  assert.deepEqual(
    errors.map(([name, code]) => [name, code]),
    [
      ["big.mov", "file_too_large"],
      ["empty.txt", "bad_upload"],
      ["c", "too_many_files"],
    ],
  );
  assert.equal(errors[0][2], "Not attached: big.mov is 1.0 MB, files may be 1.0 MB at most.");
  assert.equal(errors[2][2], "Not attached: a message takes at most 2 files.");
});

test("upload queue: removing a file aborts its upload, quietly", async () => {
  const { started, upload } = fakeUploads();
  const errors = [];
  const queue = new UploadQueue({ upload, onError: (...args) => errors.push(args) });
  const [item] = queue.add([blob("slow.zip", 9000)]);
  queue.remove(item.key);
  assert.equal(started[0].aborted, true);
  await tick();
  assert.deepEqual(errors, [], "the reader removed it: nothing to say");
  assert.deepEqual(queue.items(), []);
  assert.equal(queue.busy(), false);
  // A late answer for a removed file changes nothing.
  started[0].resolve(file("late"));
  await tick();
  assert.deepEqual(queue.items(), []);
});

class FakeTimeline {
  constructor() {
    this.pending = new Map();
  }
  addPending(entry) {
    this.pending.set(entry.nonce, entry);
  }
  scrollToBottom() {}
  setSending() {}
  setRetrying() {}
  setFailed() {}
  removePending(nonce) {
    this.pending.delete(nonce);
  }
  markDeleted() {}
}

class FakeConnection {
  constructor(live = true) {
    this.live = live;
    this.frames = [];
  }
  send(frame) {
    if (!this.live) return false;
    this.frames.push(frame);
    return true;
  }
}

function sender(storage, live = true) {
  const outbox = new Outbox("room", storage);
  const timeline = new FakeTimeline();
  const connection = new FakeConnection(live);
  const timers = { setTimeout: () => 0, clearTimeout: () => {} };
  const s = new Sender({ outbox, timeline, connection, me: () => "alice", timers, onStored: () => {} });
  return { outbox, timeline, connection, sender: s };
}

test("the frame names the files' ids; the body may be empty with files", () => {
  const { connection, sender: s, timeline } = sender(null);
  const entry = s.submit("", null, [image("A1"), file("B2")]);
  assert.deepEqual(connection.frames, [
    { type: "message", body: "", nonce: entry.nonce, attachments: ["A1", "B2"] },
  ]);
  // The unsent message shows its files (their shapes) until the stored one comes back.
  assert.deepEqual(
    timeline.pending.get(entry.nonce).attachments.map((a) => a.name),
    ["shot.png", "report.pdf"],
  );
  s.acknowledge({ id: 1, nonce: entry.nonce, body: "", attachments: [] });
  s.submit("text only");
  assert.equal("attachments" in connection.frames[1], false, "no files: the frame says nothing of them");
});

test("resends (reconnect, reload) carry the same ids with the same nonce", () => {
  const storage = new FakeStorage();
  const before = sender(storage);
  const entry = before.sender.submit("look", null, [image("A1")]);
  // The connection dropped before an answer: the next transport gets the same frame.
  before.sender.flush();
  assert.equal(before.connection.frames.length, 2);
  assert.deepEqual(before.connection.frames[1], before.connection.frames[0]);
  // The page went away; the next one resends from the outbox.
  const after = sender(storage, false);
  after.sender.restore();
  assert.deepEqual(after.timeline.pending.get(entry.nonce).attachments.map((a) => a.id), ["A1"]);
  after.connection.live = true;
  after.sender.flush();
  assert.deepEqual(after.connection.frames, [
    { type: "message", body: "look", nonce: entry.nonce, attachments: ["A1"] },
  ]);
});
