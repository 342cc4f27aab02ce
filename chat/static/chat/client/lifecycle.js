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
 */

import { deleteMessage, editMessage, toggleReaction } from "./api.js";
import { bodySource } from "./richtext.js";

/** The palette offered first; any other single emoji can be typed. */
export const PALETTE = ["👍", "❤️", "😂", "🎉", "😮", "😢"];

/** Links this module's stylesheet once (kept apart from client.css). */
function ensureStylesheet() {
  if (document.querySelector('link[rel="stylesheet"][href*="/client/lifecycle."]')) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("./lifecycle.css", import.meta.url).href;
  document.head.append(link);
}

/**
 * Wires the edit action into the message list.
 * @param {{list: HTMLOListElement, timeline: import("./timeline.js").Timeline,
 *   meId: string, messagesUrl: string, composer: HTMLTextAreaElement}} options
 */
export function wireMessageActions({ list, timeline, meId, messagesUrl, composer }) {
  ensureStylesheet();
  const isOwn = (li) =>
    Boolean(meId) && li.dataset.author === meId && li.dataset.id && !li.classList.contains("pending");

  const decorate = (li) => {
    if (!li.dataset.id || li.classList.contains("pending")) return;
    if (li.querySelector(".message-tools")) return;
    const tools = document.createElement("span");
    tools.className = "message-tools";
    const react = document.createElement("button");
    react.type = "button";
    react.className = "message-tool react";
    react.dataset.tool = "react";
    react.textContent = "React";
    react.setAttribute("aria-label", "Add a reaction");
    react.setAttribute("aria-expanded", "false");
    tools.append(react);
    li.append(tools);
    if (!isOwn(li)) return;
    const edit = document.createElement("button");
    edit.type = "button";
    edit.className = "message-tool edit";
    edit.dataset.tool = "edit";
    edit.textContent = "Edit";
    edit.setAttribute("aria-label", "Edit your message");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "message-tool delete";
    remove.dataset.tool = "delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", "Delete your message");
    tools.append(" ", edit, " ", remove);
  };
  const decorateAll = () => {
    for (const li of list.querySelectorAll(":scope > li.message[data-id]")) decorate(li);
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
    const save = document.createElement("button");
    save.type = "submit";
    save.textContent = "Save";
    save.setAttribute("aria-label", "Save the edited message");
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.setAttribute("aria-label", "Cancel editing (Escape)");
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
      if (!text) {
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
    const yes = document.createElement("button");
    yes.type = "button";
    yes.textContent = "Delete";
    yes.setAttribute("aria-label", "Yes, delete your message");
    const keep = document.createElement("button");
    keep.type = "button";
    keep.textContent = "Keep";
    keep.setAttribute("aria-label", "No, keep your message");
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
      li.querySelector(":scope > .body")?.after(box);
      if (!box.isConnected) li.append(box);
    }
    box.replaceChildren(
      ...reactions.map((reaction) => {
        const users = Array.isArray(reaction.users) ? reaction.users : [];
        const mine = users.some((user) => user.id === meId);
        const names = users.map((user) => user.name).join(", ");
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "reaction";
        chip.dataset.emoji = reaction.emoji;
        chip.setAttribute("aria-pressed", String(mine));
        chip.title = names;
        chip.setAttribute(
          "aria-label",
          `${reaction.emoji} ${reaction.count}: ${names}. ` +
            (mine ? "Remove your reaction" : `React with ${reaction.emoji}`),
        );
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
      const choice = document.createElement("button");
      choice.type = "button";
      choice.textContent = emoji;
      choice.setAttribute("aria-label", `React with ${emoji}`);
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
    const add = document.createElement("button");
    add.type = "submit";
    add.textContent = "Add";
    add.setAttribute("aria-label", "Add this emoji");
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
    if (li && button.dataset.tool === "edit") startEdit(li, button);
    if (li && button.dataset.tool === "delete") confirmDelete(li, button);
    if (li && button.dataset.tool === "react") openPicker(li, button);
  });

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
