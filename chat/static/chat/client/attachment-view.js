/**
 * How a message's attachments look (docs/protocol.md, the attachment shape): under the body,
 * images as a link to the full image around their thumbnail, other files as a card that links
 * to the download.
 *
 * Built with DOM calls only: a file's name is the uploader's text and goes in as text (the
 * image's `alt`, the card's name), never as markup. The room page renders the very same markup
 * on the server (chat/templatetags/chat_messages.py `attachments`), so a reload looks like the
 * live page. Thumbnails carry their `width` and `height`, so the browser reserves their box
 * before they load and the list does not jump (timeline.js keeps it pinned to the newest).
 */

const UNITS = ["KB", "MB", "GB", "TB"];

/**
 * `numerator / denominator` rounded half up, in integers (the server's tag rounds the same way;
 * floating-point `toFixed` would round some halves differently from Python's `format`).
 */
function divRound(numerator, denominator) {
  return Math.floor((2 * numerator + denominator) / (2 * denominator));
}

/**
 * A size in words, in binary units (1 KB = 1,024 bytes, as the server's limits are counted):
 * "512 bytes", "1 byte", "2.4 MB", "48 KB" (one decimal below 10 units, whole numbers above).
 * The server's `chat_messages.human_size` says the same for the same number.
 * @param {number} bytes
 * @returns {string}
 */
export function formatSize(bytes) {
  const size = Math.max(0, Math.floor(Number(bytes) || 0));
  if (size < 1024) return `${size} ${size === 1 ? "byte" : "bytes"}`;
  let unit = 0;
  let scale = 1024;
  while (unit < UNITS.length - 1 && size >= scale * 1024) {
    unit += 1;
    scale *= 1024;
  }
  const tenths = divRound(size * 10, scale);
  if (tenths < 100) return `${Math.floor(tenths / 10)}.${tenths % 10} ${UNITS[unit]}`;
  return `${divRound(size, scale)} ${UNITS[unit]}`;
}

/**
 * The file's type as a reader says it: its extension in capitals ("PDF"), else its content
 * type, else "File". The server's `chat_messages.type_label` says the same.
 * @param {{name: string, content_type?: string}} attachment
 * @returns {string}
 */
export function typeLabel(attachment) {
  const match = /\.([A-Za-z0-9]{1,8})$/.exec(attachment.name || "");
  if (match) return match[1].toUpperCase();
  return attachment.content_type || "File";
}

/**
 * Whether `value` has the attachment shape's fields the view relies on.
 * @param {any} value
 * @returns {boolean}
 */
export function isAttachment(value) {
  return Boolean(
    value && typeof value.id === "string" && typeof value.name === "string" && typeof value.url === "string",
  );
}

/**
 * A site-relative URL kept as such; anything else (another origin, `javascript:`) becomes "#".
 * The server only hands out `/files/...`; this is a second line of defence.
 * @param {string} url
 * @returns {string}
 */
export function safeUrl(url) {
  return typeof url === "string" && url.startsWith("/") && !url.startsWith("//") ? url : "#";
}

/**
 * One attachment: an image link around its thumbnail, or a file card.
 * @param {object} attachment the attachment shape.
 * @returns {HTMLElement}
 */
export function buildAttachment(attachment) {
  const link = document.createElement("a");
  link.href = safeUrl(attachment.url);
  const thumb = attachment.thumbnail;
  if (attachment.kind === "image" && thumb && typeof thumb.url === "string") {
    link.className = "attachment attachment-image";
    // A new tab when the lightbox (attach-composer.js) is not there to catch the click.
    link.target = "_blank";
    link.rel = "noopener";
    const img = document.createElement("img");
    img.src = safeUrl(thumb.url);
    img.alt = attachment.name;
    img.width = Number(thumb.width) || 0;
    img.height = Number(thumb.height) || 0;
    img.loading = "lazy";
    link.append(img);
    return link;
  }
  link.className = "attachment attachment-file";
  link.setAttribute("download", "");
  const name = document.createElement("span");
  name.className = "attachment-name";
  name.dir = "auto";
  name.textContent = attachment.name;
  const meta = document.createElement("span");
  meta.className = "attachment-meta";
  meta.textContent = `${formatSize(attachment.size)}, ${typeLabel(attachment)}`;
  link.append(name, " ", meta);
  return link;
}

/**
 * The `<div class="attachments">` of a message, or null when it has none.
 * @param {object[]|undefined} attachments
 * @returns {HTMLElement|null}
 */
export function buildAttachments(attachments) {
  const shown = Array.isArray(attachments) ? attachments.filter(isAttachment) : [];
  if (!shown.length) return null;
  const box = document.createElement("div");
  box.className = "attachments";
  box.dataset.ids = shown.map((a) => a.id).join(" ");
  box.append(...shown.map(buildAttachment));
  return box;
}

/**
 * Puts `attachments` under the body of `li` (replacing those shown unless they are the same
 * ones; none removes them).
 * @param {HTMLElement} li a `li.message`.
 * @param {object[]|undefined} attachments
 */
export function showAttachments(li, attachments) {
  const old = li.querySelector(":scope > .attachments");
  const fresh = buildAttachments(attachments);
  if (!fresh) {
    old?.remove();
    return;
  }
  if (old) {
    if (old.dataset.ids === fresh.dataset.ids) return;
    old.replaceWith(fresh);
    return;
  }
  const body = li.querySelector(":scope > .body");
  if (body) body.after(fresh);
  else li.append(fresh);
}
