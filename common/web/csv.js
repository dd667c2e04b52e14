// Tables saved as files by the pages, the federal dashboard's figures and the hub's gap table:
// CSV a spreadsheet opens as written, and a Blob saved through a temporary link.
import { h } from "./dom.js";

// A text a spreadsheet would run as a formula (=, +, -, @, a tab or a return first, after
// any spaces, or their full-width forms) gets a ' before it, as the node's exports do
// (common/csv.c); numbers stay numbers.
function field(v) {
  let s = v === null || v === undefined ? "" : String(v);
  if (typeof v === "string" && /^[\s\u00a0\u3000\u200b\ufeff]*[=+\-@\t\r\uff1d\uff0b\uff0d\uff20]/.test(s)) {
    s = `'${s}`;
  }
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvText(head, rows) {
  return [head, ...rows].map((r) => r.map(field).join(",")).join("\r\n") + "\r\n";
}

// Saves blob as name through a temporary link (the page's CSP allows no other way out).
export function download(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, class: "visually-hidden" }, name);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// A byte order mark first: Excel on Windows, the offices' spreadsheet, reads a CSV without one
// in the machine's old code page, and the Nepali names come out garbled.
export function downloadCsv(name, head, rows) {
  download(name, new Blob(["\ufeff", csvText(head, rows)], { type: "text/csv;charset=utf-8" }));
}
