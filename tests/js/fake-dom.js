/**
 * A minimal stand-in for the browser's DOM, for `node --test` (no npm packages, no jsdom).
 *
 * It models only what the client's rendering modules use: elements with children, text nodes,
 * `dataset`, `classList`, attributes and plain properties (`dir`, `title`, `href`...). Anything
 * that would parse markup (`innerHTML`, `outerHTML`, `insertAdjacentHTML`) throws, so a test
 * fails if rendering ever turns message data into HTML instead of text.
 */

class FakeNode {
  constructor() {
    this.parentNode = null;
  }
}

export class FakeText extends FakeNode {
  constructor(data) {
    super();
    this.nodeType = 3;
    this.data = String(data);
  }

  get textContent() {
    return this.data;
  }
}

class FakeClassList {
  constructor(element) {
    this.element = element;
  }

  names() {
    return this.element.className.split(/\s+/).filter(Boolean);
  }

  contains(name) {
    return this.names().includes(name);
  }

  add(...names) {
    this.element.className = [...new Set([...this.names(), ...names])].join(" ");
  }

  remove(...names) {
    this.element.className = this.names()
      .filter((n) => !names.includes(n))
      .join(" ");
  }

  toggle(name, force) {
    const on = force === undefined ? !this.contains(name) : Boolean(force);
    if (on) this.add(name);
    else this.remove(name);
    return on;
  }
}

const parsesMarkup = () => {
  throw new Error("rendering must never parse markup (innerHTML and friends)");
};

export class FakeElement extends FakeNode {
  constructor(tagName) {
    super();
    this.nodeType = 1;
    this.tagName = tagName.toUpperCase();
    this.childNodes = [];
    this.attributes = new Map();
    this.dataset = {};
    this.className = "";
    this.classList = new FakeClassList(this);
  }

  append(...nodes) {
    for (const node of nodes) {
      const child = typeof node === "string" ? new FakeText(node) : node;
      if (child.parentNode) {
        const siblings = child.parentNode.childNodes;
        siblings.splice(siblings.indexOf(child), 1);
      }
      child.parentNode = this;
      this.childNodes.push(child);
    }
  }

  replaceChildren(...nodes) {
    for (const child of this.childNodes) child.parentNode = null;
    this.childNodes = [];
    this.append(...nodes);
  }

  get children() {
    return this.childNodes.filter((node) => node.nodeType === 1);
  }

  get textContent() {
    return this.childNodes.map((node) => node.textContent).join("");
  }

  set textContent(value) {
    this.replaceChildren();
    if (value !== "" && value != null) this.append(new FakeText(value));
  }

  set innerHTML(_value) {
    parsesMarkup();
  }

  set outerHTML(_value) {
    parsesMarkup();
  }

  insertAdjacentHTML() {
    parsesMarkup();
  }

  setAttribute(name, value) {
    this.attributes.set(name, String(value));
  }

  getAttribute(name) {
    return this.attributes.has(name) ? this.attributes.get(name) : null;
  }

  /** Descendant elements with this tag name, in document order (a test helper). */
  all(tagName) {
    const found = [];
    for (const child of this.children) {
      if (child.tagName === tagName.toUpperCase()) found.push(child);
      found.push(...child.all(tagName));
    }
    return found;
  }
}

export class FakeDocument {
  constructor() {
    /** Tag names of every element created, in order. */
    this.created = [];
  }

  createElement(tagName) {
    this.created.push(tagName.toLowerCase());
    return new FakeElement(tagName);
  }

  createTextNode(data) {
    return new FakeText(data);
  }
}

/** Installs a fresh fake `document` as the global one and returns it. */
export function installFakeDocument() {
  const doc = new FakeDocument();
  globalThis.document = doc;
  return doc;
}
