// What both pages draw from one indicator query by area: the bar chart with its table, and
// the map with the same table's figures. base is "/v1" for the dashboard (its session) or
// "/open/v1" for the open-data page (no sign-in, the public role's perturbed values).
import { h, newId } from "/common/dom.js";
import { t, digits, asciiDigits, has, areaName as i18nAreaName } from "/common/i18n.js";
import { api } from "/common/api.js";
import * as bs from "/common/bsdate.js";
import { figure } from "./figures.js";
import { drawMap, loadMap } from "./map.js";

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  return q.toString();
}

// The period both pages show first: the last whole BS month, today's in Nepal (UTC+5:45)
// being the month under way, as the API spells it ("BS2083-07"), since Nepal's offices count
// in BS months (the last whole Gregorian month stood here: a ministry read "2026-11"). The
// Gregorian month before, only when the BS table cannot be read.
export async function defaultPeriod() {
  const days = Math.floor((Date.now() + (5 * 60 + 45) * 60000) / 86400000);
  let ymd = null;
  try {
    await bs.load();
    ymd = bs.daysToBs(days);
  } catch (e) {
    ymd = null;
  }
  if (!ymd) {
    const d = new Date();
    d.setUTCDate(0); // the last day of the month before
    return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
  }
  const i = ymd[0] * 12 + (ymd[1] - 1) - 1;
  return `BS${Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, "0")}`;
}

// A period as the page's language says it ("Kartik 2083", "Fiscal year 2083/84"), another
// shape as the API spells it, in the page's digits. For titles: files keep the API's spelling.
export function periodName(p) {
  const m = /^BS(\d{4})-(\d{2})$/.exec(p || "");
  if (m) return `${t(`bs.month.${Number(m[2])}`)} ${digits(m[1])}`;
  const fy = /^FY(\d{4}\/\d{2})$/.exec(p || "");
  if (fy) return t("period.fiscal_year", { fy: digits(fy[1]) });
  return digits(String(p || ""));
}

// Whether y is a year of the BS calendar's table (BS 2000-2099, the shared data's), as the
// table says once loaded (defaultPeriod loads it).
function bsYear(y) {
  return bs.monthDays(2083, 1) ? bs.monthDays(y, 1) > 0 : y >= 2000 && y <= 2099;
}

// A period or code as typed into a box, as the API reads it: Devanagari digits (a Nepali
// keyboard's) in ASCII, the letters in capitals ("bs२०८३-०७" -> "BS2083-07"; the attack on
// the officers' and ministry's pages: the box refused them where the clerk's pages take them).
// A month typed without "BS" whose year is a BS year, decades past today's Gregorian one
// ("२०८३-०७"), is the BS month meant: read as a Gregorian month it had no data, unsaid.
export function typed(v) {
  const s = asciiDigits(v).trim().toUpperCase();
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(s);
  if (m && Number(m[1]) > new Date().getUTCFullYear() + 30 && bsYear(Number(m[1]))) {
    return `BS${s}`;
  }
  return s;
}

// A form's field: its label, its hint and, for a text box, an error message (hidden until
// one is said), tied to the input (aria-describedby) as the GOV.UK Design System's pattern.
export function field(label, input, hint) {
  const hid = hint ? newId("hint") : null;
  const error = input.tagName === "INPUT"
    ? h("p", { class: "error-message", id: newId("error"), hidden: true }) : null;
  const described = [hid, error && error.id].filter(Boolean).join(" ");
  if (described) input.setAttribute("aria-describedby", described);
  input.__error = error;
  return h("div", { class: "form-group" }, h("label", { for: input.id }, label),
    hint ? h("span", { class: "hint", id: hid }, hint) : null, error, input);
}

// A period as the API reads it (common/period.c): {kind, year} or null. A BS year must be
// one of the calendar's table (BS 2000-2099), a fiscal year's second part the year after.
function periodOf(v) {
  let m;
  if ((m = /^(\d{4})(-Q[1-4]|-(0[1-9]|1[0-2]))?$/.exec(v)) && Number(m[1]) >= 1) {
    return { kind: m[2] ? (m[2][1] === "Q" ? "quarter" : "month") : "year", year: Number(m[1]) };
  }
  if ((m = /^BS(\d{4})-(0[1-9]|1[0-2])$/.exec(v)) && bsYear(Number(m[1]))) {
    return { kind: "bs_month", year: Number(m[1]) };
  }
  m = /^FY(\d{4})\/(\d{2})(-T[1-3])?$/.exec(v);
  if (m && Number(m[2]) === (Number(m[1]) + 1) % 100 && bsYear(Number(m[1]))
      && bsYear(Number(m[1]) + 1)) {
    return { kind: m[3] ? "fiscal_third" : "fiscal_year", year: Number(m[1]) };
  }
  return null;
}

// Whether v is a period the API answers; with range, also two years or two fiscal years
// joined by "..", the first not after the second (federal-api/params.c, params__range).
function isPeriod(v, range) {
  const parts = v.split("..");
  if (parts.length === 1) return periodOf(v) !== null;
  if (!range || parts.length !== 2) return false;
  const [a, b] = parts.map(periodOf);
  return !!a && !!b && a.kind === b.kind && (a.kind === "year" || a.kind === "fiscal_year")
    && a.year <= b.year;
}

// Says, beside a period box (built by field()), whether it reads as a period: the value as
// the API reads it ("" for an empty box), or null, with the reason beside the box in the
// page's language. Before, a period mistyped was sent and the API's English words came back
// ("period contains characters other than A-Z ..."; the attack on the officers' and
// ministry's pages). range: a trend's period, which may be a range. unsay: clear it only.
export function checkPeriod(input, range, unsay) {
  const v = typed(input.value);
  const bad = !unsay && v !== "" && !isPeriod(v, range);
  input.__error.hidden = !bad;
  input.parentNode.classList.toggle("has-error", bad);
  input.__error.textContent = bad ? t("ctl.period_invalid", { typed: input.value.trim() }) : "";
  if (bad) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return bad ? null : v;
}

// A grouping in words ("service type", "category and sex"): the API's keys stood in the
// list and the titles of both languages (the pages' attack).
export function groupingName(g) {
  return g.split(",").map((d) => (has(`grouping.${d}`) ? t(`grouping.${d}`) : d))
    .join(t("grouping.and"));
}

// GET of an API path; the answer's body, or an Error whose message is the API's.
export async function get(path) {
  const r = await api.get(path);
  if (r.status !== 200) {
    const e = new Error(r.body && r.body.error ? r.body.error : t("error.load"));
    e.status = r.status;
    if (r.body && r.body.error) e.apiMessage = r.body.error;
    throw e;
  }
  return r.body;
}

// An answer's value: null when the area sent nothing (no contributor, or for the public,
// whose answers do not count contributors, a zero total), so that the map hatches it.
export function valueOf(answer) {
  const tot = answer.total || {};
  if (tot.contributors === 0) return null;
  if (tot.contributors === undefined && !tot.value) return null;
  return tot.value;
}

// An area's name in the page's language, at the level asked (an answer's area may omit it).
export function areaName(area, level) {
  if ((area.level || level) === "national") return t("area.national");
  return i18nAreaName(Object.assign({ level }, area));
}

// The figures of a by-area answer: [{node, mount}] for the bar chart and the map.
export async function areaFigures(o) {
  const [data] = await Promise.all([
    get(`${o.base}/indicators/${encodeURIComponent(o.code)}?${query({
      period: o.period, by: o.level, province: o.province, district: o.district })}`),
    loadMap(),
  ]);
  const answers = data.answers || [];
  const level = t(`level.${o.level}`);
  const title = o.title;
  const rows = answers.map((a) => [areaName(a.area, o.level), String(a.area.code), valueOf(a)]);
  const head = [t("col.area"), t("col.code"), t("col.value")];
  const values = new Map(answers.map((a) => [a.area.code,
    { name: areaName(a.area, o.level), value: valueOf(a) }]));
  const note = data.disclosure === "exact" ? t("disclosure.exact") : t("disclosure.perturbed");
  // Past TOP areas the chart shows the largest only (753 bars say nothing); the table has all.
  const TOP = 30;
  const shown = rows.length > TOP
    ? [...rows].sort((a, b) => (b[2] ?? -1) - (a[2] ?? -1)).slice(0, TOP) : rows;
  const bars = figure({
    id: "fig-area", title: t("fig.by_area", { indicator: title, level, period: periodName(o.period) }),
    head, rows, numeric: [2], format: { 1: digits }, file: `${o.code}-${o.level}-${o.period}`,
    note: rows.length > TOP ? `${note} ${t("chart.top", { n: digits(TOP), total: digits(rows.length) })}` : note,
    csvHead: ["area", "code", "value"],
    chart: { labels: shown.map((r) => r[0]),
             datasets: [{ label: title, data: shown.map((r) => r[2]) }],
             horizontal: shown.length > 12 },
  });
  const map = figure({
    id: "fig-map", title: t("fig.map", { indicator: title, level, period: periodName(o.period) }),
    head, rows, numeric: [2], format: { 1: digits }, file: `${o.code}-${o.level}-${o.period}-map`,
    csvHead: ["area", "code", "value"], chart: null,
    before: drawMap({ level: o.level, values,
                      label: t("map.label", { indicator: title, level }) }),
  });
  return { data, figures: [bars, map] };
}

// What went wrong in the page's language, by the answer's status, then the API's own words:
// they are English (the API's, for every client), so they are marked so for screen readers.
const STATUS_TEXT = { 400: "error.status.400", 403: "error.status.403", 404: "error.status.404",
                      429: "error.status.429" };

// The choice a refusal names: the API's 400s begin with the parameter ("district \"99\" is
// not ..."), so the page names that field, where it said "check the period" for a district.
const FIELD_OF = { period: "ctl.period", district: "ctl.district", province: "ctl.province",
                   series: "ctl.trend", indicator: "ctl.indicator" };

export function errorBox(e) {
  const key = e.status === undefined ? null : STATUS_TEXT[e.status] || "error.load";
  const api = e.apiMessage || null;
  const param = e.status === 400 && api ? /^(\w+) "/.exec(api) : null;
  const field = param && FIELD_OF[param[1]] ? t(FIELD_OF[param[1]]) : null;
  return h("div", { class: "error-summary", role: "alert", tabindex: "-1" },
    h("h2", {}, t("error.summary")),
    h("p", {}, field ? t("error.status.400_field", { field: field.toLocaleLowerCase() })
      : key ? t(key) : (e.message || String(e))),
    api ? h("p", { class: "error-detail", lang: "en" }, api) : null);
}
