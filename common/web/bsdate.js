// Bikram Sambat dates in the pages: conversions by the table the node compiles in
// (/bscal.json, from common/bscal.c's table), the date shown in both calendars, and a date
// field that takes "2083-07-15" typed or picked from a BS month calendar.
import { h, newId } from "./dom.js";
import { t, digits, asciiDigits } from "./i18n.js";

let T = null;
let nodeCal = "BS";

export async function load(calendar) {
  if (!T) {
    const r = await fetch("/bscal.json", { credentials: "same-origin" });
    if (!r.ok) throw new Error(`bscal.json: ${r.status}`);
    T = await r.json();
  }
  if (calendar) nodeCal = calendar;
}

export function calendar() {
  return nodeCal;
}

export function monthDays(y, m) {
  if (!T || y < T.first_year || y > T.last_year || m < 1 || m > 12) return 0;
  return T.months[y - T.first_year][m - 1];
}

// Days since 1970-01-01 of a BS date, or null when it is no date of the table.
export function bsToDays(y, m, d) {
  const n = monthDays(y, m);
  if (!n || d < 1 || d > n) return null;
  let days = T.start[y - T.first_year];
  for (let i = 1; i < m; i++) days += monthDays(y, i);
  return days + d - 1;
}

export function daysToBs(days) {
  if (!T) return null;
  for (let y = T.last_year; y >= T.first_year; y--) {
    const start = T.start[y - T.first_year];
    if (days >= start) {
      let off = days - start;
      for (let m = 1; m <= 12; m++) {
        const n = monthDays(y, m);
        if (off < n) return [y, m, off + 1];
        off -= n;
      }
      return null;
    }
  }
  return null;
}

export function adToDays(y, m, d) {
  const dt = new Date(Date.UTC(y, m - 1, d));
  if (dt.getUTCFullYear() !== y || dt.getUTCMonth() !== m - 1 || dt.getUTCDate() !== d) return null;
  return Math.round(dt.getTime() / 86400000);
}

export function daysToAd(days) {
  const dt = new Date(days * 86400000);
  return [dt.getUTCFullYear(), dt.getUTCMonth() + 1, dt.getUTCDate()];
}

const pad = (n, w) => String(n).padStart(w, "0");

export function iso(ymd) {
  return `${pad(ymd[0], 4)}-${pad(ymd[1], 2)}-${pad(ymd[2], 2)}`;
}

// "YYYY-MM-DD" (Devanagari digits accepted, and as the node takes them, / or . between the
// parts and one-digit months and days: "2083/8/5") of the calendar cal ("BS" or "AD"): its
// days, or null when it is not a date of that calendar.
export function parse(text, cal) {
  const m = /^(\d{4})([-/.])(\d{1,2})\2(\d{1,2})$/.exec(asciiDigits(String(text).trim()));
  if (!m) return null;
  const [y, mo, d] = [+m[1], +m[3], +m[4]];
  return (cal || nodeCal) === "BS" ? bsToDays(y, mo, d) : adToDays(y, mo, d);
}

export function monthName(m) {
  return t(`bs.month.${m}`);
}

function adLong(days) {
  const [y, m, d] = daysToAd(days);
  return digits(`${d} ${t(`ad.month.${m}`)} ${y}`);
}

function bsLong(days) {
  const bs = daysToBs(days);
  if (!bs) return "";
  return digits(`${bs[2]} ${monthName(bs[1])} ${bs[0]}`);
}

// The day in Nepal (UTC+05:45) of a time in milliseconds since 1970, as days since 1970: an
// instant's UTC day was shown, a day early from 18:15 UTC (the pages' attack: a return made
// on 22 Mangsir in Nepal read "21 Mangsir").
const NEPAL_MS = (5 * 60 + 45) * 60000;
export function nepalDay(ms) {
  return Math.floor((ms + NEPAL_MS) / 86400000);
}

// The time of day in Nepal of a time in milliseconds since 1970, as "HH:MM" (ASCII digits).
export function nepalTime(ms) {
  const m = Math.floor((ms + NEPAL_MS) / 60000) % 1440;
  return `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
}

// A day as the clerk reads it: BS first, the Gregorian date beside it.
export function long(days) {
  if (days === null || days === undefined) return "";
  const bs = bsLong(days);
  return bs ? `${bs} (${adLong(days)})` : adLong(days);
}

// A stored date of the node's calendar ("2083-07-15") as long(); the text itself when it is
// not a date.
export function show(text) {
  if (!text) return "";
  const days = parse(text, nodeCal);
  return days === null ? String(text) : long(days);
}

// The other calendar's date of a typed one, as words for beside the field ("" when none).
export function equivalent(text) {
  const days = parse(text, nodeCal);
  if (days === null) return "";
  if (nodeCal === "BS") return t("date.ad_equivalent", { date: adLong(days) });
  return t("date.bs_equivalent", { date: bsLong(days) });
}

export function today(session) {
  return parse(session.today, nodeCal);
}

// A date field: the text input (accepting "2083-07-15"), a button that opens a BS month
// calendar to pick from, and the Gregorian equivalent beside it. opts: {id, name, value,
// describedBy, onchange(value)}. Returns {root, input}.
export function dateField(opts) {
  const input = h("input", {
    id: opts.id, name: opts.name, type: "text", inputmode: "numeric", autocomplete: "off",
    spellcheck: "false", class: "input-date", value: opts.value || "",
    "aria-describedby": opts.describedBy,
  });
  const eqId = newId("eq");
  const eq = h("span", { class: "date-eq", id: eqId, "aria-live": "polite" });
  input.setAttribute("aria-describedby", `${opts.describedBy || ""} ${eqId}`.trim());
  const panelId = newId("picker");
  const button = h("button", {
    type: "button", class: "button button-secondary picker-button",
    "aria-haspopup": "dialog", "aria-expanded": "false", "aria-controls": panelId,
  }, t("date.pick"));
  const panel = h("div", { id: panelId, class: "picker", role: "dialog", "aria-modal": "false",
                           hidden: true });
  const root = h("div", { class: "date-field" }, input, " ", button, " ", eq, panel);

  const update = () => {
    eq.textContent = equivalent(input.value);
    if (opts.onchange) opts.onchange(input.value);
  };
  input.addEventListener("input", update);
  input.addEventListener("change", update);
  eq.textContent = equivalent(input.value);

  // The shown month and the focused day, in BS.
  let shownY = 0, shownM = 0, focusD = 1;
  const close = (refocus) => {
    panel.hidden = true;
    button.setAttribute("aria-expanded", "false");
    if (refocus) button.focus();
  };
  const pick = (d) => {
    const days = bsToDays(shownY, shownM, d);
    input.value = nodeCal === "BS" ? iso([shownY, shownM, d]) : iso(daysToAd(days));
    update();
    close(false);
    input.focus();
  };
  const draw = () => {
    const n = monthDays(shownY, shownM);
    if (focusD > n) focusD = n;
    const first = bsToDays(shownY, shownM, 1);
    const weekday = ((first % 7) + 11) % 7; // 0 = Sunday (1970-01-01 was a Thursday)
    const titleId = newId("picker-title");
    const nav = (k) => () => {
      move(k);
      panel.querySelector(`.picker-nav[data-dir="${k}"]`).focus();
    };
    const prev = h("button", { type: "button", class: "picker-nav", "data-dir": "-1",
      "aria-label": t("date.prev_month"), onclick: nav(-1) }, "‹");
    const next = h("button", { type: "button", class: "picker-nav", "data-dir": "1",
      "aria-label": t("date.next_month"), onclick: nav(1) }, "›");
    const rows = [];
    let cells = [];
    for (let i = 0; i < weekday; i++) cells.push(h("td", {}));
    for (let d = 1; d <= n; d++) {
      const days = bsToDays(shownY, shownM, d);
      cells.push(h("td", {}, h("button", {
        type: "button", class: "picker-day", tabindex: d === focusD ? "0" : "-1",
        "data-day": d, "aria-label": long(days), onclick: () => pick(d),
      }, digits(d))));
      if (cells.length === 7) {
        rows.push(h("tr", {}, cells));
        cells = [];
      }
    }
    if (cells.length) rows.push(h("tr", {}, cells));
    const head = [0, 1, 2, 3, 4, 5, 6].map((w) =>
      h("th", { scope: "col", abbr: t(`date.weekday.${w}`) }, t(`date.weekday_short.${w}`)));
    panel.setAttribute("aria-labelledby", titleId);
    panel.replaceChildren(
      h("div", { class: "picker-head" }, prev,
        h("h2", { id: titleId, class: "picker-title", "aria-live": "polite" },
          digits(`${monthName(shownM)} ${shownY}`)), next),
      h("table", { class: "picker-grid", role: "grid", "aria-labelledby": titleId },
        h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)),
      h("p", { class: "picker-help" }, t("date.picker_help")),
      h("button", { type: "button", class: "button button-secondary",
                    onclick: () => close(true) }, t("date.close")));
  };
  const focusDay = () => {
    const b = panel.querySelector(`button[data-day="${focusD}"]`);
    if (b) b.focus();
  };
  const move = (k) => {
    shownM += k;
    while (shownM < 1) { shownM += 12; shownY -= 1; }
    while (shownM > 12) { shownM -= 12; shownY += 1; }
    if (shownY < T.first_year) { shownY = T.first_year; shownM = 1; }
    if (shownY > T.last_year) { shownY = T.last_year; shownM = 12; }
    draw();
  };
  button.addEventListener("click", () => {
    if (!panel.hidden) {
      close(true);
      return;
    }
    let days = parse(input.value, nodeCal);
    if (days === null) days = opts.today ?? nepalDay(Date.now());
    const bs = daysToBs(days) || [T.last_year, 12, 1];
    [shownY, shownM, focusD] = bs;
    draw();
    panel.hidden = false;
    button.setAttribute("aria-expanded", "true");
    focusDay();
  });
  panel.addEventListener("keydown", (e) => {
    const day = e.target.dataset ? +e.target.dataset.day : 0;
    let handled = true;
    if (e.key === "Escape") {
      close(true);
    } else if (!day) {
      handled = false;
    } else if (e.key === "ArrowLeft" || e.key === "ArrowRight" || e.key === "ArrowUp" ||
               e.key === "ArrowDown") {
      const step = { ArrowLeft: -1, ArrowRight: 1, ArrowUp: -7, ArrowDown: 7 }[e.key];
      const target = day + step;
      if (target < 1) {
        move(-1);
        focusD = monthDays(shownY, shownM) + target;
      } else if (target > monthDays(shownY, shownM)) {
        focusD = target - monthDays(shownY, shownM);
        move(1);
      } else {
        focusD = target;
      }
      draw();
      focusDay();
    } else if (e.key === "PageUp" || e.key === "PageDown") {
      focusD = day;
      move(e.key === "PageUp" ? -1 : 1);
      focusDay();
    } else if (e.key === "Home" || e.key === "End") {
      focusD = e.key === "Home" ? 1 : monthDays(shownY, shownM);
      draw();
      focusDay();
    } else {
      handled = false;
    }
    if (handled) e.preventDefault();
  });
  return { root, input };
}
