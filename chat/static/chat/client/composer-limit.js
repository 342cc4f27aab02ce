/**
 * The composer's length limit, counted as the server counts it: characters are Unicode code
 * points of the trimmed body (Python's `len(body.strip())`, chatserver/frames.py), not the
 * UTF-16 code units a textarea's `maxlength` counts (an emoji is two of those: 2,000 emoji would
 * hit `maxlength="4000"` while the server takes 4,000). So the textarea has no `maxlength`, and
 * nothing typed or pasted is ever cut: a counter shows near the limit, and over it sending is
 * refused with a visible reason while the text stays for the reader to shorten.
 */

/**
 * @param {string} text
 * @returns {number} code points of the trimmed text (what the server compares to its limit).
 */
export function countChars(text) {
  return [...text.trim()].length;
}

/**
 * @param {number} max
 * @returns {number} the count from which the counter shows: the last tenth of the limit (at
 *   least 20 characters, at most a fifth of it).
 */
export function nearFrom(max) {
  return max - Math.min(Math.max(20, Math.round(max / 10)), Math.floor(max / 5));
}

/**
 * What the counter says for a body of `count` characters.
 * @param {number} count
 * @param {number} max the server's limit (CHAT_MAX_BODY).
 * @returns {{show: boolean, over: boolean, text: string}}
 */
export function limitState(count, max) {
  const n = (value) => value.toLocaleString("en");
  if (count > max) {
    const extra = count - max;
    return {
      show: true,
      over: true,
      text: `${n(extra)} ${extra === 1 ? "character" : "characters"} over the limit of ${n(max)}`,
    };
  }
  if (count >= nearFrom(max)) {
    const left = max - count;
    const text = `${n(left)} ${left === 1 ? "character" : "characters"} left`;
    return { show: true, over: false, text };
  }
  return { show: false, over: false, text: "" };
}

/**
 * Keeps `output` (`#composer-limit`) in step with `input` and decides whether a body may go.
 * @param {{input: HTMLTextAreaElement, output: HTMLElement, max: number}} options
 * @returns {{update: () => void, allows: () => boolean}} `allows` is false (and says why, as an
 *   alert in `output`) when the body is over the limit.
 */
export function wireComposerLimit({ input, output, max }) {
  const update = () => {
    const state = limitState(countChars(input.value), max);
    output.hidden = !state.show;
    output.classList.toggle("over", state.over);
    if (state.over) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    if (output.textContent !== state.text) output.textContent = state.text;
  };

  const allows = () => {
    const count = countChars(input.value);
    if (count <= max) return true;
    update();
    // An alert, so the refusal is read out; the counter itself is not a live region (it
    // would be read at every key press).
    const alert = document.createElement("span");
    alert.setAttribute("role", "alert");
    alert.textContent =
      `Not sent: the message is ${count.toLocaleString("en")} characters long, ` +
      `${max.toLocaleString("en")} at most. Shorten it to send it.`;
    output.replaceChildren(alert);
    output.hidden = false;
    return false;
  };

  input.addEventListener("input", update);
  update();
  return { update, allows };
}
