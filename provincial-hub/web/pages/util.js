// What the dashboard's pages share: periods (BS months and fiscal years, as the API spells
// them), sortable tables and number formatting.
import { h, replace } from "/common/dom.js";
import { t, num, digits, has, localLevelName, districtName, nepaliPlaces } from "/common/i18n.js";

// The province's name in the page's language ("Koshi" -> "कोशी"), as the session gives it in
// English.
export function provinceName(name) {
  return has(`province.${name}`) ? t(`province.${name}`) : name;
}

// Rows of the API's that name a local level in English (its code under codeKey, "name" and
// "district") named in the page's language, in place, through the session's list of the
// province's local levels (which gives each one's district code). Each row's names in both
// languages go to x.names, for a search typed in either.
export async function placesInLanguage(session, rows, codeKey) {
  const districtOf = new Map(session.local_levels.map((l) => [l.code, l.district]));
  const ne = await nepaliPlaces().catch(() => null);
  for (const x of rows) {
    const d = districtOf.get(x[codeKey]);
    x.names = [x.name, x.district, ne && ne.local_level[String(x[codeKey])],
               ne && ne.district[String(d)]].filter(Boolean).join(" ");
    x.name = localLevelName(x[codeKey], x.name);
    x.district = districtName(d, x.district);
  }
  return rows;
}

// "BS2082-08" -> [2082, 8]
export function parseBsMonth(p) {
  const m = /^BS(\d{4})-(\d{2})$/.exec(p || "");
  return m ? [Number(m[1]), Number(m[2])] : null;
}

export function bsMonth(y, m) {
  return `BS${y}-${String(m).padStart(2, "0")}`;
}

// The BS month k months before p.
export function addMonths(p, k) {
  const [y, m] = parseBsMonth(p);
  const i = y * 12 + (m - 1) + k;
  return bsMonth(Math.floor(i / 12), (i % 12) + 1);
}

// "FY2082/83" -> its twelve BS months, Shrawan (4) to Asar (3).
export function fiscalMonths(fy) {
  const y = Number(fy.slice(2, 6));
  const out = [];
  for (let i = 0; i < 12; i++) out.push(bsMonth(i < 9 ? y : y + 1, ((i + 3) % 12) + 1));
  return out;
}

export function previousFiscalYear(fy) {
  const y = Number(fy.slice(2, 6)) - 1;
  return `FY${y}/${String((y + 1) % 100).padStart(2, "0")}`;
}

// A BS month as the reader's language names it: "Mangsir 2082".
export function monthName(p) {
  const ym = parseBsMonth(p);
  if (!ym) return p;
  return `${t(`bs.month.${ym[1]}`)} ${digits(ym[0])}`;
}

export function periodName(p) {
  if (/^FY/.test(p)) return t("period.fiscal_year", { fy: digits(p.slice(2)) });
  return monthName(p);
}

// A figure as shown: a share as a percentage, a count grouped as Nepal writes it.
export function figure(v, ratio) {
  if (v === null || v === undefined) return t("value.none");
  if (ratio) return `${digits((v * 100).toFixed(1))} %`;
  return num(v);
}

// A table whose column headers sort it (aria-sort says how) and whose rows a filter
// narrows. cols: [{key, label, num, value(row), cell(row)}]; opts.caption; returns
// {el, redraw(rows), sort(), rows()}.
export function sortableTable(cols, opts) {
  let sortKey = cols.some((c) => c.key === opts.sortKey) ? opts.sortKey : cols[0].key;
  let desc = !!opts.desc;
  let rows = [];
  let shown = [];
  const thead = h("thead");
  const tbody = h("tbody");
  const table = h("table", { class: "table", id: opts.id },
    opts.caption ? h("caption", {}, opts.caption) : null, thead, tbody);
  const value = (c, r) => (c.value ? c.value(r) : r[c.key]);
  function drawHead() {
    replace(thead, h("tr", {}, cols.map((c) => h("th", {
      scope: "col", class: c.num ? "num" : null,
      "aria-sort": c.key === sortKey ? (desc ? "descending" : "ascending") : null,
    }, c.sortable === false ? c.label : h("button", {
      type: "button", class: "sort-button", "data-sort": c.key,
      onclick: () => {
        desc = c.key === sortKey ? !desc : false;
        sortKey = c.key;
        draw();
      },
    }, c.label, h("span", { class: "sort-mark", "aria-hidden": "true" },
      c.key === sortKey ? (desc ? " ▼" : " ▲") : ""))))));
  }
  function draw() {
    drawHead();
    const c = cols.find((x) => x.key === sortKey);
    const sorted = rows.slice().sort((a, b) => {
      const x = value(c, a);
      const y = value(c, b);
      let d;
      if (x === null || x === undefined) d = y === null || y === undefined ? 0 : 1;
      else if (y === null || y === undefined) d = -1;
      else if (typeof x === "number" && typeof y === "number") d = x - y;
      else d = String(x).localeCompare(String(y));
      if (d === 0) d = (a.code || 0) - (b.code || 0);
      return desc ? -d : d;
    });
    shown = sorted;
    replace(tbody, sorted.map((r) => h("tr", { "data-code": r.code },
      cols.map((col, i) => h(i === 0 ? "th" : "td",
        { scope: i === 0 ? "row" : null, class: col.num ? "num" : null },
        col.cell ? col.cell(r) : value(col, r))))));
    if (opts.onSort) opts.onSort(sortKey, desc);
  }
  return {
    el: h("div", { class: "table-wrap" }, table),
    redraw(rs) {
      rows = rs;
      draw();
    },
    sort() {
      return { key: sortKey, desc };
    },
    // The rows as shown: filtered, in the order chosen.
    rows() {
      return shown;
    },
  };
}
