// The gap table: every local level of the province with its figures and flags (GET /v1/gaps),
// sortable and filterable, downloadable as CSV (as shown, or the API's); then the services unavailable by type and the
// directive targets against their actuals, both read from the same rows.
import { h, replace } from "/common/dom.js";
import { t, num, digits, valueName, current } from "/common/i18n.js";
import { api } from "/common/api.js";
import { downloadCsv } from "/common/csv.js";
import { sortableTable, figure, monthName, periodName, previousFiscalYear,
         provinceName, placesInLanguage } from "/pages/util.js";

const FLAGS = ["enrolled_silent", "enrolled_offline", "not_enrolled", "referrals_overdue",
               "services_unavailable", "month_not_closed", "month_closed_late"];

// Whole days since an event (null: never).
const ago = (days) => (days === null ? t("value.never") : days === 0 ? t("gaps.today")
  : days === 1 ? t("gaps.yesterday") : t("gaps.days", { n: num(days) }));

export async function draw(main, session) {
  const params = new URLSearchParams(location.search);
  const period = params.get("period") || session.fiscal_year;
  const r = await api.get(`/v1/gaps?period=${encodeURIComponent(period)}`);
  if (r.status !== 200) throw new Error((r.body && r.body.error) || t("error.load"));
  const rows = await placesInLanguage(session, r.body.rows, "code");

  const cols = [
    { key: "name", label: t("gaps.name"), cell: (x) => [x.name, " ", h("span", { class: "muted" }, `(${digits(x.code)})`)] },
    { key: "district", label: t("gaps.district") },
    { key: "enrolled", label: t("gaps.enrolled"), value: (x) => (x.enrolled ? 1 : 0),
      cell: (x) => (x.enrolled ? t("yes") : t("no")) },
    // The last records and the last contact apart: online with nothing entered, or offline.
    { key: "last_sync_age_days", label: t("gaps.last_sync"), num: true,
      cell: (x) => ago(x.last_sync_age_days) },
    { key: "last_contact_age_days", label: t("gaps.last_contact"), num: true,
      cell: (x) => ago(x.last_contact_age_days) },
    { key: "month_closed", label: t("gaps.month_closed"), value: (x) => (x.month_closed ? 1 : 0),
      // Which month: a municipality's own calendar decides it (a BS month, or a Gregorian one).
      cell: (x) => [x.month ? h("span", { class: "month" }, monthName(x.month), ": ") : null,
                    x.month_closed ? (x.month_on_time ? t("gaps.on_time") : t("gaps.late")) : t("no")] },
    { key: "participants_registered", label: t("gaps.registered"), num: true, cell: (x) => num(x.participants_registered) },
    { key: "share_served", label: t("gaps.share_served"), num: true, cell: (x) => figure(x.share_served, true) },
    { key: "referrals_pending_total", label: t("gaps.referrals_pending"), num: true, cell: (x) => num(x.referrals_pending_total) },
    { key: "services_unavailable_total", label: t("gaps.unavailable"), num: true, cell: (x) => num(x.services_unavailable_total) },
    { key: "dead_letters", label: t("gaps.dead_letters"), num: true, cell: (x) => num(x.dead_letters) },
    { key: "flags", label: t("gaps.flags"), value: (x) => x.flags.length,
      cell: (x) => x.flags.map((f) => h("span", { class: `tag flag-${f}` }, t(`flag.${f}`))) },
  ];
  const csv = h("a", { class: "button button-secondary", id: "gaps-csv", download: "gaps.csv" },
    t("gaps.csv"));
  // The table as shown, for a spreadsheet (the API's file above is for programs: every local
  // level, English keys, JSON in its cells, UTC times; the pages' attack): the rows the
  // filters leave, in the order chosen, with the page's words; figures as plain numbers.
  const csvShown = h("button", { type: "button", class: "button", id: "gaps-csv-shown",
    onclick: () => downloadCsv(`gaps-${period.replace("/", "-")}-${current()}.csv`, [
      t("gaps.name"), t("gaps.code"), t("gaps.district"), t("gaps.enrolled"),
      t("gaps.csv_last_sync_days"), t("gaps.csv_last_contact_days"), t("gaps.month"),
      t("gaps.month_closed"), t("gaps.registered"), t("gaps.csv_share_served"),
      t("gaps.referrals_pending"), t("gaps.unavailable"), t("gaps.dead_letters"), t("gaps.flags"),
    ], table.rows().map((x) => [x.name, x.code, x.district, x.enrolled ? t("yes") : t("no"),
      x.last_sync_age_days, x.last_contact_age_days, x.month ? monthName(x.month) : "",
      x.month_closed ? (x.month_on_time ? t("gaps.on_time") : t("gaps.late")) : t("no"),
      x.participants_registered,
      x.share_served === null || x.share_served === undefined ? ""
        : Math.round(x.share_served * 1000) / 10,
      x.referrals_pending_total, x.services_unavailable_total, x.dead_letters,
      x.flags.map((f) => t(`flag.${f}`)).join("; ")])) }, t("gaps.csv_shown"));
  // The CSV is the API's, in the order chosen here: the same figures as any program gets.
  const apiSort = { name: "name", district: "district", enrolled: "enrolled" };
  // The sort and the filters are kept in the address (sort, q, flag): Back, a reload or a
  // link sent to a colleague shows the same table.
  const sortParam = params.get("sort") || "name";
  let filterText = null;
  let filterFlag = null;
  function keep(key, desc) {
    const q = { period, sort: `${desc ? "-" : ""}${key}` };
    if (filterText && filterText.value.trim()) q.q = filterText.value.trim();
    if (filterFlag && filterFlag.value) q.flag = filterFlag.value;
    if (q.sort === "name") delete q.sort;
    history.replaceState({}, "", `/gaps?${new URLSearchParams(q)}`);
  }
  const table = sortableTable(cols, {
    id: "gaps-table", sortKey: sortParam.replace(/^-/, ""), desc: sortParam.startsWith("-"),
    caption: t("gaps.caption", { period: periodName(period) }),
    onSort: (key, desc) => {
      const k = apiSort[key] || (["flags"].includes(key) ? "code" : key);
      csv.setAttribute("href", `/v1/gaps?period=${encodeURIComponent(period)}&sort=${desc ? "-" : ""}${k}&format=csv`);
      keep(key, desc);
    },
  });
  filterText = h("input", { type: "search", id: "gaps-filter", "aria-describedby": "gaps-filter-hint",
                            value: params.get("q") || "" });
  // "enrolled": the local levels with a node (2 of 137 in a province starting out stood among
  // 135 not enrolled, with no way to see them alone: the attack on the officers' pages).
  const flagParam = FLAGS.includes(params.get("flag")) || params.get("flag") === "enrolled"
    ? params.get("flag") : "";
  filterFlag = h("select", { id: "gaps-flag" },
    h("option", { value: "" }, t("gaps.any_flag")),
    h("option", { value: "enrolled", selected: flagParam === "enrolled" }, t("gaps.only_enrolled")),
    FLAGS.map((f) => h("option", { value: f, selected: f === flagParam }, t(`flag.${f}`))));
  const count = h("p", { class: "muted", id: "gaps-count", "aria-live": "polite" });
  const csvNote = h("span", { class: "hint", id: "gaps-csv-note" });
  function apply() {
    // A place by its name in either language (the page's, or the API's English); a code may
    // be typed in Devanagari digits.
    const q = filterText.value.trim().toLowerCase()
      .replace(/[\u0966-\u096F]/g, (d) => String(d.charCodeAt(0) - 0x966));
    const f = filterFlag.value;
    const shown = rows.filter((x) => (!q || `${x.names} ${x.code}`.toLowerCase().includes(q))
      && (!f || (f === "enrolled" ? x.enrolled : x.flags.includes(f))));
    table.redraw(shown); // and keeps the filters in the address (onSort)
    // An empty result says so, rather than a table of headers alone.
    table.el.hidden = shown.length === 0;
    csvShown.disabled = shown.length === 0;
    replace(count, shown.length === 0 ? t("gaps.none")
      : t("gaps.count", { shown: num(shown.length), all: num(rows.length) }));
    // The file is the API's: every local level, whatever the filters (said when they hide some).
    replace(csvNote, shown.length < rows.length ? t("gaps.csv_all", { all: num(rows.length) }) : "");
  }
  filterText.addEventListener("input", apply);
  filterFlag.addEventListener("change", apply);

  const periodSelect = h("select", { id: "gaps-period", onchange: (e) => {
    const q = new URLSearchParams(location.search);
    q.set("period", e.target.value);
    history.replaceState({}, "", `/gaps?${q}`);
    draw(main, session);
  } }, [session.fiscal_year, previousFiscalYear(session.fiscal_year)].map((p) =>
    h("option", { value: p, selected: p === period }, periodName(p))));

  replace(main,
    h("h1", {}, t("gaps.title")),
    h("p", { class: "lead" }, t("gaps.lead", { province: provinceName(session.province_name) })),
    h("div", { class: "controls" },
      h("div", { class: "form-group" }, h("label", { for: "gaps-period" }, t("gaps.period")), periodSelect),
      h("div", { class: "form-group" }, h("label", { for: "gaps-filter" }, t("gaps.filter")),
        h("span", { class: "hint", id: "gaps-filter-hint" }, t("gaps.filter_hint")), filterText),
      h("div", { class: "form-group" }, h("label", { for: "gaps-flag" }, t("gaps.flag")), filterFlag)),
    // The downloads above the table: below 137 rows, an officer had to scroll to find them.
    count, h("p", { class: "button-row" }, csvShown, " ", csv, " ", csvNote), table.el,
    unavailableSection(rows), targetsSection(rows));
  apply();
}

// How many local levels report each service type unavailable, and which.
function unavailableSection(rows) {
  const byType = new Map();
  for (const r of rows) {
    for (const [type, n] of Object.entries(r.services_unavailable || {})) {
      if (!n) continue;
      const e = byType.get(type) || { n: 0, where: [] };
      e.n += n;
      e.where.push(r.name);
      byType.set(type, e);
    }
  }
  const list = [...byType.entries()].sort((a, b) => b[1].n - a[1].n);
  return h("section", { "aria-labelledby": "unavailable-h" },
    h("h2", { id: "unavailable-h" }, t("unavailable.title")),
    list.length === 0 ? h("p", {}, t("unavailable.none")) :
      h("div", { class: "table-wrap" }, h("table", { class: "table", id: "unavailable-table" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("unavailable.type")),
          h("th", { scope: "col", class: "num" }, t("unavailable.reports")),
          h("th", { scope: "col" }, t("unavailable.where")))),
        h("tbody", {}, list.map(([type, e]) => h("tr", {},
          h("th", { scope: "row" }, valueName("service_type", type)),
          h("td", { class: "num" }, num(e.n)),
          h("td", {}, e.where.join(", "))))))));
}

// Every directive target in force for a local level, against its actual value.
function targetsSection(rows) {
  const list = [];
  for (const r of rows) for (const x of r.targets || []) list.push(Object.assign({ name: r.name }, x));
  return h("section", { "aria-labelledby": "targets-h" },
    h("h2", { id: "targets-h" }, t("targets.title")),
    list.length === 0 ? h("p", {}, t("targets.none")) :
      h("div", { class: "table-wrap" }, h("table", { class: "table", id: "targets-table" },
        h("thead", {}, h("tr", {}, ["targets.where", "targets.directive", "targets.indicator",
          "targets.period", "targets.target", "targets.actual", "targets.progress"].map((k, i) =>
          h("th", { scope: "col", class: i >= 4 ? "num" : null }, t(k))))),
        h("tbody", {}, list.map((x) => {
          const share = x.target_share !== undefined;
          const target = share ? x.target_share : x.target;
          const actual = share ? x.actual_share : x.actual;
          const progress = target ? Math.min(1, (actual || 0) / target) : null;
          return h("tr", {},
            h("th", { scope: "row" }, x.name),
            h("td", {}, x.title || `#${x.directive}`),
            h("td", {}, x.indicator, x.key ? ` (${x.key})` : ""),
            h("td", {}, periodName(x.period)),
            h("td", { class: "num" }, figure(target, share)),
            h("td", { class: "num" }, figure(actual, share)),
            h("td", { class: "num" }, progress === null ? t("value.none") :
              h("meter", { min: "0", max: "1", value: String(progress),
                           "aria-label": t("targets.progress") }), " ",
              progress === null ? "" : figure(progress, true)));
        })))));
}
