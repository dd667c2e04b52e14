// A form for a row of any kind, built from the node's own description of its columns
// (GET /v1/schema) and checked as the clerk types by the node itself (POST /v1/check/...,
// the rules of the CSV import in municipal-node/field.c and intake.c): no rule is copied
// here. Errors appear beside each field she has touched, and all of them, with a summary at
// the top, when she saves; nothing she typed is lost when the node refuses the row.
import { h, replace, newId } from "/common/dom.js";
import { t, asciiDigits, digits, num, countryName } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { errorSummary, fieldError, label, periodName, value as enumLabel } from "./common.js";

// The order and grouping of each kind's columns on screen (the node's order is the CSV's).
const LAYOUT = {
  persons: [
    ["form.group.who", ["full_name", "sex", "birth_year", "caste_group", "disability", "phone",
                        "citizenship_no", "ward", "address"]],
    ["form.group.migration", ["category", "registered_on", "destination_country", "years_abroad",
                              "return_date", "remigration_intention", "family_member_abroad"]],
    ["form.group.consent", ["consent"]],
  ],
  services: [["form.group.service", ["service", "status", "date", "provider", "programme",
                                     "amount_npr"]]],
  enterprises: [["form.group.enterprise", ["action", "sector", "date", "registered", "employees",
                                           "status"]]],
  availability: [["form.group.availability", ["service", "provider", "available", "as_of"]]],
};

// The form on screen, and what it held when the session ended under it (the attack on the
// clerk's pages: a form half typed, or saved just after the 30 idle minutes, came back empty
// after signing in again). Kept in this page's memory only (never stored: the form holds
// names, phones and citizenship numbers), for the same clerk at the same address, and put back
// once; a reload forgets it.
let live = null; // {key, clerk, values(), form, state()}
let kept = null; // {key, clerk, values, quiet, touched, submitted}

// Keeps the values of the form on screen (called when the session has ended, or before the
// page is drawn again in the other language: quiet, its form put back without a notice);
// 1 when kept.
export function keepDraft(quiet) {
  if (!live || !live.form.isConnected) return 0;
  kept = Object.assign({ key: live.key, clerk: live.clerk, values: live.values(), quiet: !!quiet },
                       live.state());
  return 1;
}

// A form typed in, or a save not yet answered, is not left by a reload or a closed tab
// without the browser asking first (the clerk's attack: a reload during a save gave an empty
// form, and nothing said whether the person was registered). Nothing is stored for it.
// A draft kept when the session ended, not yet given back, counts too (a review: the page
// asked nothing, its form gone from the screen).
window.addEventListener("beforeunload", (e) => {
  if (!kept && (!live || !live.form.isConnected || !live.unsaved())) return;
  e.preventDefault();
  e.returnValue = "";
});

function takeDraft(key, clerk) {
  const d = kept;
  kept = null;
  return d && d.key === key && d.clerk === clerk ? d : null;
}

// The months the clerk closed (GET /v1/months, read once a form): a row dated in one of
// them changes the figures the reviewer sees (the pages' attack: it was saved without a
// word, the month still shown closed). Said beside the date, not refused: a correction of
// a closed month is legitimate, and the reviewer sees the month as changed.
const DATED = { persons: "registered_on", services: "date", enterprises: "date" };

// The months closed, approved, or approved and changed since: period -> state.
async function monthsClosed() {
  const r = await api.get("/v1/months");
  const out = new Map();
  if (r.status === 200) {
    for (const m of r.body.months || []) {
      if (["closed", "approved", "changed"].includes(m.state)) out.set(m.period, m.state);
    }
  }
  return out;
}

// The period a date of the node's calendar falls in, as /v1/months names it.
function periodOf(text) {
  const days = bsdate.parse(text, bsdate.calendar());
  if (days === null) return null;
  const [y, m] = bsdate.calendar() === "BS" ? bsdate.daysToBs(days) : bsdate.daysToAd(days);
  return `${bsdate.calendar() === "BS" ? "BS" : ""}${y}-${String(m).padStart(2, "0")}`;
}

// What two records of one person share, whatever the typing: a citizenship number's letters
// and digits; a phone's digits without Nepal's 977; a name in lower case, in one Unicode form
// (a nukta typed apart or precomposed), without dots, zero-width joiners or extra spaces.
function citizenshipKey(x) {
  return asciiDigits(String(x || "")).replace(/[^0-9A-Za-z]/g, "").toUpperCase();
}
function phoneKey(x) {
  const d = asciiDigits(String(x || "")).replace(/[^0-9]/g, "");
  return d.length > 10 && d.startsWith("977") ? d.slice(3) : d;
}
function nameKey(x) {
  return String(x || "").normalize("NFC").toLowerCase().replace(/[.\u200c\u200d]/g, "")
    .replace(/\s+/g, " ").trim();
}

function hintFor(col) {
  const calendar = t(`calendar.${bsdate.calendar()}`);
  if (col.type === "date") return t("hint.date", { calendar });
  // The calendar by its name (a clerk's attack: "in the node's calendar" said nothing).
  const key = `hint.${col.name}`;
  const s = t(key, { calendar });
  if (s !== key) return s;
  if (col.type === "int" && col.min !== undefined) {
    // Grouped as Nepal writes numbers: "0 to 1,00,00,00,00,000" was a row of 12 digits.
    return t("hint.range", { min: num(col.min), max: num(col.max) });
  }
  return null;
}

function control(col, id, describedBy, val, session, onchange) {
  if (col.type === "enum" || col.type === "bool") {
    const opts = col.type === "bool" ? ["true", "false"] : col.values;
    return h("select", { id, name: col.name, "aria-describedby": describedBy, onchange },
      h("option", { value: "" }, col.required ? t("form.choose") : t("form.not_known")),
      opts.map((v) => h("option", { value: v, selected: v === val }, col.type === "bool"
        ? t(v === "true" ? "form.yes" : "form.no") : enumLabel(col.name, v))));
  }
  if (col.type === "date") {
    const f = bsdate.dateField({ id, name: col.name, value: val, describedBy,
                                 today: bsdate.today(session), onchange });
    return f.root;
  }
  const numeric = col.type === "int";
  const input = h("input", {
    id, name: col.name, type: "text", value: val || "",
    class: numeric || col.type === "country" ? "input-short" : null,
    inputmode: numeric ? "numeric" : col.type === "phone" ? "tel" : null,
    autocomplete: "off", spellcheck: col.type === "text" ? null : "false",
    "aria-describedby": describedBy, oninput: onchange,
  });
  if (col.type !== "country") return input;
  // A country by its code, offered by its name as the clerk types either (the clerk's attack:
  // few know Qatar as QA), and named beside it once typed, in the page's language.
  const named = h("span", { class: "date-eq", id: `${id}-name`, "aria-live": "polite" });
  // In Nepali with the English name too: a clerk may type either ("कतार (Qatar)").
  const optionLabel = (cc) => {
    const here = countryName(cc);
    const en = countryName(cc, true);
    return here && en && here !== en ? `${here} (${en})` : here || en || cc;
  };
  const list = h("datalist", { id: `${id}-list` }, (col.values || []).map((cc) =>
    h("option", { value: cc, label: optionLabel(cc) })));
  input.setAttribute("list", list.id);
  input.setAttribute("aria-describedby", `${describedBy} ${named.id}`.trim());
  const say = () => {
    const cc = input.value.trim().toUpperCase();
    replace(named, (col.values || []).includes(cc) ? countryName(cc) : "");
  };
  input.addEventListener("input", say);
  say();
  return h("div", { class: "country-field" }, input, " ", named, list);
}

// Draws the form into a new element and returns it. o: {ctx, kind, row (values, for an
// edit), localId (edit), fixed ({column: value} not shown as fields: the person of a
// service), person (the person row a service or an enterprise is of), submitText, cancelHref,
// onSaved(answer, values), save(values) (optional: how to store the row, when not POST or
// PUT /v1/<kind>)}.
export async function rowForm(o) {
  const schema = await o.ctx.schema();
  const cols = schema.kinds[o.kind];
  const key = location.pathname + location.search;
  const draft = takeDraft(key, o.ctx.session.clerk);
  if (draft) o = Object.assign({}, o, { row: Object.assign({}, o.row || {}, draft.values) });
  const byName = Object.fromEntries(cols.map((c) => [c.name, c]));
  const fields = {}; // name -> {group, control, error, input}
  // The fields the clerk has been in, and whether a save was tried: their errors are said as
  // they type (every field's after a save), and again when the form is drawn anew.
  const touched = new Set(draft ? draft.touched : []);
  const summary = h("div", {});
  let seq = 0;
  let timer = null;
  let submitted = draft ? draft.submitted : false;
  // A new row's local_id, made once for this form when the clerk leaves it blank, as the node
  // makes one (today, then 8 random letters of Crockford's base32): a save sent again after
  // its answer was lost finds the row it stored (200, unchanged) instead of storing a second.
  let reserved = null;
  const localIdFor = () => {
    if (!reserved) {
      const b32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
      const rnd = crypto.getRandomValues(new Uint8Array(8));
      reserved = `${o.ctx.session.today}-${Array.from(rnd, (b) => b32[b & 31]).join("")}`;
    }
    return reserved;
  };

  const values = () => {
    const out = Object.assign({}, o.fixed || {});
    for (const [name, f] of Object.entries(fields)) {
      const el = f.group.querySelector(`[name="${name}"]`);
      let v = el.value.trim();
      if (byName[name].type === "int" || byName[name].type === "date") v = asciiDigits(v);
      if (v !== "") out[name] = v;
    }
    return out;
  };

  const show = (errors, all) => {
    const by = {};
    for (const e of errors) (by[e.field] = by[e.field] || []).push(e);
    for (const [name, f] of Object.entries(fields)) {
      const list = (all || touched.has(name)) ? (by[name] || []) : [];
      f.group.classList.toggle("has-error", list.length > 0);
      f.input.setAttribute("aria-invalid", list.length ? "true" : "false");
      replace(f.error, list.length ? [h("span", { class: "visually-hidden" }, t("form.error_prefix")),
                                      list.map(fieldError).join(" ")] : []);
      f.error.hidden = list.length === 0;
    }
    return by;
  };

  const check = async () => {
    const mine = ++seq;
    const path = `/v1/check/${o.kind}${o.localId ? "/" + seg(o.localId) : ""}`;
    const r = await api.post(path, values());
    if (mine !== seq || r.status !== 200) return;
    show(r.body.errors, submitted);
  };
  let closed = null; // the promise of monthsClosed(), once a form
  const warnClosed = async () => {
    const f = fields[DATED[o.kind]];
    if (!f) return;
    const period = periodOf(f.input.value);
    if (period && !closed) closed = monthsClosed();
    const state = period ? (await closed).get(period) : null;
    f.warn.hidden = !state;
    replace(f.warn, state ? t(`form.month_${state}`, { month: periodName(period) }) : []);
  };
  let sayAge = () => {};
  let sayBefore = () => {};
  let beforeTimer = null;
  // A person already registered with the citizenship number typed, or with the name and
  // phone number typed, is said beside the number, with a link (the pages' attacks: the same
  // citizenship number and phone were registered twice, and counted twice upstream; then the
  // same name and phone, without a citizenship number). Not refused: two records may have a
  // reason, and a family shares a phone (so the phone alone says nothing).
  const dupSeq = {};
  const dupTimer = {};
  const sayDuplicate = async (name) => {
    const f = fields[name];
    if (o.kind !== "persons" || !f) return;
    const mine = (dupSeq[name] = (dupSeq[name] || 0) + 1);
    let q = null;
    let same = () => false;
    if (name === "citizenship_no") {
      const typed = f.input.value.trim();
      if (citizenshipKey(typed).length >= 4) {
        q = typed;
        same = (p) => citizenshipKey(p.citizenship_no) === citizenshipKey(typed);
      }
    } else {
      const phone = phoneKey(f.input.value);
      const who = fields.full_name ? nameKey(fields.full_name.input.value) : "";
      if (phone.length >= 7 && who) {
        q = phone;
        same = (p) => phoneKey(p.phone) === phone && nameKey(p.full_name) === who;
      }
    }
    let found = [];
    if (q) {
      // The node compares a number by its digits alone; the exact ones are kept from the
      // persons it gives (up to 50: a review found the person past the first 5).
      const r = await api.get(`/v1/persons?q=${encodeURIComponent(q)}&limit=50`);
      if (mine !== dupSeq[name]) return;
      if (r.status === 200) found = r.body.persons.filter((p) => p.local_id !== o.localId && same(p));
    }
    f.warn.hidden = found.length === 0;
    replace(f.warn, found.length ? [t(`form.duplicate_${name}`), " ",
      found.map((p, i) => [i ? ", " : "", h("a", { href: `/people/${seg(p.local_id)}`, "data-nav": "" },
        p.full_name || p.local_id)])] : []);
  };
  const laterDuplicate = (name) => {
    clearTimeout(dupTimer[name]);
    dupTimer[name] = setTimeout(() => sayDuplicate(name), 300);
  };
  const changed = (name) => () => {
    touched.add(name);
    clearTimeout(timer);
    timer = setTimeout(check, 350);
    if (name === DATED[o.kind]) warnClosed();
    if (name === "birth_year" || name === "registered_on" || name === "category") sayAge();
    // After a pause: "2083-07-1", typed on the way to "2083-07-15", is a date too (a review:
    // a warning came and went while the clerk typed).
    if (name === "date") {
      clearTimeout(beforeTimer);
      beforeTimer = setTimeout(sayBefore, 400);
    }
    if (name === "citizenship_no") laterDuplicate("citizenship_no");
    if (name === "phone" || name === "full_name") laterDuplicate("phone");
  };

  const groups = LAYOUT[o.kind].map(([legend, names]) => {
    const shown = names.filter((n) => byName[n] && !(o.fixed && n in o.fixed));
    if (!shown.length) return null;
    return h("fieldset", {}, h("legend", {}, t(legend)), shown.map((name) => {
      const col = byName[name];
      const id = `f-${name}`;
      const hint = hintFor(col);
      const hintId = hint ? `${id}-hint` : null;
      const errId = `${id}-error`;
      const error = h("p", { class: "error-message", id: errId, hidden: true });
      const warnId = `${id}-warn`;
      // Announced when it appears (a review: screen readers heard neither warning).
      const warn = h("p", { class: "warning-message", id: warnId, hidden: true,
                            "aria-live": "polite" });
      // A new row's own date starts at today, the day most are registered (the clerk's
      // attack: every registration typed it); a paper form of another day changes it.
      let val = o.row ? o.row[name] : "";
      if (!o.localId && !draft && !val && name === DATED[o.kind]) val = o.ctx.session.today;
      const ctl = control(col, id, [hintId, errId, warnId].filter(Boolean).join(" "),
                          val, o.ctx.session, changed(name));
      const input = ctl.tagName === "DIV" ? ctl.querySelector("input") : ctl;
      // A long text's characters left, near its limit, and how many too many past it (the
      // pages' attack: a name stopped at 200 characters without a word, as maxlength does;
      // the node's check says the rest). Counted as the node counts, in characters.
      // Shown at once; told to a screen reader once the typing pauses (a review: a live
      // region spoke at every key), as the GOV.UK character count does.
      const count = col.type === "text" && col.max_len
        ? h("p", { class: "hint char-count", id: `${id}-count`, hidden: true }) : null;
      const told = count ? h("span", { class: "visually-hidden", "aria-live": "polite" }) : null;
      if (count) {
        input.setAttribute("aria-describedby",
          `${input.getAttribute("aria-describedby") || ""} ${id}-count`.trim());
        let tell = null;
        const sayCount = () => {
          const left = col.max_len - [...input.value.trim()].length;
          const n = Math.abs(left);
          count.hidden = left > Math.min(20, col.max_len / 10);
          count.classList.toggle("char-count-over", left < 0);
          const text = count.hidden ? "" : t(`form.chars_${left >= 0 ? "left" : "over"}${n === 1
            ? "_one" : ""}`, { n: num(n) });
          replace(count, text);
          clearTimeout(tell);
          tell = setTimeout(() => replace(told, text), 1000);
        };
        input.addEventListener("input", sayCount);
        sayCount();
      }
      input.addEventListener("blur", () => {
        if (input.value.trim() !== "" || touched.has(name)) changed(name)();
      });
      const group = h("div", { class: "form-group", id: `${id}-group` },
        h("label", { for: id }, label(name),
          col.required ? null : h("span", { class: "optional" }, ` (${t("form.optional")})`)),
        hint ? h("span", { class: "hint", id: hintId }, hint) : null,
        error, ctl, count, told, warn);
      fields[name] = { group, error, input, warn };
      return group;
    }));
  });

  const button = h("button", { type: "submit", class: "button", id: "save" }, o.submitText);
  const back = draft && !draft.quiet ? h("div", { class: "notice", role: "status", id: "draft-back",
                                  "data-autofocus": "", tabindex: "-1" }, t("form.draft_back"))
    : null;
  const form = h("form", { novalidate: true, class: "row-form" },
    back, summary, groups,
    h("div", { class: "button-row" }, button,
      o.cancelHref ? h("a", { href: o.cancelHref, "data-nav": "", class: "button button-secondary" },
                       t("form.cancel")) : null));

  // The last save's refusal ({status, body}) in the summary above the form, each error a link
  // to its field; kept to be said again, in the clerk's language, when the form is redrawn.
  let refusal = null;
  let pending = false; // a save sent, not yet answered
  const sayRefusal = (r, focus) => {
    refusal = { status: r.status, body: r.body };
    let items;
    if (r.status === 422 && r.body && r.body.errors) {
      show(r.body.errors, true);
      // In the order the fields are on the screen, as the clerk goes through them (the
      // clerk's attack: the node's column order put the name's error after the category's).
      const order = Object.keys(fields);
      const at = (x) => (order.includes(x.field) ? order.indexOf(x.field) : order.length);
      items = [...r.body.errors].sort((a, b) => at(a) - at(b)).map((x) => ({
        text: `${label(x.field)}: ${fieldError(x)}`,
        href: fields[x.field] ? `#f-${x.field}` : null,
      }));
    } else if (r.status === 412) {
      items = [{ text: t("form.changed_since") }];
    } else {
      items = [{ text: (r.body && r.body.error) || t("error.save") }];
    }
    replace(summary, errorSummary(items));
    if (focus) summary.firstChild.focus();
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submitted = true;
    clearTimeout(timer);
    seq++;
    button.disabled = true;
    pending = true;
    const body = values();
    if (!o.localId && !o.save && byName.local_id && !body.local_id) body.local_id = localIdFor();
    const r = o.save ? await o.save(body)
      // The version the form was opened at: a row another clerk corrected since is refused
      // (412), not overwritten unseen.
      : o.localId ? await api.put(`/v1/${o.kind}/${seg(o.localId)}`, body,
        o.row && o.row._version ? { "If-Match": `"${o.row._version}"` } : undefined)
      : await api.post(`/v1/${o.kind}`, body);
    pending = false;
    button.disabled = false;
    if (r.status === 200 || r.status === 201) {
      initial = JSON.stringify(values()); // saved: nothing to ask about on leaving
      o.onSaved(r.body, body);
      return;
    }
    sayRefusal(r, true);
  });
  // What the form held when drawn: a field visited and left as it was is no change (a
  // review: the page asked before leaving a correction nobody made). A draft given back is
  // typed work (null).
  let initial = draft ? null : JSON.stringify(values());
  live = { key, clerk: o.ctx.session.clerk, values, form,
           state: () => ({ touched: [...touched], submitted, refusal }),
           unsaved: () => pending || JSON.stringify(values()) !== initial };
  warnClosed();
  // A form drawn again (the other language, or given back after signing in) says again the
  // errors, the summary and the warnings it said (a review: they went until the next save).
  if (draft && draft.refusal) sayRefusal(draft.refusal, false);
  if (draft && (touched.size || submitted)) check();
  if (draft) {
    sayDuplicate("citizenship_no");
    sayDuplicate("phone");
  }
  // The age a birth year gives at registration, beside it (the pages' attack: 1990, a
  // Gregorian year typed on a BS node, made a person of 93 without a word); a year before
  // BS 2000 on a BS node is said to look Gregorian, with its BS years.
  if (o.kind === "persons" && fields.birth_year) {
    const by = fields.birth_year;
    const age = h("span", { class: "date-eq", id: "f-birth_year-age", "aria-live": "polite" });
    by.input.after(" ", age);
    by.input.setAttribute("aria-describedby",
      `${by.input.getAttribute("aria-describedby") || ""} f-birth_year-age`.trim());
    const bs = bsdate.calendar() === "BS";
    sayAge = () => {
      const year = Number(asciiDigits(by.input.value.trim()));
      const reg = fields.registered_on ? fields.registered_on.input.value : "";
      let days = bsdate.parse(reg, bsdate.calendar());
      if (days === null) days = bsdate.today(o.ctx.session);
      const ymd = days === null ? null : bs ? bsdate.daysToBs(days) : bsdate.daysToAd(days);
      if (!Number.isInteger(year) || year < 1000 || !ymd || year > ymd[0]) {
        replace(age, []);
        return;
      }
      // A returning labour migrant younger than 16 is a birth year typed wrong more often than
      // not (the pages' attack registered one aged 0): said, not refused.
      const young = fields.category && fields.category.input.value === "RETURNEE" &&
        ymd[0] - year < 16;
      replace(age, t("form.age", { age: num(ymd[0] - year) }),
        bs && year < 2000 ? [" ", t("form.age_gregorian", { year: digits(year),
          bs1: digits(year + 56), bs2: digits(year + 57) })] : [],
        young ? [" ", t("form.age_young_returnee")] : []);
    };
    sayAge();
  }
  // A service dated before its person's registration, or an enterprise started before its
  // owner's birth year, is said beside the date (the pages' attack took both without a word):
  // a year typed wrong more often than not, but not refused (a business may be inherited,
  // and a service given before the register existed).
  if (o.person && (o.kind === "services" || o.kind === "enterprises") && fields.date) {
    const f = fields.date;
    const note = h("p", { class: "warning-message", id: "f-date-before", hidden: true,
                          "aria-live": "polite" });
    f.warn.after(note);
    f.input.setAttribute("aria-describedby",
      `${f.input.getAttribute("aria-describedby") || ""} f-date-before`.trim());
    const cal = bsdate.calendar();
    const birth = Number(asciiDigits(String(o.person.birth_year || "")));
    const reg = o.person.registered_on ? bsdate.parse(o.person.registered_on, cal) : null;
    sayBefore = () => {
      const days = bsdate.parse(f.input.value.trim(), cal);
      let said = null;
      if (days !== null && o.kind === "enterprises" && Number.isInteger(birth) && birth > 0) {
        const year = (cal === "BS" ? bsdate.daysToBs(days) : bsdate.daysToAd(days))[0];
        if (year < birth) said = t("form.before_owner_birth", { year: digits(birth) });
      }
      if (days !== null && o.kind === "services" && reg !== null && days < reg) {
        said = t("form.before_registration", { date: bsdate.show(o.person.registered_on) });
      }
      note.hidden = said === null;
      replace(note, said === null ? [] : said);
    };
    sayBefore();
  }
  // A summary link moves the focus to its field, as well as scrolling to it.
  summary.addEventListener("click", (e) => {
    const a = e.target.closest("a[href^='#f-']");
    if (!a) return;
    e.preventDefault();
    const el = document.getElementById(a.getAttribute("href").slice(1));
    if (el) el.focus();
  });
  return form;
}

export { newId };
