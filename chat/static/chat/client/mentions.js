/**
 * Mentions on the room page: the reader's own mentions stand out, and `@` autocompletes names.
 *
 * `markOwnMentions(list, me)`: every `span.mention` (render.js) naming the reader, or `@here`,
 * gets `mention-me`, and its message `mentions-me` (kept up as messages arrive or are edited).
 *
 * `wireMentionAutocomplete(...)`: a listbox of people that typing `@` and a prefix opens under
 * the composer. The composer keeps its own role (a `<textarea>` may carry no other role, ARIA in
 * HTML, so not the combobox one): `aria-haspopup="listbox"`, `aria-controls` and
 * `aria-activedescendant` (the highlighted person) on it, and a polite status saying how many
 * people match and which keys choose, so a screen reader hears the list open. It opens a listbox
 * of people (online now from presence, and the room's readers seen
 * recently from `GET /api/rooms/<slug>/people/?q=`); ArrowDown/ArrowUp move, Enter or Tab
 * inserts `@name `, Escape closes. Its key handler is registered before the composer's, so Enter
 * picks a name instead of sending while the list is open.
 */

/** The `@prefix` being typed right before the caret, or null. */
export function mentionQuery(text, caret) {
  const before = text.slice(0, caret);
  const match = before.match(/(?:^|[^\p{L}\p{N}_@])@([\p{L}\p{N}_.+-]{0,150})$/u);
  return match ? { prefix: match[1], start: caret - match[1].length - 1 } : null;
}

/** @param {HTMLElement} list @param {() => string} me the reader's username */
export function markOwnMentions(list, me) {
  const mark = () => {
    const mine = me().toLowerCase();
    for (const span of list.querySelectorAll("span.mention")) {
      const own = span.dataset.mention === mine || span.dataset.mention === "here";
      span.classList.toggle("mention-me", own);
    }
    for (const li of list.querySelectorAll(":scope > li.message")) {
      li.classList.toggle("mentions-me", Boolean(li.querySelector("span.mention-me")));
    }
  };
  new MutationObserver(mark).observe(list, { childList: true, subtree: true });
  mark();
}

/**
 * @param {{input: HTMLTextAreaElement, peopleUrl?: string, online: () => {id: string, name: string, guest: boolean}[], meId: string}} options
 */
export function wireMentionAutocomplete({ input, peopleUrl, online, meId }) {
  const listbox = document.createElement("ul");
  listbox.id = "mention-options";
  listbox.className = "mention-options";
  listbox.setAttribute("role", "listbox");
  listbox.setAttribute("aria-label", "People to mention");
  listbox.hidden = true;
  const status = document.createElement("span");
  status.id = "mention-status";
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  input.after(listbox, status);
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-haspopup", "listbox");
  input.setAttribute("aria-controls", listbox.id);

  let options = [];
  let active = -1;
  let query = null;
  let asked = 0;

  const close = () => {
    listbox.hidden = true;
    listbox.replaceChildren();
    options = [];
    active = -1;
    status.textContent = "";
    input.removeAttribute("aria-activedescendant");
  };

  /** Closed by the reader (Escape, a pick, leaving the box): an answer from the server to a
   * question asked before must not open the list again (it did, when the server was slow). */
  const dismiss = () => {
    asked += 1;
    close();
  };

  const highlight = (index) => {
    active = index;
    [...listbox.children].forEach((li, i) => li.setAttribute("aria-selected", String(i === index)));
    if (index >= 0) input.setAttribute("aria-activedescendant", listbox.children[index].id);
  };

  const show = (names) => {
    options = names;
    if (!names.length) return close();
    listbox.replaceChildren(
      ...names.map((name, i) => {
        const li = document.createElement("li");
        li.id = `mention-option-${i}`;
        li.setAttribute("role", "option");
        li.textContent = `@${name}`;
        li.addEventListener("mousedown", (event) => {
          event.preventDefault(); // keep the focus in the composer
          pick(i);
        });
        return li;
      }),
    );
    listbox.hidden = false;
    const count = names.length === 1 ? "1 person" : `${names.length} people`;
    status.textContent = `${count} to mention: up and down arrows choose, Enter picks, Escape closes.`;
    highlight(0);
  };

  const pick = (index) => {
    const name = options[index];
    if (!name || !query) return close();
    const before = input.value.slice(0, query.start);
    const after = input.value.slice(input.selectionStart);
    input.value = `${before}@${name} ${after}`;
    const caret = before.length + name.length + 2;
    input.setSelectionRange(caret, caret);
    dismiss();
  };

  const update = async () => {
    query = mentionQuery(input.value, input.selectionStart ?? input.value.length);
    if (!query) return close();
    const prefix = query.prefix.toLowerCase();
    const names = new Map();
    for (const person of online()) {
      if (!person.guest && person.id !== meId && person.name.toLowerCase().startsWith(prefix)) {
        names.set(person.name.toLowerCase(), person.name);
      }
    }
    if ("here".startsWith(prefix)) names.set("here", "here");
    show([...names.values()].slice(0, 8));
    if (!peopleUrl) return;
    const ticket = ++asked;
    try {
      const url = `${peopleUrl}?q=${encodeURIComponent(query.prefix)}`;
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok || ticket !== asked) return;
      for (const person of (await response.json()).people || []) {
        if (person.id !== meId) names.set(person.name.toLowerCase(), person.name);
      }
      if (ticket === asked && mentionQuery(input.value, input.selectionStart)) {
        const keep = options[active];
        show([...names.values()].slice(0, 8));
        if (keep && options.includes(keep)) highlight(options.indexOf(keep));
      }
    } catch {
      // Online people alone, then.
    }
  };

  input.addEventListener("input", update);
  input.addEventListener("blur", dismiss);
  input.addEventListener("keydown", (event) => {
    if (listbox.hidden || !options.length) return;
    let handled = true;
    if (event.key === "ArrowDown") highlight((active + 1) % options.length);
    else if (event.key === "ArrowUp") highlight((active - 1 + options.length) % options.length);
    else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") pick(active);
    else if (event.key === "Escape") dismiss();
    else handled = false;
    if (handled) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  });
}
