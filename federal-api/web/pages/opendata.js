// The open-data page: no sign-in. It reads only the open routes (/open/v1/...), which answer
// as the public role does: perturbed values, the same for a cell whichever way it is asked.
// National and provincial figures of a chosen indicator (chart, map, table, CSV), the
// catalogue with its definitions and SDG targets, and how the figures are protected.
import { h, replace } from "/common/dom.js";
import { t, has, digits } from "/common/i18n.js";
import { indicatorTitle } from "/common/indicators.js";
import { figure, destroyCharts } from "../figures.js";
import { areaFigures, checkPeriod, defaultPeriod, errorBox, field, get, groupingName, periodName,
         query, typed, valueOf }
  from "../views.js";


function limitedOr(e) {
  return e.status === 429 ? new Error(t("open.limited")) : e;
}

// Each drawing's number: an answer that comes back after a newer drawing began is dropped.
let generation = 0;

export async function render(ctx) {
  const mine = ++generation;
  ctx.setTitle(t("open.title"));
  let cat;
  try {
    cat = await get("/open/v1/indicators");
  } catch (e) {
    replace(ctx.main, h("h1", { tabindex: "-1" }, t("open.title")), errorBox(limitedOr(e)));
    return;
  }
  if (mine !== generation) return;
  const inds = cat.indicators || [];
  const p = ctx.params;
  const code = p.get("indicator") || (inds[0] && inds[0].code) || "";
  const ind = inds.find((i) => i.code === code) || inds[0];
  const period = p.get("period") || await defaultPeriod();
  if (mine !== generation) return;
  const level = p.get("by") === "district" ? "district" : "province";

  const indicator = h("select", { id: "indicator", name: "indicator" },
    inds.map((i) => h("option", { value: i.code, selected: i.code === code }, indicatorTitle(i))));
  const periodIn = h("input", { type: "text", id: "period", name: "period", value: period,
                                spellcheck: "false", autocomplete: "off" });
  const levelIn = h("select", { id: "by", name: "by" },
    ["province", "district"].map((l) => h("option", { value: l, selected: l === level },
      t(`level.${l}`))));
  const form = h("form", { class: "controls", id: "controls", novalidate: true,
    onsubmit: (e) => {
      e.preventDefault();
      if (checkPeriod(periodIn) === null) {
        if (e.submitter) periodIn.focus();
        return;
      }
      ctx.navigate(`/open-data?${query({ indicator: indicator.value,
        period: typed(periodIn.value), by: levelIn.value })}`, true);
    } },
  field(t("ctl.indicator"), indicator), field(t("ctl.period"), periodIn, t("ctl.period_hint")),
  field(t("ctl.level"), levelIn),
  h("div", { class: "form-group" }, h("button", { type: "submit", class: "button", id: "show" },
    t("ctl.show"))));
  for (const c of [indicator, levelIn]) c.addEventListener("change", () => form.requestSubmit());

  const results = h("div", { id: "results", "aria-live": "polite" },
    h("p", { class: "status-line" }, t("loading")));
  // Each definition in words: how it counts, and what it is broken down by (the API's keys,
  // "distinct" and "age_band", stood here in both languages).
  const catalogue = h("dl", { class: "catalogue", id: "catalogue" }, inds.map((i) => {
    const groups = (i.groupings || []).filter((g) => g).map(groupingName);
    return [
      h("dt", {}, indicatorTitle(i), " ", h("code", {}, i.code)),
      h("dd", {}, h("p", { class: "definition" },
        i.sdg ? t("open.sdg", { sdg: digits(i.sdg) }) : t("open.no_sdg"), " · ",
        has(`open.aggregation.${i.aggregation}`) ? t(`open.aggregation.${i.aggregation}`)
          : i.aggregation,
        groups.length ? [" · ", t("open.groupings", { list: groups.join("; ") })]
          : null)),
    ];
  }));
  replace(ctx.main, h("h1", { tabindex: "-1" }, t("open.title")),
    h("p", { class: "lead" }, t("open.intro")),
    h("section", { class: "notice", id: "method", "aria-labelledby": "method-h" },
      h("h2", { id: "method-h" }, t("open.method_title")), h("p", {}, t("open.method"))),
    h("h2", {}, t("open.choose")), form, results,
    h("section", { "aria-labelledby": "cat-h" }, h("h2", { id: "cat-h" }, t("open.catalogue")),
      catalogue));

  destroyCharts();
  const title = ind ? indicatorTitle(ind) : code;
  const [areas, national] = await Promise.allSettled([
    areaFigures({ base: "/open/v1", code, title, period, level }),
    get(`/open/v1/indicators/${encodeURIComponent(code)}?${query({ period })}`),
  ]);
  if (mine !== generation) return;
  replace(results);
  // A public sum of a few contributions can be far from the exact one, and was shown to the
  // rupee without a word (the attack on the public pages: 21 to 29 % off by province).
  if (ind && ind.aggregation === "sum") {
    results.append(h("p", { class: "warning", id: "sum-warning" }, t("open.sum_warning")));
  }
  if (national.status === "fulfilled") {
    const a = national.value;
    const f = figure({ id: "fig-national", title: t("fig.national", { indicator: title, period: periodName(period) }),
      head: [t("col.area"), t("col.value")], csvHead: ["area", "value"],
      rows: [[t("area.national"), valueOf(a)]], numeric: [1], file: `${code}-national-${period}`,
      chart: null });
    results.append(f.node);
  } else {
    results.append(errorBox(limitedOr(national.reason)));
  }
  if (areas.status === "fulfilled") {
    for (const f of areas.value.figures) {
      results.append(f.node);
      f.mount();
    }
  } else {
    results.append(errorBox(limitedOr(areas.reason)));
  }
  results.setAttribute("data-ready", "1");
}
