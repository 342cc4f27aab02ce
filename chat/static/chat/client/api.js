/**
 * HTTP calls the client makes to Django: socket tickets and older history.
 *
 * Both are same-origin and use the browser session (cookies). Errors carry the HTTP status and
 * the `error` code of the JSON error body (docs/protocol.md, "Public JSON API").
 */

/** An HTTP answer that was not 2xx, or no answer at all (status 0). */
export class HttpError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the request never got an answer.
   * @param {string} code the `error` field of the body, or a generic code.
   * @param {string} message human text.
   */
  constructor(status, code, message) {
    super(message || code);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
  }
}

/**
 * Returns `url` with `key=value` set in its query string (replacing an earlier value).
 * @param {string} url absolute or page-relative URL.
 * @param {string} key
 * @param {string|number} value
 * @returns {string}
 */
export function withParam(url, key, value) {
  const parsed = new URL(url, window.location.href);
  parsed.searchParams.set(key, String(value));
  return parsed.toString();
}

/**
 * Reads a response as JSON, turning a non-2xx answer into an HttpError.
 * @param {Response} response
 * @returns {Promise<any>}
 */
export async function jsonOrThrow(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    // A proxy error page or an empty body: the status alone has to speak.
    body = null;
  }
  if (!response.ok) {
    const code = (body && body.error) || `http_${response.status}`;
    throw new HttpError(response.status, code, body && body.message);
  }
  return body;
}

/**
 * Fetches a fresh socket ticket. A network failure becomes HttpError(0, "network").
 * @param {string} ticketUrl the room's `data-ticket-url`.
 * @returns {Promise<{ticket: string, ws_url: string, poll_url: string, user: {name: string, guest: boolean}, expires_in: number}>}
 */
export async function fetchTicket(ticketUrl) {
  let response;
  try {
    response = await fetch(ticketUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
    });
  } catch (err) {
    throw new HttpError(0, "network", String(err));
  }
  return jsonOrThrow(response);
}

/**
 * Fetches up to `limit` messages older than `beforeId` (oldest first).
 * @param {string} messagesUrl the room's `data-messages-url`.
 * @param {number} beforeId
 * @param {number} [limit]
 * @returns {Promise<{messages: object[], has_more: boolean}>}
 */
export async function fetchOlder(messagesUrl, beforeId, limit = 50) {
  const url = withParam(withParam(messagesUrl, "before", beforeId), "limit", limit);
  let response;
  try {
    response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    });
  } catch (err) {
    throw new HttpError(0, "network", String(err));
  }
  return jsonOrThrow(response);
}

/**
 * The value of the `csrftoken` cookie (the room page sets it): Django's CSRF check wants it
 * back in the `X-CSRFToken` header of every unsafe request.
 * @returns {string}
 */
export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...value] = part.trim().split("=");
    if (name === "csrftoken") return decodeURIComponent(value.join("="));
  }
  return "";
}

/**
 * Edits a stored message (docs/protocol.md, "Message actions"); resolves with the message as
 * stored, rejects with an HttpError carrying the refusal's code and text.
 * @param {string} messagesUrl the room's `data-messages-url`.
 * @param {number} id
 * @param {string} body
 * @returns {Promise<{message: object}>}
 */
export async function editMessage(messagesUrl, id, body) {
  return postAction(messagesUrl, id, "edit", { body });
}

/**
 * Deletes a stored message (docs/protocol.md, "Message actions"); resolves with
 * `{"deleted": id}`, rejects with an HttpError carrying the refusal's code and text.
 * @param {string} messagesUrl the room's `data-messages-url`.
 * @param {number} id
 * @returns {Promise<{deleted: number}>}
 */
export async function deleteMessage(messagesUrl, id) {
  return postAction(messagesUrl, id, "delete", {});
}

/**
 * Adds the reader's reaction with `emoji` to a message, or removes it when already there;
 * resolves with `{"message": <message>}` (its `reactions` as now).
 * @param {string} messagesUrl the room's `data-messages-url`.
 * @param {number} id
 * @param {string} emoji
 * @returns {Promise<{message: object}>}
 */
export async function toggleReaction(messagesUrl, id, emoji) {
  return postAction(messagesUrl, id, "react", { emoji });
}

/** POSTs JSON to `<messagesUrl><id>/<action>/` with the session and the CSRF header. */
async function postAction(messagesUrl, id, action, data) {
  const url = new URL(`${id}/${action}/`, new URL(messagesUrl, window.location.href)).toString();
  let response;
  try {
    response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(data),
    });
  } catch (err) {
    throw new HttpError(0, "network", String(err));
  }
  return jsonOrThrow(response);
}
