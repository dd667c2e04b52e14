// The national dashboard (ministry, signed in): one indicator by province, district or local
// level as a bar chart, a map and a table; its trend over months or years; its breakdown by a
// grouping across provinces; and the approval coverage and reporting completeness of each
// province. The choices live in the address, so that a view can be bookmarked and shared.
import { h, replace } from "/common/dom.js";
import { t, has, valueName, asciiDigits } from "/common/i18n.js";
import { indicatorTitle } from "/common/indicators.js";
import { figure, destroyCharts } from "../figures.js";
import { areaFigures, checkPeriod, defaultPeriod, errorBox, field, get, groupingName, periodName,
         query, typed, valueOf, areaName } from "../views.js";

const LEVELS = ["province", "district", "municipality"];
const TRENDS = ["bs_month", "month", "year"];


function select(id, options, value) {
  return h("select", { id, name: id },
    options.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

// The period of a trend that contains period: its year for months, its range of years.
function defaultTrendPeriod(kind, period) {
  const y = /^(\d{4})/.exec(period);
  if (kind === "year" && y) return `${Number(y[1]) - 3}..${y[1]}`;
  if (kind === "bs_month") {
    const fy = /^FY\d{4}\/\d{2}$/.test(period) ? period : null;
    if (fy) return fy;
    const bs = /^BS(\d{4})-(\d{2})$/.exec(period);
    if (bs) {
      const start = Number(bs[2]) >= 4 ? Number(bs[1]) : Number(bs[1]) - 1;
      return `FY${start}/${String((start + 1) % 100).padStart(2, "0")}`;
    }
    return "FY2082/83";
  }
  return y ? y[1] : String(new Date().getUTCFullYear());
}

function provinceName(p) {
  return has(`province.${p}`) ? t(`province.${p}`) : String(p);
}

async function trendFigure(s, title) {
  const data = await get(`/v1/indicators/${encodeURIComponent(s.indicator)}?${query({
    period: s.trend_period, series: s.trend, province: s.province, district: s.district })}`);
  const answers = data.answers || [];
  const rows = answers.map((a) => [a.period, valueOf(a)]);
  const area = answers.length ? areaName(answers[0].area, s.district ? "district"
    : s.province ? "province" : "national") : "";
  return figure({
    id: "fig-trend", title: t("fig.trend", { indicator: title, area: area || t("area.national") }),
    head: [t("col.period"), t("col.value")], csvHead: ["period", "value"], rows, numeric: [1],
    format: { 0: periodName }, file: `${s.indicator}-trend-${s.trend}`,
    chart: { type: "line", labels: rows.map((r) => periodName(r[0])),
             datasets: [{ label: title, data: rows.map((r) => r[1]) }] },
  });
}

async function breakdownFigure(s, title) {
  const level = s.province ? "district" : "province";
  const data = await get(`/v1/indicators/${encodeURIComponent(s.indicator)}?${query({
    period: s.period, by: `${level},${s.grouping}`, province: s.province })}`);
  const answers = data.answers || [];
  const keys = [];
  for (const a of answers) {
    for (const r of a.rows || []) if (!keys.includes(r[s.grouping])) keys.push(r[s.grouping]);
  }
  // An area that sent nothing has no data in any category, as the table by area and the
  // map say, not zeros (the attack on the ministry's pages: "No data" there, 0 0 0 here).
  const valueAt = (a, k) => {
    if (valueOf(a) === null) return null;
    const r = (a.rows || []).find((x) => x[s.grouping] === k);
    return r ? r.value : 0;
  };
  // A category no area has (UNKNOWN, usually) is left out of the chart, not of the table.
  const used = keys.filter((k) => answers.some((a) => valueAt(a, k)));
  const rows = answers.map((a) => [areaName(a.area, level), ...keys.map((k) => valueAt(a, k)),
    valueOf(a)]);
  return figure({
    id: "fig-breakdown",
    title: t("fig.breakdown", { indicator: title, grouping: groupingName(s.grouping),
                                period: periodName(s.period) }),
    // The page says each category in its language; the CSV keeps the API's codes.
    head: [t("col.area"), ...keys.map((k) => valueName(s.grouping, k)), t("col.total")],
    csvHead: ["area", ...keys, "total"],
    rows, numeric: keys.map((_, i) => i + 1).concat([keys.length + 1]),
    file: `${s.indicator}-${level}-${s.grouping}-${s.period}`,
    chart: { labels: rows.map((r) => r[0]), stacked: true,
             datasets: used.map((k) => ({ label: valueName(s.grouping, k),
                                          data: answers.map((a) => valueAt(a, k)) })) },
  });
}

async function coverageFigure(s) {
  const data = await get(`/v1/approvals?${query({ period: s.period, by: "province" })}`);
  const pct = (a, b) => (b ? Math.round((1000 * a) / b) / 10 : 0);
  const rows = (data.rows || []).map((r) => [provinceName(r.province), r.municipality_months,
    r.contributing, r.closed, r.approved, pct(r.contributing, r.municipality_months),
    pct(r.approved, r.municipality_months)]);
  return figure({
    id: "fig-coverage", title: t("fig.coverage", { period: periodName(s.period) }),
    head: [t("col.province"), t("col.months"), t("col.contributing"), t("col.closed"),
           t("col.approved"), t("col.reporting_pct"), t("col.approved_pct")],
    csvHead: ["province", "municipality_months", "contributing", "closed", "approved",
              "reporting_pct", "approved_pct"],
    rows, numeric: [1, 2, 3, 4, 5, 6], file: `coverage-${s.period}`,
    chart: { labels: rows.map((r) => r[0]), percent: true,
             datasets: [{ label: t("col.reporting_pct"), data: rows.map((r) => r[5]) },
                        { label: t("col.approved_pct"), data: rows.map((r) => r[6]) }] },
  });
}

// Each drawing's number: an answer that comes back after a newer drawing began is dropped.
let generation = 0;

export async function render(ctx) {
  const mine = ++generation;
  const cat = await get("/v1/indicators");
  if (mine !== generation) return;
  const inds = cat.indicators || [];
  const p = ctx.params;
  const first = p.get("period") || await defaultPeriod();
  if (mine !== generation) return;
  const s = {
    indicator: p.get("indicator") || (inds[0] && inds[0].code) || "",
    period: first,
    level: LEVELS.includes(p.get("by")) ? p.get("by") : "province",
    province: p.get("province") || "",
    district: p.get("district") || "",
    grouping: p.get("grouping") || "sex",
    // BS months for a BS period, as its trend's first choice; Gregorian months for another.
    trend: TRENDS.includes(p.get("series")) ? p.get("series")
      : /^(BS|FY)/.test(first) ? "bs_month" : "month",
    trend_period: p.get("trend_period") || "",
  };
  const ind = inds.find((i) => i.code === s.indicator) || inds[0];
  const groupings = (ind ? ind.groupings : []).filter((g) => g && !g.includes(","));
  if (!groupings.includes(s.grouping)) s.grouping = groupings[0] || "";
  if (!s.trend_period) s.trend_period = defaultTrendPeriod(s.trend, s.period);

  const indicator = select("indicator", inds.map((i) => [i.code, indicatorTitle(i)]), s.indicator);
  const period = h("input", { type: "text", id: "period", name: "period", value: s.period,
                              spellcheck: "false", autocomplete: "off" });
  const level = select("by", LEVELS.map((l) => [l, t(`level.${l}`)]), s.level);
  const province = select("province", [["", t("ctl.all")],
    ...[1, 2, 3, 4, 5, 6, 7].map((n) => [String(n), provinceName(n)])], s.province);
  const district = h("input", { type: "text", id: "district", name: "district", value: s.district,
                                inputmode: "numeric", class: "input-short", autocomplete: "off" });
  const grouping = select("grouping", groupings.map((g) => {
    const name = groupingName(g);
    return [g, name.charAt(0).toLocaleUpperCase() + name.slice(1)];
  }), s.grouping);
  const trend = select("series", TRENDS.map((k) => [k, t(`trend.${k}`)]), s.trend);
  const trendPeriod = h("input", { type: "text", id: "trend_period", name: "trend_period",
                                   value: s.trend_period, spellcheck: "false", autocomplete: "off" });
  const results = h("div", { id: "results", "aria-live": "polite" });
  const form = h("form", { class: "controls", id: "controls", novalidate: true,
    onsubmit: (e) => {
      e.preventDefault();
      // The trend's period is sent only with the same trend and period (else it follows
      // them): a wrong one not sent blocks nothing (a review: every choice was refused).
      const keepTrend = trend.value === s.trend && typed(period.value) === s.period;
      const wrong = [[period, checkPeriod(period)],
                     [trendPeriod, checkPeriod(trendPeriod, true, !keepTrend)]]
        .filter(([, v]) => v === null).map(([box]) => box);
      if (wrong.length) {
        // The focus moves to the first wrong box on Show (or Enter), not when a select's
        // change submitted the form.
        if (e.submitter) wrong[0].focus();
        return;
      }
      const q = query({ indicator: indicator.value, period: typed(period.value), by: level.value,
        province: province.value, district: asciiDigits(district.value).trim(), grouping: grouping.value,
        // A trend the reader chose stays; the default follows the period (BS or Gregorian).
        series: p.has("series") || trend.value !== s.trend ? trend.value : "",
        trend_period: keepTrend ? typed(trendPeriod.value) : "" });
      ctx.navigate(`/dashboard?${q}`, true);
    } },
  field(t("ctl.indicator"), indicator),
  field(t("ctl.period"), period, t("ctl.period_hint")),
  field(t("ctl.level"), level),
  field(t("ctl.province"), province),
  field(t("ctl.district"), district, t("ctl.district_hint")),
  field(t("ctl.grouping"), grouping),
  field(t("ctl.trend"), trend),
  field(t("trend.period"), trendPeriod, t("trend.period_hint")),
  h("div", { class: "form-group" }, h("button", { type: "submit", class: "button", id: "show" },
    t("ctl.show"))));
  // A change of indicator or level shows at once; the text fields wait for Show.
  for (const c of [indicator, level, province, grouping, trend]) {
    c.addEventListener("change", () => form.requestSubmit());
  }
  replace(ctx.main, h("h1", { tabindex: "-1" }, t("dash.title")),
    h("p", { class: "lead" }, t("dash.intro")), form, results);
  ctx.setTitle(t("dash.title"));
  replace(results, h("p", { class: "status-line" }, t("loading")));

  destroyCharts();
  const title = ind ? indicatorTitle(ind) : s.indicator;
  const parts = await Promise.allSettled([
    areaFigures({ base: "/v1", code: s.indicator, title, period: s.period, level: s.level,
                  province: s.province, district: s.district }).then((r) => r.figures),
    trendFigure(s, title).then((f) => [f]),
    s.grouping ? breakdownFigure(s, title).then((f) => [f]) : Promise.resolve([]),
    coverageFigure(s).then((f) => [f]),
  ]);
  if (mine !== generation) return;
  replace(results);
  // One box for one reason: a period that does not exist fails every figure alike.
  const said = new Set();
  for (const part of parts) {
    if (part.status === "rejected") {
      const why = `${part.reason.status}|${part.reason.message}`;
      if (!said.has(why)) results.append(errorBox(part.reason));
      said.add(why);
      continue;
    }
    for (const f of part.value) {
      results.append(f.node);
      f.mount();
    }
  }
  results.setAttribute("data-ready", "1");
}
