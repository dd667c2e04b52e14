// A figure of the dashboards: a chart (Chart.js, from Debian's libjs-chart.js, drawn on a
// canvas) with its table beside it, and downloads of both as CSV and the chart as PNG. Every
// figure's numbers are the API's answers, shown as they came.
import { h, newId } from "/common/dom.js";
import { t, num, digits, tickNum } from "/common/i18n.js";
import { download, downloadCsv } from "/common/csv.js";

// Okabe and Ito's palette: told apart with every common colour-vision deficiency.
export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
  "#000000", "#F0E442"];

// Charts drawn on the page, destroyed before it is drawn again.
const live = [];

export function destroyCharts() {
  while (live.length) live.pop().destroy();
}

// A value as the page shows it: whole numbers grouped as Nepal writes them, ratios with up to
// three decimals; null (no data) as the words for it.
export function fmt(v) {
  if (v === null || v === undefined) return t("no_data");
  if (Number.isInteger(v)) return num(v);
  return digits(Number(v).toFixed(3).replace(/\.?0+$/, ""));
}

// Paints the canvas white under the chart, so that a PNG saved from it is readable anywhere.
const whiteBackground = {
  id: "whiteBackground",
  beforeDraw(chart) {
    const c = chart.ctx;
    c.save();
    c.globalCompositeOperation = "destination-over";
    c.fillStyle = "#ffffff";
    c.fillRect(0, 0, chart.width, chart.height);
    c.restore();
  },
};

// The chart as a picture that says what it is once pasted into a brief: the figure's title
// above it, its note (exact or perturbed) and where it came from below (the attack on the
// ministry's pages: the PNG held bars and axes only). Drawn at the chart's own pixel ratio.
function titled(canvas, o) {
  const k = canvas.width / (canvas.clientWidth || canvas.width);
  const pad = 12 * k;
  const width = canvas.width;
  const family = getComputedStyle(document.body).fontFamily;
  const c0 = document.createElement("canvas").getContext("2d");
  // Lines of text that fit the width: broken at spaces, and a word longer than a line (an
  // address) where it must.
  const lines = (text, font) => {
    c0.font = font;
    const out = [];
    let line = "";
    for (const word of String(text).split(" ")) {
      let w = word;
      while (c0.measureText(line ? `${line} ${w}` : w).width > width) {
        if (line) {
          out.push(line);
          line = "";
          continue;
        }
        let n = w.length;
        while (n > 1 && c0.measureText(w.slice(0, n)).width > width) n--;
        out.push(w.slice(0, n));
        w = w.slice(n);
      }
      line = line ? `${line} ${w}` : w;
    }
    if (line) out.push(line);
    return out;
  };
  const head = { font: `bold ${16 * k}px ${family}`, step: 21 * k };
  const foot = { font: `${12 * k}px ${family}`, step: 16 * k };
  const title = lines(o.title, head.font);
  const source = t("download.source", { url: location.href,
                                        day: new Date().toISOString().slice(0, 10) });
  const below = [...(o.note ? lines(o.note, foot.font) : []), ...lines(source, foot.font)];
  const out = document.createElement("canvas");
  out.width = width + 2 * pad;
  out.height = 2 * pad + title.length * head.step + 8 * k + canvas.height + 8 * k
    + below.length * foot.step;
  const c = out.getContext("2d");
  c.fillStyle = "#ffffff";
  c.fillRect(0, 0, out.width, out.height);
  c.fillStyle = "#0b0c0c";
  c.textBaseline = "top";
  let y = pad;
  c.font = head.font;
  for (const l of title) { c.fillText(l, pad, y); y += head.step; }
  y += 8 * k;
  c.drawImage(canvas, pad, y);
  y += canvas.height + 8 * k;
  c.font = foot.font;
  for (const l of below) { c.fillText(l, pad, y); y += foot.step; }
  return out;
}

// The chart's box: a horizontal chart's grows with its bars, so that each is named. Its
// height set through the CSSOM (the pages' CSP refuses a style attribute).
function chartBox(canvas, chart) {
  const box = h("div", { class: "chart-box" }, canvas);
  if (chart.horizontal) box.style.height = `${Math.max(22, 1.5 * chart.labels.length + 4)}rem`;
  return box;
}

// o: {id, title, head: [column titles], rows: [[cells]] (raw values; numbers are formatted),
// numeric: [column indexes that hold numbers], format: {column index: a function that says a
// cell as the page shows it (a code in the page's digits, a period in words); the downloads
// keep the raw value}, chart: {type, labels, datasets: [{label, data}],
// stacked, percent} or null, before: a node shown above the chart (the map), file: stem of the
// downloads}. Returns {node, mount}: mount() draws the chart once node is in the page.
export function figure(o) {
  const hid = newId("fig");
  const numeric = new Set(o.numeric || []);
  const format = o.format || {};
  const shown = (c, i) => (numeric.has(i) ? fmt(c) : format[i] ? format[i](c) : c);
  const table = h("table", { class: "table", id: `${o.id}-table` },
    h("caption", { class: "visually-hidden" }, o.title),
    h("thead", {}, h("tr", {}, o.head.map((c, i) =>
      h("th", { scope: "col", class: numeric.has(i) ? "num" : null }, c)))),
    h("tbody", {}, o.rows.map((r) => h("tr", {}, r.map((c, i) => i === 0
      ? h("th", { scope: "row" }, shown(c, i))
      : h("td", numeric.has(i) ? { class: "num", "data-value": c === null ? "" : String(c) } : {},
        shown(c, i)))))));
  const canvas = o.chart ? h("canvas", { id: `${o.id}-chart`, role: "img",
    "aria-label": t("chart.label", { title: o.title }) }) : null;
  const csv = h("button", { type: "button", class: "button button-secondary", id: `${o.id}-csv`,
    "aria-label": t("download.of", { what: "CSV", figure: o.title }),
    onclick: () => downloadCsv(`${o.file}.csv`, o.csvHead || o.head, o.rows) }, t("download.csv"));
  const png = canvas ? h("button", { type: "button", class: "button button-secondary",
    id: `${o.id}-png`, "aria-label": t("download.of", { what: "PNG", figure: o.title }),
    onclick: () => titled(canvas, o).toBlob((b) => b && download(`${o.file}.png`, b), "image/png") },
  t("download.png")) : null;
  const node = h("section", { class: "figure", id: o.id, "aria-labelledby": hid },
    h("h2", { id: hid }, o.title),
    o.note ? h("p", { class: "status-line" }, o.note) : null,
    h("div", { class: canvas || o.before ? "figure-body" : "figure-body single" },
      canvas || o.before
        ? h("div", {}, o.before || null, canvas ? chartBox(canvas, o.chart) : null)
        : null,
      h("div", {}, h("div", { class: "table-wrap", tabindex: "0", role: "region",
        "aria-label": o.title }, table))),
    h("div", { class: "button-row" }, csv, png));
  const mount = () => {
    if (!canvas || typeof Chart === "undefined") return;
    const c = o.chart;
    const chart = new Chart(canvas, {
      type: c.type || "bar",
      data: {
        labels: c.labels,
        datasets: c.datasets.map((d, i) => ({
          label: d.label, data: d.data,
          backgroundColor: d.color || PALETTE[i % PALETTE.length],
          borderColor: d.color || PALETTE[i % PALETTE.length],
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        indexAxis: c.horizontal ? "y" : "x",
        plugins: { legend: { display: c.datasets.length > 1 } },
        // The value axis in the page's digits, as the tables beside it; the other says the
        // categories. A horizontal chart's value axis is x: its y gave the areas' indexes
        // (0, 2, 4, ...) for their names, a saved picture showed.
        scales: (() => {
          const value = { stacked: !!c.stacked, beginAtZero: true,
                          max: c.percent ? 100 : undefined, ticks: { callback: tickNum } };
          // Every bar named on a horizontal chart (its box grows with them, below).
          const category = { stacked: !!c.stacked, ticks: { autoSkip: !c.horizontal } };
          return c.horizontal ? { x: value, y: category } : { x: category, y: value };
        })(),
      },
      plugins: [whiteBackground],
    });
    live.push(chart);
  };
  return { node, mount };
}
