/**
 * Files on their way to a message: one upload per file to `POST /api/rooms/<slug>/attachments/`
 * (docs/protocol.md, "Attachments"), each with its own progress, and the queue of them that the
 * composer shows as chips until the message is sent.
 *
 * An item is `uploading` (with `loaded` / `total` bytes) until the server answers; then it is
 * `done` (with the server's attachment shape) or it leaves the queue with the server's reason
 * (`onError`): 413 `file_too_large`, 429 `upload_quota`, 400 `bad_image` / `bad_upload`, or no
 * answer at all. Files over the page's limits (`CHAT_MAX_FILE_BYTES`,
 * `CHAT_MAX_FILES_PER_MESSAGE`) are refused before any byte leaves (the server would refuse
 * them anyway: this only spares the wait). Removing an item aborts its upload.
 */

import { csrfToken, HttpError } from "./api.js";
import { formatSize } from "./attachment-view.js";

/**
 * Uploads one file with XMLHttpRequest (fetch reports no upload progress).
 * @param {string} url the room's attachments URL (`data-attachments-url`).
 * @param {File|Blob} file
 * @param {(loaded: number, total: number) => void} onProgress bytes sent so far, of `total`.
 * @returns {{promise: Promise<object>, abort: () => void}} the promise resolves with the
 *   attachment shape (201), rejects with an HttpError carrying the server's `error` code and
 *   `message` (status 0 and code `network` without an answer, `aborted` when aborted).
 */
export function xhrUpload(url, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open("POST", url);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.upload.addEventListener("progress", (event) => {
      onProgress(event.loaded, event.lengthComputable ? event.total : file.size);
    });
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null; // a proxy's error page: the status has to speak
      }
      if (xhr.status >= 200 && xhr.status < 300 && body) {
        resolve(body);
        return;
      }
      const code = body?.error || `http_${xhr.status}`;
      reject(new HttpError(xhr.status, code, body?.message || uploadFailureText(xhr.status)));
    });
    xhr.addEventListener("error", () => {
      reject(new HttpError(0, "network", "The upload failed: the server could not be reached."));
    });
    xhr.addEventListener("abort", () => reject(new HttpError(0, "aborted", "The upload was cancelled.")));
    const form = new FormData();
    form.append("file", file, file.name || "file");
    xhr.send(form);
  });
  return { promise, abort: () => xhr.abort() };
}

/** Words for an error answer without a JSON body (a proxy's page). */
function uploadFailureText(status) {
  if (status === 413) return "The file is too large.";
  return `The upload failed (HTTP ${status}).`;
}

/**
 * @typedef {object} UploadItem
 * @property {number} key unique in its queue.
 * @property {File|Blob} file
 * @property {string} name
 * @property {number} size bytes.
 * @property {"uploading"|"done"} state
 * @property {number} loaded bytes sent so far.
 * @property {number} total bytes to send.
 * @property {object|null} attachment the server's attachment shape once done.
 */

/** The files of the message being written. */
export class UploadQueue {
  /**
   * @param {object} options
   * @param {(file: File|Blob, onProgress: (loaded: number, total: number) => void) =>
   *   {promise: Promise<object>, abort: () => void}} options.upload starts one upload
   *   (`xhrUpload` bound to the room's URL; tests pass a fake).
   * @param {number|null} [options.maxBytes] per file (CHAT_MAX_FILE_BYTES); null: no pre-check.
   * @param {number|null} [options.maxFiles] per message (CHAT_MAX_FILES_PER_MESSAGE).
   * @param {(item: UploadItem|null) => void} [options.onChange] an item was added, progressed,
   *   finished or left (null when several changed).
   * @param {(name: string, message: string, code: string) => void} [options.onError] a file was
   *   refused (before or by the server) and is not in the queue.
   */
  constructor({ upload, maxBytes = null, maxFiles = null, onChange, onError }) {
    this.upload = upload;
    this.maxBytes = Number.isFinite(maxBytes) && maxBytes > 0 ? maxBytes : null;
    this.maxFiles = Number.isFinite(maxFiles) && maxFiles > 0 ? maxFiles : null;
    this.onChange = onChange || (() => {});
    this.onError = onError || (() => {});
    /** @type {UploadItem[]} */
    this.list = [];
    this.nextKey = 1;
    /** @type {Map<number, () => void>} abort functions of uploads in progress. */
    this.aborts = new Map();
  }

  /** @returns {UploadItem[]} the files in the order they were added. */
  items() {
    return this.list.slice();
  }

  /** @returns {boolean} whether any file is still uploading (the message cannot go yet). */
  busy() {
    return this.list.some((item) => item.state === "uploading");
  }

  /** @returns {boolean} whether there are files and all of them are uploaded. */
  ready() {
    return this.list.length > 0 && !this.busy();
  }

  /**
   * Starts uploading `files`, each checked against the limits first.
   * @param {Iterable<File|Blob>} files
   * @returns {UploadItem[]} the items that started.
   */
  add(files) {
    const started = [];
    for (const file of files) {
      const name = file.name || "file";
      if (this.maxFiles !== null && this.list.length >= this.maxFiles) {
        this.onError(name, `Not attached: a message takes at most ${this.maxFiles} files.`, "too_many_files");
        continue;
      }
      if (this.maxBytes !== null && file.size > this.maxBytes) {
        const message =
          `Not attached: ${name} is ${formatSize(file.size)}, ` +
          `files may be ${formatSize(this.maxBytes)} at most.`;
        this.onError(name, message, "file_too_large");
        continue;
      }
      if (file.size === 0) {
        this.onError(name, `Not attached: ${name} is empty.`, "bad_upload");
        continue;
      }
      started.push(this.start(file, name));
    }
    return started;
  }

  /** @returns {UploadItem} */
  start(file, name) {
    /** @type {UploadItem} */
    const item = {
      key: this.nextKey++,
      file,
      name,
      size: file.size,
      state: "uploading",
      loaded: 0,
      total: file.size,
      attachment: null,
    };
    this.list.push(item);
    this.onChange(item);
    const { promise, abort } = this.upload(file, (loaded, total) => {
      if (!this.list.includes(item) || item.state !== "uploading") return;
      item.loaded = loaded;
      item.total = total || item.total;
      this.onChange(item);
    });
    this.aborts.set(item.key, abort);
    promise.then(
      (attachment) => {
        this.aborts.delete(item.key);
        if (!this.list.includes(item)) return; // removed meanwhile
        item.state = "done";
        item.loaded = item.total;
        item.attachment = attachment;
        this.onChange(item);
      },
      (err) => {
        this.aborts.delete(item.key);
        if (!this.list.includes(item)) return; // removed by the reader: no error to show
        this.list = this.list.filter((other) => other !== item);
        this.onChange(item);
        const why = err?.message || "The upload failed.";
        this.onError(name, `${name} was not attached: ${why}`, err?.code || "upload_failed");
      },
    );
    return item;
  }

  /**
   * Takes a file out (the reader's remove button); an upload in progress is aborted.
   * @param {number} key
   */
  remove(key) {
    const item = this.list.find((other) => other.key === key);
    if (!item) return;
    this.list = this.list.filter((other) => other !== item);
    const abort = this.aborts.get(key);
    this.aborts.delete(key);
    abort?.();
    this.onChange(item);
  }

  /**
   * The uploaded files for the message being sent, in the order they were added; the queue is
   * empty afterwards. Only when `ready()` (never half the files).
   * @returns {object[]} attachment shapes.
   */
  take() {
    if (!this.ready()) return [];
    const taken = this.list.map((item) => item.attachment);
    this.list = [];
    this.onChange(null);
    return taken;
  }
}
