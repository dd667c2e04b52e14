// Building the page without HTML strings: every text goes in as text (textContent), never
// as markup, so that a name typed by a clerk is shown, never run. The pages' CSP enforces it
// (require-trusted-types-for 'script' makes innerHTML with a string throw in Chromium).

// h("p", {class: "x", onclick: f}, "text", child, ...): an element. Attributes whose value is
// null, undefined or false are left out; true gives an empty attribute; "on..." functions
// become listeners; children may be strings, numbers, nodes, arrays or null.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2), v);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "value" && (tag === "input" || tag === "select" || tag === "textarea")) {
      el.value = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces every child of el.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

let uid = 0;
// A fresh id for label/for and aria-describedby pairs.
export function newId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

// Makes the items of group (elements matching selector) one stop of the Tab key: the first
// (or the last focused) takes the focus, and the arrow keys, Home and End move it among them,
// in the order they were drawn (a roving tabindex, as WAI-ARIA's practices have it for a
// group of many items). A map of 753 local levels was 753 stops of Tab before the figures
// after it (the attack on the ministry's pages).
export function rovingFocus(group, selector) {
  const items = [...group.querySelectorAll(selector)];
  items.forEach((el, i) => el.setAttribute("tabindex", i === 0 ? "0" : "-1"));
  // The item focused, by a key or a click, is the one Tab comes back to.
  group.addEventListener("focusin", (e) => {
    if (!items.includes(e.target)) return;
    for (const el of items) el.setAttribute("tabindex", el === e.target ? "0" : "-1");
  });
  group.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey) return; // the browser's (Alt+Left: Back)
    const at = items.indexOf(document.activeElement);
    if (at < 0) return;
    const to = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
                 Home: 0, End: items.length - 1 }[e.key];
    if (to === undefined) return;
    e.preventDefault();
    items[Math.max(0, Math.min(items.length - 1, to))].focus();
  });
}
