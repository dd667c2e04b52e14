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
