/**
 * The "More actions" menu of a message, for phones and small windows, where the hover toolbar
 * of static/chat/client/lifecycle.js is hidden (lifecycle.css): its ⋯ button, or a long press on
 * the message (touch), opens a menu listing the message's actions (the toolbar's buttons, by
 * their labels). It follows the ARIA menu button pattern: `aria-haspopup`/`aria-expanded` on
 * the button, `role="menu"` with `menuitem`s, focus on the first item, Up/Down/Home/End move,
 * Escape or Tab closes and gives the focus back to the ⋯ button; a tap elsewhere closes it.
 */

/** How long a finger rests on a message before the menu opens. */
export const LONG_PRESS_MS = 500;
/** A finger that moves further than this (pixels) scrolls: no long press. */
const MOVE_TOLERANCE_PX = 10;

/**
 * @param {{list: HTMLOListElement,
 *   runTool: (li: HTMLLIElement, tool: string, trigger: HTMLElement) => void}} options
 *   `runTool` runs one of the toolbar's actions (`data-tool`) on a message.
 * @returns {{open: (li: HTMLLIElement) => HTMLElement|null, close: () => void}}
 */
export function wireMessageMenu({ list, runTool }) {
  /** @type {{menu: HTMLElement, button: HTMLButtonElement, li: HTMLLIElement,
   *   settle?: boolean}|null} `settle`: opened by a finger that has not lifted yet. */
  let current = null;

  const close = ({ focus = false } = {}) => {
    if (!current) return;
    const { menu, button } = current;
    current = null;
    menu.remove();
    button.setAttribute("aria-expanded", "false");
    if (focus && button.isConnected) button.focus();
  };

  const items = () => (current ? [...current.menu.querySelectorAll('[role="menuitem"]')] : []);

  /** Opens the menu of `li`; returns it (null for a message without actions). */
  const open = (li) => {
    close();
    const button = li.querySelector(':scope > .message-tools > button[data-tool="more"]');
    const tools = [...li.querySelectorAll(":scope > .message-tools > button[data-tool]")].filter(
      (tool) => tool !== button,
    );
    if (!button || !tools.length) return null;
    const menu = document.createElement("div");
    menu.className = "message-menu";
    menu.setAttribute("role", "menu");
    menu.setAttribute("aria-label", "Message actions");
    for (const tool of tools) {
      const item = document.createElement("button");
      item.type = "button";
      item.setAttribute("role", "menuitem");
      item.tabIndex = -1;
      item.dataset.menuTool = tool.dataset.tool;
      item.textContent = tool.getAttribute("aria-label") || tool.textContent;
      menu.append(item);
    }
    li.append(menu);
    button.setAttribute("aria-expanded", "true");
    current = { menu, button, li };
    items()[0]?.focus();
    return menu;
  };

  list.addEventListener("click", (event) => {
    const more = event.target.closest('button[data-tool="more"]');
    if (more && list.contains(more)) {
      const li = more.closest("li.message");
      if (current?.li === li) close({ focus: true });
      else if (li) open(li);
      return;
    }
    const item = event.target.closest('[role="menuitem"][data-menu-tool]');
    if (!item || !current || !current.menu.contains(item)) return;
    // The finger that long-pressed is still down (or lifting): it must not choose the item
    // under it.
    if (current.settle) return;
    const { li, button } = current;
    close();
    runTool(li, item.dataset.menuTool, button);
  });

  list.addEventListener("keydown", (event) => {
    if (!current || !current.menu.contains(event.target)) return;
    const all = items();
    const at = all.indexOf(event.target);
    let next = null;
    if (event.key === "ArrowDown") next = all[(at + 1) % all.length];
    else if (event.key === "ArrowUp") next = all[(at - 1 + all.length) % all.length];
    else if (event.key === "Home") next = all[0];
    else if (event.key === "End") next = all[all.length - 1];
    else if (event.key === "Escape") {
      event.preventDefault();
      close({ focus: true });
      return;
    } else if (event.key === "Tab") {
      close();
      return;
    }
    if (next) {
      event.preventDefault();
      next.focus();
    }
  });

  // A tap or click anywhere else closes the menu.
  document.addEventListener("pointerdown", (event) => {
    if (current && !current.menu.contains(event.target) && !current.button.contains(event.target)) {
      close();
    }
  });

  // Long press (touch): a finger resting on a message opens its menu.
  let press = null;
  const cancelPress = () => {
    if (press) clearTimeout(press.timer);
    press = null;
  };
  list.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "touch") return;
    const li = event.target.closest("li.message[data-id]");
    if (!li || event.target.closest("button, a, input, textarea, form")) return;
    cancelPress();
    press = {
      x: event.clientX,
      y: event.clientY,
      timer: setTimeout(() => {
        press = null;
        if (open(li) && current) current.settle = true;
      }, LONG_PRESS_MS),
    };
  });
  list.addEventListener("pointermove", (event) => {
    if (press && Math.hypot(event.clientX - press.x, event.clientY - press.y) > MOVE_TOLERANCE_PX) {
      cancelPress();
    }
  });
  for (const type of ["pointerup", "pointercancel", "scroll"]) {
    list.addEventListener(type, cancelPress, { passive: true });
  }
  for (const type of ["pointerup", "pointercancel"]) {
    document.addEventListener(type, () => {
      const opened = current;
      // After the events of this lift (its click included), the menu takes taps.
      if (opened?.settle) setTimeout(() => (opened.settle = false), 0);
    });
  }
  // The browser's own long-press menu (or text selection) would cover ours.
  // Chromium fires it for a long press too: open ours at once instead.
  list.addEventListener("contextmenu", (event) => {
    if (press) {
      const li = event.target.closest("li.message[data-id]");
      cancelPress();
      if (li && open(li) && current) current.settle = true;
    }
    if (current?.settle) event.preventDefault();
  });

  return { open, close };
}
