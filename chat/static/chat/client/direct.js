/**
 * Direct messages from a name: a "Message" button beside every registered person other than the
 * reader, in the presence list and on their messages. Pressing it submits the page's hidden
 * `#direct-form` (a CSRF-protected POST to `/chats/direct/<user id>/`); Django answers with a
 * redirect to the conversation, made on first use (chat/direct.py).
 *
 * Guests have no form (they cannot send direct messages) and guests' names get no button (they
 * cannot receive them). Ids are the protocol's stable `u:<id>`, never display names.
 */

/** `u:<id>` -> the numeric id as text, or null for a guest or anything else. */
export function userIdOf(uid) {
  const match = /^u:([1-9][0-9]{0,18})$/.exec(uid || "");
  return match ? match[1] : null;
}

/** The form's action for one user id: the template URL ends in `/0/`. */
export function directUrl(template, id) {
  return template.replace(/\/0\/$/, `/${id}/`);
}

/**
 * A "Message" button for `uid` named `name`.
 * @param {string} uid
 * @param {string} name
 * @returns {HTMLButtonElement}
 */
function buildButton(uid, name) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "dm-open";
  button.dataset.user = uid;
  button.textContent = "Message";
  button.setAttribute("aria-label", `Message ${name} directly`);
  return button;
}

/**
 * Wires the buttons into the presence list and the message list.
 * @param {{form: HTMLFormElement|null, presence: HTMLElement, list: HTMLElement, meId: string}} o
 */
export function wireDirectMessages({ form, presence, list, meId }) {
  if (!form) return;
  const template = form.dataset.url || "";
  const open = (uid) => {
    const id = userIdOf(uid);
    if (!id || uid === meId) return;
    form.action = directUrl(template, id);
    form.submit();
  };
  const decoratePresence = () => {
    for (const li of presence.querySelectorAll(":scope > li[data-id]")) {
      const uid = li.dataset.id;
      if (!userIdOf(uid) || uid === meId || li.querySelector(".dm-open")) continue;
      const name = li.querySelector(".author")?.textContent || "";
      li.append(" ", buildButton(uid, name));
    }
  };
  const decorateMessages = () => {
    for (const li of list.querySelectorAll(":scope > li.message[data-author]")) {
      const uid = li.dataset.author;
      if (!userIdOf(uid) || uid === meId || li.querySelector(".dm-tools")) continue;
      const author = li.querySelector(".author");
      if (!author) continue;
      const tools = document.createElement("span");
      tools.className = "dm-tools";
      tools.append(buildButton(uid, author.textContent || ""));
      author.after(" ", tools);
    }
  };
  for (const target of [presence, list]) {
    target.addEventListener("click", (event) => {
      const button = event.target instanceof Element ? event.target.closest(".dm-open") : null;
      if (button) open(button.dataset.user);
    });
  }
  new MutationObserver(decoratePresence).observe(presence, { childList: true });
  new MutationObserver(decorateMessages).observe(list, { childList: true });
  decoratePresence();
  decorateMessages();
}
