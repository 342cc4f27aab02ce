/**
 * Avatars drawn from initials: the same rule as chat/avatars.py (which documents it; the page
 * rendered by Django and these live frames must draw the same avatar for the same person).
 *
 * Colour: FNV-1a 32-bit over the UTF-8 bytes of the author's stable id (`user.id`; the name
 * when there is none), modulo 12, as the class `avatar-c<n>` of static/chat/avatar.css.
 * Initials: the first letter or digit (\p{L} / \p{N}) of the first and of the last word that
 * hold one (words split on \p{Z}, tab, LF, CR, "-", "_", "."), upper-cased; else the first
 * character when it is a symbol (\p{So}), else "?". Counted in code points.
 * tests/js/avatar.test.js checks both against tests/contract/avatar_vectors.json.
 */

export const PALETTE_SIZE = 12;
const SEPARATOR = /^[\p{Z}\t\n\r\-_.]$/u;
const ALNUM = /^[\p{L}\p{N}]$/u;
const SYMBOL = /^\p{So}$/u;
const encoder = new TextEncoder();

/**
 * 32-bit FNV-1a of the UTF-8 encoding of `text`.
 * @param {string} text
 * @returns {number} an unsigned integer below 2**32
 */
export function fnv1a32(text) {
  let hash = 0x811c9dc5;
  for (const byte of encoder.encode(text)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * The palette index (0 to 11) of author `uid` (`name` when there is no uid).
 * @param {string} uid
 * @param {string} [name]
 * @returns {number}
 */
export function colourIndex(uid, name = "") {
  return fnv1a32(uid || name) % PALETTE_SIZE;
}

function words(name) {
  const out = [];
  let current = [];
  for (const char of name) {
    if (SEPARATOR.test(char)) {
      if (current.length) out.push(current);
      current = [];
    } else {
      current.push(char);
    }
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * The initials of a display name.
 * @param {string} name
 * @returns {string}
 */
export function initials(name) {
  const all = words(name);
  const letters = all.map((word) => word.find((c) => ALNUM.test(c))).filter(Boolean);
  if (letters.length === 0) {
    const first = all.length ? all[0][0] : "";
    return first && SYMBOL.test(first) ? first : "?";
  }
  const chosen = letters[0] + (letters.length > 1 ? letters[letters.length - 1] : "");
  return chosen.toUpperCase();
}

/**
 * The avatar of a person: its initials and colour index.
 * @param {string} uid stable author id (`u:<pk>` / `g:<hex>`), may be ""
 * @param {string} name display name
 * @returns {{initials: string, colour: number}}
 */
export function avatarFor(uid, name) {
  return { initials: initials(name), colour: colourIndex(uid, name) };
}

/**
 * The `<span class="avatar avatar-c<n>" aria-hidden="true">` drawn beside a name (the same
 * element chat/templates/chat/includes/avatar.html renders). Hidden from assistive technology:
 * the name next to it says who it is.
 * @param {string} uid
 * @param {string} name
 * @returns {HTMLSpanElement}
 */
export function buildAvatar(uid, name) {
  const { initials: text, colour } = avatarFor(uid, name);
  const span = document.createElement("span");
  span.className = `avatar avatar-c${colour}`;
  span.setAttribute("aria-hidden", "true");
  span.textContent = text;
  return span;
}
