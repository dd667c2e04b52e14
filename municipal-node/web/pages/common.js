// Pieces the pages share: headings, notices, error summaries, field errors in the clerk's
// language, tables and dialogs.
import { h, newId } from "/common/dom.js";
import { t, has, digits, num, countryName } from "/common/i18n.js";
import * as bsdate from "/common/bsdate.js";

// The page's heading, with a caption above it; the window's title is title when given (a
// person's name is not put there), else the heading.
export function heading(ctx, text, caption, title) {
  ctx.setTitle(title || text);
  return [caption ? h("span", { class: "muted" }, caption) : null,
          h("h1", { tabindex: "-1" }, text)];
}

// A message at the top of a page: a string (a change was saved), or { text, warning: true }
// (what the clerk asked was refused, and why).
export function notice(msg) {
  if (!msg) return null;
  if (msg.warning) return h("div", { class: "warning", role: "alert" }, msg.text);
  return h("div", { class: "notice", role: "status" }, msg);
}

// A field error as the clerk reads it: the catalogue's words for its code (with its arg),
// else the node's own words.
export function fieldError(e) {
  const key = `err.${e.code}`;
  if (!e.code || !has(key)) return e.reason || t("err.other");
  // A calendar's name in words; a number, a range or a date in the language's digits.
  // A range of whole numbers grouped as Nepal writes them ("0–1,00,00,00,00,000").
  const range = e.code === "int_range" && /^-?\d+\.\.-?\d+$/.test(e.arg || "")
    ? e.arg.split("..").map((x) => num(Number(x))).join("–") : null;
  const arg = e.code === "date_invalid" ? t(`calendar.${e.arg}`) : range || digits(e.arg || "");
  // A day past its month's end: "BS2083-08/29", the month's name and length in words.
  const past = e.code === "day_past_month" && /^(BS)?(\d{4})-(\d{2})\/(\d+)$/.exec(e.arg || "");
  if (past) {
    const [, bs, y, m, days] = past;
    const month = `${bs ? bsdate.monthName(Number(m)) : t(`ad.month.${Number(m)}`)} ${digits(y)}`;
    return t(key, { month, days: digits(days), last: digits(`${y}-${m}-${days}`),
                    field: label(e.field) });
  }
  return t(key, { arg, field: label(e.field), calendar: t(`calendar.${bsdate.calendar()}`) });
}

// A period as /v1/months names it ("BS2083-07", "2026-11") in words: "Kartik 2083".
export function periodName(period) {
  const m = /^(BS)?(\d{4})-(\d{2})$/.exec(period || "");
  if (!m) return String(period);
  const month = m[1] ? bsdate.monthName(Number(m[3])) : t(`ad.month.${Number(m[3])}`);
  return `${month} ${digits(m[2])}`;
}

// A country as the clerk reads it: "Qatar (QA)".
export function countryShown(code) {
  const name = countryName(code);
  return !code ? "" : name ? `${name} (${code})` : code;
}

// The label of a column (its catalogue entry), or its name.
export function label(col) {
  return col ? t(`col.${col}`) : t("err.row");
}

// A value of an enumerated column in the clerk's language.
export function value(col, v) {
  if (v === null || v === undefined || v === "") return "";
  const key = `v.${col}.${v}`;
  return has(key) ? t(key) : String(v).toLowerCase().replace(/_/g, " ");
}

// The error summary at the top of a form: each error a link to its field.
export function errorSummary(items) {
  const id = newId("summary");
  return h("div", { class: "error-summary", role: "alert", tabindex: "-1", "aria-labelledby": id,
                    "data-autofocus": "" },
    h("h2", { id }, t("form.problem")),
    h("ul", {}, items.map((it) => h("li", {},
      it.href ? h("a", { href: it.href }, it.text) : it.text))));
}

// opts: hideCaption (the caption for screen readers only); stack (on a phone each row is a
// block of "heading: value" lines, so that its buttons are on the screen: the pages' attack
// found Follow-ups' "Delivered" reachable only by scrolling the table sideways).
export function table(caption, headers, rows, opts) {
  if (opts && opts.stack) {
    const names = headers.map((x) => (x && x.text !== undefined ? x.text : x) || "");
    for (const tr of rows) {
      [...tr.children].forEach((cell, i) => {
        if (cell.tagName === "TD" && names[i]) cell.dataset.label = names[i];
      });
    }
  }
  return h("div", { class: "table-wrap" }, h("table", { class: opts && opts.stack
    ? "table table-stack" : "table" },
    caption ? h("caption", { class: opts && opts.hideCaption ? "visually-hidden" : null }, caption)
            : null,
    h("thead", {}, h("tr", {}, headers.map((x) =>
      h("th", { scope: "col", class: x && x.num ? "num" : null }, x && x.text !== undefined ? x.text : x)))),
    h("tbody", {}, rows)));
}

// A modal dialog; opts.onclose runs when it closes. Returns the <dialog> (shown).
export function dialog(title, body, opts) {
  const id = newId("dialog");
  const d = h("dialog", { "aria-labelledby": id }, h("h2", { id }, title), body);
  d.addEventListener("close", () => {
    d.remove();
    if (opts && opts.onclose) opts.onclose(d.returnValue);
  });
  document.body.append(d);
  d.showModal();
  return d;
}

export function loadFailed(ctx, r) {
  return h("div", { class: "danger", role: "alert" },
    t("error.load"), r && r.body && r.body.error ? ` (${r.body.error})` : "");
}
