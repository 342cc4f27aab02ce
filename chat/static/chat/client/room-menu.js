/**
 * The room page's menu on phones and small windows: the site's account links (and its brand
 * link back to the rooms), the room's search form and the guest-name form fold behind one
 * "Menu" button, so the message list gets the screen.
 *
 * A disclosure (WAI-ARIA Authoring Practices, "Disclosure (Show/Hide)"): a real button with
 * `aria-expanded` and `aria-controls`; Enter/Space toggle it, Escape closes it and returns focus
 * to the button, a click outside closes it. On wide windows, or without JavaScript, nothing is
 * folded: the forms stay in place and the button stays hidden. The account links are moved, not
 * copied, so `templates/chat/base.html` stays their one source.
 */

/** Windows this narrow (CSS pixels; 40rem at the default 16px) fold the menu; site.css agrees. */
export const FOLD_QUERY = "(max-width: 40rem)";

/**
 * Wires the menu into the page.
 * @param {{button: HTMLButtonElement, panel: HTMLElement, doc?: Document,
 *   media?: MediaQueryList}} options `button` is `#room-menu-button`, `panel` `#room-menu`
 *   (the search and guest-name forms are already inside it); `media` defaults to FOLD_QUERY.
 * @returns {{fold: () => void, unfold: () => void, open: () => void, close: () => void}}
 */
export function wireRoomMenu({ button, panel, doc = document, media }) {
  const query = media || doc.defaultView.matchMedia(FOLD_QUERY);
  // What moves into the menu from the site header, in order, each with a marker of its place.
  const moving = [...doc.querySelectorAll(".site-header > .brand, .site-header > .site-nav")].map(
    (node) => ({ node, home: node.parentNode.insertBefore(doc.createComment("menu"), node) }),
  );

  const isOpen = () => button.getAttribute("aria-expanded") === "true";

  const open = () => {
    button.setAttribute("aria-expanded", "true");
    panel.hidden = false;
  };

  const close = ({ focusButton = false } = {}) => {
    if (!isOpen()) return;
    button.setAttribute("aria-expanded", "false");
    panel.hidden = true;
    if (focusButton) button.focus();
  };

  const fold = () => {
    panel.prepend(...moving.map(({ node }) => node));
    doc.body.classList.add("menu-folded");
    button.hidden = false;
    button.setAttribute("aria-expanded", "false");
    panel.hidden = true;
  };

  const unfold = () => {
    for (const { node, home } of moving) home.after(node);
    doc.body.classList.remove("menu-folded");
    button.hidden = true;
    button.setAttribute("aria-expanded", "false");
    panel.hidden = false;
  };

  const apply = () => (query.matches ? fold() : unfold());

  button.addEventListener("click", () => (isOpen() ? close() : open()));
  doc.addEventListener("keydown", (event) => {
    if (event.key !== "Escape" || !isOpen()) return;
    if (panel.contains(event.target) || event.target === button) {
      event.preventDefault();
      close({ focusButton: true });
    }
  });
  // A click (or tap) anywhere else closes it, as other menus do.
  doc.addEventListener("click", (event) => {
    if (isOpen() && !panel.contains(event.target) && !button.contains(event.target)) close();
  });
  query.addEventListener("change", apply);
  apply();
  return { fold, unfold, open, close };
}
