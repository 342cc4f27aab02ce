/**
 * Changing messages: Edit and Delete on each of the reader's stored messages, and reactions on
 * every stored message (a small palette plus any single emoji; Django checks it is one).
 *
 * The actions are real buttons in every own message, shown on hover and on keyboard focus (and
 * always on devices without hover, such as phones). Editing replaces the body with a labelled
 * text box: Enter (or Save) saves, Shift+Enter adds a line, Escape (or Cancel) leaves the message
 * as it was. Up-arrow in the empty composer edits the reader's newest message. A save goes to
 * Django's public API (`editMessage`); everyone, this reader included, then gets the `edited`
 * frame, and the answer is shown at once (the timeline keeps the highest version either way).
 * Delete asks once more in place (Delete / Keep; Escape keeps); the message then leaves every
 * reader's list with the `deleted` frame, and at once for this reader.
 * A refusal (`not_author`, `edit_window_passed`, ...) is shown in the message, as an alert.
 * Reply (on every stored message) hands the message to `onReply` (static/chat/client/replies.js).
 * On phones the same actions are in a "More actions" menu (static/chat/client/message-menu.js),
 * opened by its ⋯ button or a long press on the message.
 */

import { deleteMessage, editMessage, toggleReaction } from "./api.js";
import { wireMessageMenu } from "./message-menu.js";
import { bodySource } from "./richtext.js";

/** The palette offered first; any other single emoji can be typed. */
export const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/**
 * A `<button type="button">` (every control of this module is one).
 * @param {string} text the visible text.
 * @param {string} label its accessible name (`aria-label`).
 * @param {{className?: string, tool?: string, type?: string}} [options] `tool` becomes
 *   `data-tool` (a message action), `type` "submit" for a form's main button.
 * @returns {HTMLButtonElement}
 */
export function makeButton(text, label, { className, tool, type = "button" } = {}) {
  const button = document.createElement("button");
  button.type = type;
  if (className) button.className = className;
  if (tool) button.dataset.tool = tool;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  return button;
}

/** A message action of the hover toolbar. */
const toolButton = (tool, text, label) => makeButton(text, label, { className: `message-tool ${tool}`, tool });

/** Links this module's stylesheet once (kept apart from client.css). */
function ensureStylesheet() {
  if (document.querySelector('link[rel="stylesheet"][href*="/client/lifecycle."]')) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("./lifecycle.css", import.meta.url).href;
  document.head.append(link);
}

/**
 * Wires the message actions into the message list.
 * @param {{list: HTMLOListElement, timeline: import("./timeline.js").Timeline,
 *   meId: string, messagesUrl: string, composer: HTMLTextAreaElement,
 *   onReply?: (li: HTMLLIElement) => void}} options
 */
export function wireMessageActions({ list, timeline, meId, messagesUrl, composer, onReply }) {
  ensureStylesheet();
  const isOwn = (li) =>
    Boolean(meId) && li.dataset.author === meId && li.dataset.id && !li.classList.contains("pending");

  const decorate = (li) => {
    if (!li.dataset.id || li.classList.contains("pending")) return;
    if (li.querySelector(".message-tools")) return;
    const tools = document.createElement("span");
    tools.className = "message-tools";
    const react = toolButton("react", "React", "React to this message");
    react.setAttribute("aria-expanded", "false");
    tools.append(react);
    if (onReply) tools.append(" ", toolButton("reply", "Reply", "Reply to this message"));
    if (isOwn(li)) {
      tools.append(
        " ",
        toolButton("edit", "Edit", "Edit your message"),
        " ",
        toolButton("delete", "Delete", "Delete your message"),
      );
    }
    // Phones: one ⋯ button opens every action above as a menu (message-menu.js).
    const more = makeButton("⋯", "More actions", { className: "message-tool more", tool: "more" });
    more.setAttribute("aria-haspopup", "menu");
    more.setAttribute("aria-expanded", "false");
    tools.append(" ", more);
    li.append(tools);
  };
  const decorateAll = () => {
    // The toolbar makes a message taller after the list scrolled to it: a reader at the
    // newest message stays there (the last one is not cut off by its own toolbar).
    const atBottom = timeline.isNearBottom();
    for (const li of list.querySelectorAll(":scope > li.message[data-id]")) decorate(li);
    if (atBottom) timeline.scrollToBottom();
  };
  // Messages arrive by every path (server-rendered, hello, live, older pages) into the list;
  // the reader's own unsent message becomes a stored one when it gets its `data-id`.
  new MutationObserver(decorateAll).observe(list, { childList: true });
  new MutationObserver(decorateAll).observe(list, {
    subtree: true,
    attributes: true,
    attributeFilter: ["data-id"],
  });
  decorateAll();

  /** @param {HTMLLIElement} li @param {HTMLElement} returnFocus */
  const startEdit = (li, returnFocus) => {
    if (li.classList.contains("editing")) {
      li.querySelector(".edit-form textarea")?.focus();
      return;
    }
    const body = li.querySelector(".body");
    if (!body) return;
    const id = Number(li.dataset.id);
    li.classList.add("editing");
    const form = document.createElement("form");
    form.className = "edit-form";
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = `edit-${id}`;
    label.textContent = "Edit message";
    const box = document.createElement("textarea");
    box.id = `edit-${id}`;
    box.rows = 2;
    box.value = bodySource(li);
    const maxBody = Number(list.dataset.maxBody);
    if (maxBody) box.maxLength = maxBody;
    const save = makeButton("Save", "Save the edited message", { type: "submit" });
    const cancel = makeButton("Cancel", "Cancel editing (Escape)");
    const hint = document.createElement("span");
    hint.className = "edit-hint";
    hint.textContent = "Enter to save, Escape to cancel";
    const problem = document.createElement("p");
    problem.className = "edit-error";
    problem.setAttribute("role", "alert");
    form.append(label, box, " ", save, " ", cancel, " ", hint, problem);
    body.after(form);

    const finish = () => {
      form.remove();
      li.classList.remove("editing");
      (returnFocus?.isConnected ? returnFocus : li.querySelector(".message-tool.edit"))?.focus();
    };
    const submit = async () => {
      const text = box.value.trim();
      // A message with files may lose its text (the files are its content; the server agrees).
      if (!text && !li.querySelector(":scope > .attachments")) {
        problem.textContent = "A message cannot be empty.";
        return;
      }
      save.disabled = true;
      try {
        const answer = await editMessage(messagesUrl, id, text);
        if (answer?.message) timeline.applyEdit(answer.message);
        finish();
      } catch (err) {
        problem.textContent = err?.message || "The message could not be edited.";
        save.disabled = false;
      }
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    cancel.addEventListener("click", finish);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        finish();
      } else if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        submit();
      }
    });
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  };

  /** Shows an alert about `li` (a refused action) in the message itself. */
  const showProblem = (li, text) => {
    let problem = li.querySelector(":scope > .action-error");
    if (!problem) {
      problem = document.createElement("p");
      problem.className = "action-error";
      problem.setAttribute("role", "alert");
      li.append(problem);
    }
    problem.textContent = text;
  };

  /** @param {HTMLLIElement} li @param {HTMLElement} trigger the Delete button */
  const confirmDelete = (li, trigger) => {
    if (li.querySelector(".delete-confirm")) return;
    const id = Number(li.dataset.id);
    const box = document.createElement("span");
    box.className = "delete-confirm";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", "Delete this message?");
    const question = document.createElement("span");
    question.textContent = "Delete this message?";
    const yes = makeButton("Delete", "Yes, delete your message");
    const keep = makeButton("Keep", "No, keep your message");
    box.append(question, " ", yes, " ", keep);
    li.append(box);
    const close = () => {
      box.remove();
      if (trigger.isConnected) trigger.focus();
    };
    keep.addEventListener("click", close);
    box.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await deleteMessage(messagesUrl, id);
        timeline.markDeleted(id);
        composer.focus();
      } catch (err) {
        close();
        showProblem(li, err?.message || "The message could not be deleted.");
      }
    });
    yes.focus();
  };

  /** Toggles the reader's reaction; the answer is shown at once (the frame follows). */
  const react = async (li, emoji) => {
    const id = Number(li.dataset.id);
    try {
      const answer = await toggleReaction(messagesUrl, id, emoji);
      if (answer?.message) timeline.applyReactions(answer.message);
      li.querySelector(":scope > .action-error")?.remove();
      return true;
    } catch (err) {
      showProblem(li, err?.message || "The reaction could not be saved.");
      return false;
    }
  };

  /** Draws a message's reactions: one toggle button per emoji, pressed when the reader's. */
  timeline.onReactions = (li, reactions) => {
    let box = li.querySelector(":scope > .reactions");
    if (!reactions.length) {
      box?.remove();
      return;
    }
    if (!box) {
      box = document.createElement("div");
      box.className = "reactions";
      box.setAttribute("role", "group");
      box.setAttribute("aria-label", "Reactions");
      // After the body and its attachments (the server renders them in this order).
      (li.querySelector(":scope > .attachments") || li.querySelector(":scope > .body"))?.after(box);
      if (!box.isConnected) li.append(box);
    }
    box.replaceChildren(
      ...reactions.map((reaction) => {
        const users = Array.isArray(reaction.users) ? reaction.users : [];
        const mine = users.some((user) => user.id === meId);
        const names = users.map((user) => user.name).join(", ");
        // The room page renders the same chip (chat/templatetags/chat_messages.py `reactions`).
        const chip = makeButton(
          "",
          `${reaction.emoji} ${reaction.count}: ${names}. ` +
            (mine ? "Remove your reaction" : `React with ${reaction.emoji}`),
          { className: "reaction" },
        );
        chip.dataset.emoji = reaction.emoji;
        chip.setAttribute("aria-pressed", String(mine));
        chip.title = names;
        const face = document.createElement("span");
        face.className = "reaction-emoji";
        face.textContent = reaction.emoji;
        const count = document.createElement("span");
        count.className = "reaction-count";
        count.textContent = String(reaction.count);
        chip.append(face, " ", count);
        return chip;
      }),
    );
  };

  /** @param {HTMLLIElement} li @param {HTMLButtonElement} trigger the React button */
  const openPicker = (li, trigger) => {
    const open = li.querySelector(":scope > .reaction-picker");
    if (open) {
      open.remove();
      trigger.setAttribute("aria-expanded", "false");
      return;
    }
    const picker = document.createElement("form");
    picker.className = "reaction-picker";
    picker.setAttribute("role", "group");
    picker.setAttribute("aria-label", "Pick a reaction");
    const close = () => {
      picker.remove();
      trigger.setAttribute("aria-expanded", "false");
      if (trigger.isConnected) trigger.focus();
    };
    for (const emoji of PALETTE) {
      const choice = makeButton(emoji, `React with ${emoji}`);
      choice.addEventListener("click", async () => {
        if (await react(li, emoji)) close();
      });
      picker.append(choice);
    }
    const other = document.createElement("input");
    other.type = "text";
    other.size = 3;
    other.maxLength = 32;
    other.setAttribute("aria-label", "Any emoji");
    other.placeholder = "🙂";
    const add = makeButton("Add", "Add this emoji", { type: "submit" });
    picker.append(" ", other, " ", add);
    picker.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = other.value.trim();
      if (value && (await react(li, value))) close();
    });
    picker.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close();
      }
    });
    li.append(picker);
    trigger.setAttribute("aria-expanded", "true");
    picker.querySelector("button")?.focus();
  };

  list.addEventListener("click", (event) => {
    const chip = event.target.closest("button.reaction");
    const chipLi = chip?.closest("li.message");
    if (chipLi && chip.dataset.emoji) {
      react(chipLi, chip.dataset.emoji);
      return;
    }
    const button = event.target.closest("button[data-tool]");
    const li = button?.closest("li.message");
    if (li && button.dataset.tool !== "more") runTool(li, button.dataset.tool, button);
  });

  /**
   * Runs a message action; `trigger` gets the focus back when it ends (the toolbar's button,
   * or the ⋯ button when the action came from the menu).
   */
  const runTool = (li, tool, trigger) => {
    if (tool === "edit") startEdit(li, trigger);
    if (tool === "delete") confirmDelete(li, trigger);
    if (tool === "react") openPicker(li, trigger);
    if (tool === "reply") onReply?.(li);
  };
  wireMessageMenu({ list, runTool });

  // Up-arrow in the empty composer edits the reader's newest message (as in Slack and Zulip).
  composer.addEventListener("keydown", (event) => {
    if (event.key !== "ArrowUp" || composer.value !== "" || event.isComposing) return;
    const own = [...list.querySelectorAll(":scope > li.message[data-id]")].filter(
      (li) => isOwn(li) && !li.classList.contains("deleted"),
    );
    const last = own[own.length - 1];
    if (!last) return;
    event.preventDefault();
    startEdit(last, composer);
  });
}
