/**
 * Attaching files in the composer (signed-in readers; docs/protocol.md, "Attachments"): an
 * "Attach files" button (a labelled button in front of a hidden `<input type=file multiple>`),
 * files dropped anywhere on the room (highlighted, and said to screen readers, while they are
 * dragged over it) and images pasted into the message box (unless the clipboard holds text as
 * well: cells copied from a spreadsheet come with a picture of themselves, and the text wins).
 *
 * Each file uploads at once (uploads.js) and shows as a chip above the composer: its name, its
 * size, a labelled `<progress>` while it uploads, and a remove button. A refusal (the page's
 * limits, or the server's 413 / 429 / 400 with its message) is said in the composer as an alert
 * and the file leaves. The Send button is disabled while a file uploads; with every file
 * uploaded, a message may go without text.
 *
 * A click on an image in the list opens it large in a modal dialog (Escape or Close closes it,
 * focus goes back to the image); a click with a modifier key, or without this module, opens the
 * link (a new tab).
 */

import { formatSize } from "./attachment-view.js";
import { UploadQueue, xhrUpload } from "./uploads.js";

/** Links this module's stylesheet once (kept apart from client.css). */
export function ensureAttachmentStylesheet() {
  if (document.querySelector('link[rel="stylesheet"][href*="/client/attachments."]')) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("./attachments.css", import.meta.url).href;
  document.head.append(link);
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** A paperclip drawn in SVG (the emoji is missing from many fonts), hidden from screen readers. */
function paperclip() {
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("width", "20");
  svg.setAttribute("height", "20");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.classList.add("attach-icon");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute(
    "d",
    "M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5",
  );
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.append(path);
  return svg;
}

/** @returns {boolean} whether a drag carries files (not text or a link dragged around). */
function carriesFiles(event) {
  return Array.from(event.dataTransfer?.types || []).includes("Files");
}

/**
 * Wires attachments into the composer.
 * @param {{root: HTMLElement, form: HTMLFormElement, input: HTMLTextAreaElement,
 *   url: string, maxBytes: number|null, maxFiles: number|null,
 *   onChange?: () => void}} options `url` is the room's upload URL
 *   (`data-attachments-url`); `onChange` runs whenever the files change (the composer
 *   enables or disables Send).
 * @returns {{queue: UploadQueue, busy: () => boolean, hasFiles: () => boolean,
 *   take: () => object[], say: (text: string) => void, clearErrors: () => void}}
 */
export function wireAttachments({ root, form, input, url, maxBytes, maxFiles, onChange }) {
  ensureAttachmentStylesheet();

  // The button and its hidden file input, before the message box.
  const picker = document.createElement("input");
  picker.type = "file";
  picker.multiple = true;
  picker.hidden = true;
  picker.id = "attach-input";
  picker.tabIndex = -1;
  const button = document.createElement("button");
  button.type = "button";
  button.id = "attach-button";
  button.className = "attach-button";
  button.title = "Attach files (or drop them on the room, or paste an image)";
  const icon = paperclip();
  const words = document.createElement("span");
  words.className = "visually-hidden";
  words.textContent = "Attach files";
  button.append(icon, words);
  input.before(button, picker);

  // Above the composer: the files of the message being written, and what went wrong.
  const tray = document.createElement("div");
  tray.className = "attach-tray";
  const chips = document.createElement("ul");
  chips.className = "upload-chips";
  chips.id = "upload-chips";
  chips.setAttribute("aria-label", "Files to send");
  chips.hidden = true;
  const problems = document.createElement("p");
  problems.className = "attach-error";
  problems.id = "attach-error";
  problems.setAttribute("role", "alert");
  problems.hidden = true;
  tray.append(chips, problems);
  form.before(tray);

  // The drop highlight over the room, and its words for screen readers.
  const zone = document.createElement("div");
  zone.className = "drop-zone";
  zone.hidden = true;
  zone.setAttribute("aria-hidden", "true");
  const zoneText = document.createElement("p");
  zoneText.textContent = "Drop files to attach them";
  zone.append(zoneText);
  const announce = document.createElement("p");
  announce.className = "visually-hidden";
  announce.id = "drop-status";
  announce.setAttribute("role", "status");
  // Uploads that finish are said politely (the chip's "Uploaded" is not a live region).
  const progressStatus = document.createElement("p");
  progressStatus.className = "visually-hidden";
  progressStatus.id = "attach-status";
  progressStatus.setAttribute("role", "status");
  root.append(zone, announce, progressStatus);

  /** @type {Map<number, HTMLLIElement>} */
  const chipByKey = new Map();

  const say = (text) => {
    const line = document.createElement("span");
    line.className = "attach-error-line";
    line.textContent = text;
    problems.append(line);
    problems.hidden = false;
  };
  const clearErrors = () => {
    problems.replaceChildren();
    problems.hidden = true;
  };

  const buildChip = (item) => {
    const li = document.createElement("li");
    li.className = "upload-chip";
    li.dataset.key = String(item.key);
    const name = document.createElement("span");
    name.className = "chip-name";
    name.dir = "auto";
    name.textContent = item.name;
    const size = document.createElement("span");
    size.className = "chip-size";
    size.textContent = formatSize(item.size);
    const progress = document.createElement("progress");
    progress.setAttribute("aria-label", `Uploading ${item.name}`);
    const done = document.createElement("span");
    done.className = "chip-done";
    done.textContent = "Uploaded";
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "chip-remove";
    remove.textContent = "✕";
    remove.setAttribute("aria-label", `Remove ${item.name}`);
    remove.addEventListener("click", () => {
      queue.remove(item.key);
      input.focus();
    });
    li.append(name, " ", size, " ", progress, done, " ", remove);
    return li;
  };

  const showChip = (item) => {
    let li = chipByKey.get(item.key);
    if (!queue.list.includes(item)) {
      li?.remove();
      chipByKey.delete(item.key);
      return;
    }
    if (!li) {
      li = buildChip(item);
      chipByKey.set(item.key, li);
      chips.append(li);
    }
    li.dataset.state = item.state;
    const progress = li.querySelector("progress");
    progress.max = Math.max(1, item.total);
    progress.value = Math.min(item.loaded, progress.max);
    progress.hidden = item.state !== "uploading";
    li.querySelector(".chip-done").hidden = item.state !== "done";
  };

  const queue = new UploadQueue({
    upload: (file, onProgress) => xhrUpload(url, file, onProgress),
    maxBytes,
    maxFiles,
    onChange: (item) => {
      if (item?.state === "done" && chipByKey.get(item.key)?.dataset.state === "uploading") {
        progressStatus.textContent = `${item.name} uploaded.`;
      }
      if (item) showChip(item);
      else {
        for (const li of chipByKey.values()) li.remove();
        chipByKey.clear();
      }
      chips.hidden = queue.list.length === 0;
      // Without files the message box needs text; with them, text is optional.
      input.required = queue.list.length === 0;
      onChange?.();
    },
    onError: (_name, message) => say(message),
  });

  const addFiles = (files) => {
    const list = Array.from(files || []);
    if (!list.length || input.readOnly) return;
    clearErrors();
    queue.add(list);
  };

  button.addEventListener("click", () => picker.click());
  picker.addEventListener("change", () => {
    addFiles(picker.files);
    picker.value = ""; // the same file may be chosen again
    input.focus();
  });

  input.addEventListener("paste", (event) => {
    const files = Array.from(event.clipboardData?.files || []);
    if (!files.length) return; // text: the box takes it as usual
    // Office and spreadsheets put a picture of copied text beside the text itself: text wins.
    if ((event.clipboardData.getData("text/plain") || "").trim()) return;
    event.preventDefault();
    addFiles(files);
  });

  // Drops anywhere on the room. dragenter/dragleave fire for every child crossed: a counter
  // says when the drag really left.
  let depth = 0;
  const highlight = (on) => {
    zone.hidden = !on;
    root.classList.toggle("dropping", on);
    const words = on ? "Drop the files to attach them to your message." : "";
    if (announce.textContent !== words) announce.textContent = words;
  };
  root.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event) || input.readOnly) return;
    event.preventDefault();
    depth += 1;
    highlight(true);
  });
  root.addEventListener("dragover", (event) => {
    if (!carriesFiles(event) || input.readOnly) return;
    event.preventDefault(); // without it the browser would open the file instead
    event.dataTransfer.dropEffect = "copy";
  });
  root.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    depth = Math.max(0, depth - 1);
    if (depth === 0) highlight(false);
  });
  root.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    depth = 0;
    highlight(false);
    addFiles(event.dataTransfer.files);
    input.focus();
  });

  return {
    queue,
    busy: () => queue.busy(),
    hasFiles: () => queue.list.length > 0,
    take: () => queue.take(),
    say,
    clearErrors,
  };
}

/**
 * Opens images of the message list in a modal dialog instead of leaving the page.
 * @param {HTMLElement} list `#message-list`.
 */
export function wireLightbox(list) {
  ensureAttachmentStylesheet();
  if (typeof HTMLDialogElement !== "function") return; // the link opens a new tab instead
  const dialog = document.createElement("dialog");
  dialog.className = "lightbox";
  dialog.id = "lightbox";
  const figure = document.createElement("figure");
  const img = document.createElement("img");
  const caption = document.createElement("figcaption");
  const name = document.createElement("span");
  name.className = "lightbox-name";
  name.dir = "auto";
  const open = document.createElement("a");
  open.className = "lightbox-open";
  open.target = "_blank";
  open.rel = "noopener";
  open.textContent = "Open in a new tab";
  const close = document.createElement("button");
  close.type = "button";
  close.className = "lightbox-close";
  close.textContent = "Close";
  caption.append(name, " ", open, " ", close);
  figure.append(img, caption);
  dialog.append(figure);
  dialog.setAttribute("aria-labelledby", "lightbox-title");
  name.id = "lightbox-title";
  document.body.append(dialog);

  let opener = null;
  close.addEventListener("click", () => dialog.close());
  // A click on the backdrop (the dialog itself, outside the figure) closes it too.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close();
  });
  dialog.addEventListener("close", () => {
    img.removeAttribute("src");
    opener?.focus();
    opener = null;
  });

  list.addEventListener("click", (event) => {
    const link = event.target.closest?.("a.attachment-image");
    if (!link || !list.contains(link)) return;
    if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    const thumb = link.querySelector("img");
    const label = thumb?.alt || "Image";
    img.src = link.getAttribute("href");
    img.alt = label;
    name.textContent = label;
    open.href = link.getAttribute("href");
    opener = link;
    dialog.showModal();
    close.focus();
  });
}
