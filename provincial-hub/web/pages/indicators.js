// One indicator by district or by local level of the province: a choropleth map (the build's
// SVG paths of Nepal, tools/topo2svg.py), a bar chart (Chart.js, Debian's) and the table that
// says the same, all from one answer of GET /v1/indicators/<code>?by=...; then one local
// level's trends over the fiscal year's BS months (series=bs_month).
import { h, replace, rovingFocus } from "/common/dom.js";
import { t, num, digits, tickNum, areaName, localLevelName, districtName } from "/common/i18n.js";
import { api } from "/common/api.js";
import { indicatorTitle } from "/common/indicators.js";
import { figure, fiscalMonths, monthName, periodName, previousFiscalYear } from "/pages/util.js";

const SVG = "http://www.w3.org/2000/svg";
// Viridis in five steps, light to dark: ordered in lightness and told apart with any of the
// common colour-vision deficiencies.
const SCALE = ["#fde725", "#5ec962", "#21918c", "#3b528b", "#440154"];
const TRENDS = ["participants_registered", "services_delivered", "referrals_pending"];
const TREND_COLOURS = ["#0b4f86", "#b35900", "#6b3fa0"];
let mapData = null;
let charts = [];

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

async function loadMap() {
  if (!mapData) {
    const r = await fetch("/map.json", { credentials: "same-origin" });
    if (!r.ok) throw new Error(t("error.load"));
    mapData = await r.json();
  }
  return mapData;
}

// The figure of one answer: the sum of its cells, or a ratio of summed parts; null when the
// answer has no cell (no data: hatched, never coloured as zero).
function answerValue(a, ratio) {
  if (!a || a.cells.length === 0) return null;
  if (ratio) {
    let n = 0;
    let d = 0;
    for (const c of a.cells) { n += c.value; d += c.denominator; }
    return d ? n / d : null;
  }
  return a.cells.reduce((x, c) => x + c.value, 0);
}

function ask(code, q) {
  return api.get(`/v1/indicators/${encodeURIComponent(code)}?${new URLSearchParams(q)}`);
}

export async function draw(main, session) {
  charts.forEach((c) => c.destroy());
  charts = [];
  const params = new URLSearchParams(location.search);
  const cat = await api.get("/v1/indicators");
  if (cat.status !== 200) throw new Error(t("error.load"));
  const list = cat.body.indicators;
  const code = params.get("indicator") || "participants_registered";
  const level = params.get("by") === "district" ? "district" : "municipality";
  const fy = session.fiscal_year;
  const period = params.get("period") || fy;
  const mun = Number(params.get("municipality")) || 0;
  const ind = list.find((x) => x.code === code) || list[0];
  const [map, r] = await Promise.all([loadMap(), ask(ind.code, { period, by: level })]);
  if (r.status !== 200) throw new Error((r.body && r.body.error) || t("error.load"));
  const ratio = r.body.answers.some((a) => a.cells.some((c) => "ratio" in c));
  const rows = r.body.answers.map((a) => ({ code: a.area.code, name: areaName(a.area),
                                            value: answerValue(a, ratio) }));
  const byCode = new Map(rows.map((x) => [x.code, x]));

  function go(change) {
    const q = Object.assign({ indicator: ind.code, by: level, period, municipality: mun || "" }, change);
    for (const k of Object.keys(q)) if (q[k] === "" || q[k] === 0) delete q[k];
    history.replaceState({}, "", `/indicators?${new URLSearchParams(q)}`);
    draw(main, session);
  }
  // The months of the year so far: a month still to come has nothing to show.
  const periods = [fy, ...fiscalMonths(fy).filter((m) => m <= session.bs_month), previousFiscalYear(fy)];
  const controls = h("div", { class: "controls" },
    h("div", { class: "form-group" }, h("label", { for: "ind-code" }, t("ind.indicator")),
      h("select", { id: "ind-code", onchange: (e) => go({ indicator: e.target.value }) },
        list.map((x) => h("option", { value: x.code, selected: x.code === ind.code }, indicatorTitle(x))))),
    h("fieldset", { class: "inline" }, h("legend", {}, t("ind.level")),
      ["district", "municipality"].map((l) => h("div", { class: "radio" },
        h("input", { type: "radio", name: "level", id: `level-${l}`, value: l, checked: l === level,
                     onchange: () => go({ by: l }) }),
        h("label", { for: `level-${l}` }, t(`ind.by_${l}`))))),
    h("div", { class: "form-group" }, h("label", { for: "ind-period" }, t("ind.period")),
      h("select", { id: "ind-period", onchange: (e) => go({ period: e.target.value }) },
        periods.map((p) => h("option", { value: p, selected: p === period }, periodName(p))))));

  const values = rows.map((x) => x.value).filter((v) => v !== null);
  const max = values.length ? Math.max(...values) : 0;
  const bin = (v) => (max <= 0 ? 0 : Math.min(SCALE.length - 1, Math.floor((v / max) * SCALE.length)));
  const show = (v) => figure(v, ratio);

  // The map: every local level of the province (or its districts), hatched without data.
  const province = session.province;
  const readout = h("p", { class: "map-readout", id: "map-readout", "aria-live": "polite" }, t("map.hint"));
  const svg = s("svg", { viewBox: map.viewBox, class: "map", role: "group", id: "map",
                         "aria-label": t("map.label", { indicator: indicatorTitle(ind), period: periodName(period) }) },
    s("defs", {}, s("pattern", { id: "nodata", width: 6, height: 6, patternUnits: "userSpaceOnUse",
                                 patternTransform: "rotate(45)" },
      s("rect", { width: 6, height: 6, fill: "#ffffff" }),
      s("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#6f777b", "stroke-width": 2 }))));
  const units = s("g", { class: "units" });
  const districtOf = new Map(session.local_levels.map((l) => [Math.floor(l.code / 100), l.district]));
  function unit(d, area, label) {
    const row = byCode.get(area);
    const v = row ? row.value : null;
    const text = `${label}: ${v === null ? t("value.no_data") : show(v)}`;
    const p = s("path", { d, class: "unit", tabindex: 0, role: "img", "data-code": area,
                          "data-value": v === null ? "" : v, "aria-label": text,
                          fill: v === null ? "url(#nodata)" : SCALE[bin(v)] }, s("title", {}, text));
    const say = () => replace(readout, text);
    p.addEventListener("mouseenter", say);
    p.addEventListener("focus", say);
    return p;
  }
  const names = new Map(rows.map((x) => [x.code, x.name]));
  if (level === "municipality") {
    for (const u of map.units) {
      if (Math.floor(u.code / 10000) !== province) continue;
      const ll = session.local_levels.find((l) => l.code === u.code);
      units.append(unit(u.d, u.code, ll ? localLevelName(ll.code, ll.name) : String(u.code)));
    }
  } else {
    for (const [prefix, d] of Object.entries(map.districts)) {
      if (Math.floor(Number(prefix) / 100) !== province) continue;
      const dist = districtOf.get(Number(prefix));
      units.append(unit(d, dist, names.get(dist) || districtName(dist, String(dist))));
    }
  }
  const inert = s("g", { class: "protected", "aria-hidden": "true" },
    ...map.protected.map((p) => s("path", { d: p.d, fill: "#e8e8e8", stroke: "#929191" }, s("title", {}, p.name))));
  rovingFocus(units, "path.unit");
  svg.append(units, inert,
    s("path", { d: map.district_borders, class: "border-district", fill: "none" }),
    s("path", { d: map.province_borders, class: "border-province", fill: "none" }));

  // The legend: the scale's steps, no data, protected areas.
  const step = max / SCALE.length;
  const legend = h("ul", { class: "legend", "aria-label": t("map.legend") },
    SCALE.map((c, i) => h("li", {}, swatch(c),
      `${show(ratio ? i * step : Math.ceil(i * step))} – ${show(ratio ? (i + 1) * step : Math.floor((i + 1) * step))}`)),
    h("li", {}, swatch("url(#legend-nodata)", true), t("map.no_data")),
    h("li", {}, swatch("#e8e8e8"), t("map.protected")));

  const table = h("table", { class: "table", id: "ind-table" },
    h("caption", {}, t("ind.table_caption", { indicator: indicatorTitle(ind), period: periodName(period) })),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t(`ind.by_${level}`)),
      h("th", { scope: "col", class: "num" }, t("ind.value")))),
    h("tbody", {}, rows.map((x) => h("tr", { "data-code": x.code },
      h("th", { scope: "row" }, x.name, " ", h("span", { class: "muted" }, `(${digits(x.code)})`)),
      h("td", { class: "num", "data-value": x.value === null ? "" : x.value },
        x.value === null ? t("value.no_data") : show(x.value))))));
  const csv = h("a", { class: "button button-secondary", id: "ind-csv", download: `${ind.code}.csv`,
                       href: `/v1/indicators/${ind.code}?${new URLSearchParams({ period, by: level, format: "csv" })}` },
    t("ind.csv"));

  const bars = h("canvas", { id: "ind-chart", role: "img",
                             "aria-label": t("ind.chart_label", { indicator: indicatorTitle(ind) }) });
  const munSelect = h("select", { id: "trend-municipality", onchange: (e) => go({ municipality: e.target.value }) },
    session.local_levels.map((l) => h("option", { value: l.code, selected: l.code === mun }, `${localLevelName(l.code, l.name)} (${districtName(l.district, l.district_name)})`)));
  const trendCanvas = h("canvas", { id: "trend-chart", role: "img", "aria-label": t("trend.chart_label") });
  const trendTable = h("div", { class: "table-wrap", id: "trend-table-wrap" });

  replace(main,
    h("h1", {}, t("ind.title")),
    h("p", { class: "lead" }, indicatorTitle(ind), ind.sdg ? h("span", { class: "muted" }, ` · SDG ${ind.sdg}`) : null),
    controls,
    h("div", { class: "map-and-table" },
      h("figure", { class: "map-figure" }, svg, readout, legend,
        h("figcaption", { class: "attribution" }, map.attribution)),
      h("div", { class: "table-wrap side-table" }, table, h("p", {}, csv))),
    h("h2", {}, t("ind.chart_title")),
    h("div", { class: "chart-box" }, bars),
    h("h2", { id: "trends-h" }, t("trend.title")),
    h("div", { class: "form-group" }, h("label", { for: "trend-municipality" }, t("trend.municipality")), munSelect),
    h("div", { class: "chart-box" }, trendCanvas), trendTable);

  // The hatch of the legend's swatch is a pattern of its own (an id is unique in a page).
  fitToUnits(svg, units);
  charts.push(new window.Chart(bars, {
    type: "bar",
    data: { labels: rows.map((x) => x.name),
            datasets: [{ label: indicatorTitle(ind), data: rows.map((x) => x.value), backgroundColor: "#21918c" }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
               plugins: { legend: { display: false } }, scales: { y: valueAxis(false) } },
  }));
  // Without a choice in the URL, the trends of the first local level with data in the map (in
  // the district view, of the first in a district with data): the first in the list had none
  // to show in most provinces.
  const withData = session.local_levels.find((l) => {
    const x = byCode.get(level === "district" ? l.district : l.code);
    return x && x.value;
  });
  const trendCode = mun || (withData || session.local_levels[0]).code;
  await drawTrends(trendCode, fy, trendCanvas, trendTable);
  if (!mun) munSelect.value = String(trendCode);
}

// A chart's value axis from zero, its ticks in the page's digits (whole steps for counts).
function valueAxis(counts) {
  return { beginAtZero: true,
           ticks: { precision: counts ? 0 : undefined, callback: tickNum } };
}

function swatch(fill, hatched) {
  return s("svg", { width: 18, height: 14, class: "swatch", "aria-hidden": "true" },
    hatched ? s("defs", {}, s("pattern", { id: "legend-nodata", width: 6, height: 6,
                                            patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" },
      s("rect", { width: 6, height: 6, fill: "#ffffff" }),
      s("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#6f777b", "stroke-width": 2 }))) : null,
    s("rect", { width: 18, height: 14, fill, stroke: "#0b0c0c" }));
}

// Zooms the map's view to the province's units (the paths are in Nepal's coordinates).
function fitToUnits(svg, units) {
  const b = units.getBBox();
  if (b.width > 0) {
    const pad = Math.max(b.width, b.height) * 0.03;
    svg.setAttribute("viewBox", `${b.x - pad} ${b.y - pad} ${b.width + 2 * pad} ${b.height + 2 * pad}`);
  }
}

// One local level's registrations, services and pending referrals over the fiscal year's BS
// months: a line chart and its table.
async function drawTrends(code, fy, canvas, wrap) {
  const answers = await Promise.all(TRENDS.map((ind) =>
    ask(ind, { period: fy, series: "bs_month", municipality: code })));
  const months = fiscalMonths(fy);
  const series = answers.map((r) => (r.status === 200 ? r.body.answers.map((a) => answerValue(a, false)) : months.map(() => null)));
  charts.push(new window.Chart(canvas, {
    type: "line",
    data: { labels: months.map(monthName),
            datasets: TRENDS.map((k, i) => ({ label: t(`trend.${k}`), data: series[i],
                                               borderColor: TREND_COLOURS[i], backgroundColor: TREND_COLOURS[i],
                                               pointStyle: ["circle", "rect", "triangle"][i], spanGaps: false })) },
    options: { animation: false, responsive: true, maintainAspectRatio: false,
               scales: { y: valueAxis(true) } },
  }));
  replace(wrap, h("table", { class: "table", id: "trend-table" },
    h("caption", {}, t("trend.table_caption")),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("trend.month")),
      TRENDS.map((k) => h("th", { scope: "col", class: "num" }, t(`trend.${k}`))))),
    h("tbody", {}, months.map((m, j) => h("tr", { "data-period": m },
      h("th", { scope: "row" }, monthName(m)),
      series.map((v) => h("td", { class: "num" }, v[j] === null ? t("value.no_data") : num(v[j]))))))));
}

