// The choropleth of Nepal's provinces, districts or 753 local levels: SVG paths projected at
// build time (tools/topo2svg.py, compiled into the daemon as /map.json), coloured here on a
// colour-blind-safe sequential scale (viridis, light to dark); units with no data are hatched,
// never coloured as zero. Hovering or focusing a unit says its name and value, which the
// table beside the map says too.
import { h, replace, rovingFocus } from "/common/dom.js";
import { t, digits, areaName } from "/common/i18n.js";
import { fmt } from "./figures.js";

const SVG = "http://www.w3.org/2000/svg";
// Viridis in five steps, lightest for the smallest values.
export const SCALE = ["#fde725", "#7ad151", "#22a884", "#2a788e", "#414487"];

let geo = null;

// The map and the district prefixes (the map keys districts by their local levels' first
// three digits, the API by the national district code), fetched once.
export async function loadMap() {
  if (!geo) {
    const [m, d] = await Promise.all([fetch("/map.json"), fetch("/districts.json")]);
    if (!m.ok || !d.ok) throw new Error("map");
    geo = { map: await m.json(), districtOf: await d.json() };
  }
  return geo;
}

function el(tag, attrs, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

// Class limits of values: five equal steps up to a round maximum.
export function breaks(values) {
  const max = Math.max(0, ...values);
  if (max <= 0) return [0, 0, 0, 0, 0];
  const raw = max / SCALE.length;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
  return SCALE.map((_, i) => step * (i + 1));
}

function colour(v, lim) {
  for (let i = 0; i < lim.length; i++) if (v <= lim[i]) return SCALE[i];
  return SCALE[SCALE.length - 1];
}

// The paths of level's units: [{code, d}] with the API's codes.
function units(level) {
  const m = geo.map;
  if (level === "municipality") return m.units.map((u) => ({ code: u.code, d: u.d }));
  if (level === "district") {
    return Object.entries(m.districts).map(([prefix, d]) => ({ code: geo.districtOf[prefix], d }));
  }
  return Object.entries(m.provinces).map(([code, d]) => ({ code: Number(code), d }));
}

// o: {level, values: Map(code -> {name, value}) (value null: no data), label}. Returns the
// map's node (the SVG, the line that names the unit under the pointer, the legend, the
// attribution).
export function drawMap(o) {
  const m = geo.map;
  const withData = [...o.values.values()].filter((v) => v.value !== null).map((v) => v.value);
  const lim = breaks(withData);
  const tip = h("p", { class: "map-tip", "aria-live": "polite", id: "map-tip" }, t("map.tip"));
  const svg = el("svg", { viewBox: m.viewBox, role: "group", "aria-label": o.label,
    id: "map-svg", "data-level": o.level });
  svg.append(el("defs", {}, el("pattern", { id: "fed-hatch", patternUnits: "userSpaceOnUse",
    width: 5, height: 5, patternTransform: "rotate(45)" },
  el("rect", { width: 5, height: 5, fill: "#ffffff" }),
  el("line", { x1: 0, y1: 0, x2: 0, y2: 5, stroke: "#505a5f", "stroke-width": 1.6 }))));
  const show = (text) => replace(tip, text);
  for (const u of units(o.level)) {
    // A unit without an answer is named too (the API named only those it answered for).
    const v = o.values.get(u.code) || { name: areaName({ level: o.level, code: u.code }), value: null };
    const label = t("map.unit", { name: v.name, code: digits(u.code), value: fmt(v.value) });
    const p = el("path", { d: u.d, class: "map-unit", tabindex: "0", role: "img",
      "aria-label": label, "data-code": u.code,
      "data-value": v.value === null ? "" : v.value,
      fill: v.value === null ? "url(#fed-hatch)" : colour(v.value, lim) },
    el("title", {}, label));
    p.addEventListener("mouseenter", () => show(label));
    p.addEventListener("focus", () => show(label));
    svg.append(p);
  }
  rovingFocus(svg, "path.map-unit");
  for (const p of m.protected) svg.append(el("path", { d: p.d, class: "map-protected", "aria-hidden": "true" }));
  if (o.level !== "province") svg.append(el("path", { d: m.district_borders, class: "map-border-district", "aria-hidden": "true" }));
  svg.append(el("path", { d: m.province_borders, class: "map-border-province", "aria-hidden": "true" }));
  svg.append(el("path", { d: m.outline, class: "map-border-province", "aria-hidden": "true" }));
  const swatch = (fill) => el("svg", { viewBox: "0 0 16 10", "aria-hidden": "true" },
    el("rect", { width: 16, height: 10, fill }));
  // Classes that do not meet at their bounds (a unit of 5 was in "0 – 5" and "5 – 10", by the
  // pages' attack): whole numbers from the next one up, other values "over" the last bound.
  const whole = withData.every(Number.isInteger) && lim.every(Number.isInteger);
  const bounds = (lo, hi, first) => (first ? `${fmt(lo)} – ${fmt(hi)}`
    : whole ? `${fmt(lo + 1)} – ${fmt(hi)}` : t("map.class_over", { lo: fmt(lo), hi: fmt(hi) }));
  const legend = h("ul", { class: "legend", "aria-label": t("map.legend"), id: "map-legend" },
    withData.length ? SCALE.map((c, i) => h("li", {}, swatch(c),
      bounds(i ? lim[i - 1] : 0, lim[i], i === 0))) : null,
    h("li", {}, swatch("url(#fed-hatch)"), t("no_data.legend")));
  return h("div", { class: "map-box" }, svg, tip, legend,
    h("p", { class: "attribution" }, m.attribution));
}
