// Follow-ups: the referrals still waiting for a delivery, the longest waiting first, with a
// "delivered" that records the service once its date (today unless said otherwise) and, for
// seed funding and loans, which are counted in rupees, its amount are confirmed.
import { h, replace } from "/common/dom.js";
import { t, digits, num, asciiDigits } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { heading, notice, table, dialog, loadFailed, value, fieldError } from "./common.js";

const WITH_AMOUNT = ["SEED_FUNDING", "LOAN"];

// Records the delivery of referral ref to person p on date (as typed); amount as typed (or
// null).
async function deliver(ctx, p, ref, date, amount) {
  const body = {
    person_local_id: p.local_id, service: ref.service, status: "DELIVERED",
    // As typed: an emptied field is refused as required (a review: it became today).
    date: asciiDigits(date.trim()),
  };
  // The referral's provider and programme: a delivery without them dropped from the counts by
  // programme (the pages' attack).
  if (ref.provider) body.provider = ref.provider;
  if (ref.programme) body.programme = ref.programme;
  if (amount !== null) body.amount_npr = asciiDigits(amount).replace(/[,\s]/g, "");
  return api.post("/v1/services", body);
}

// Asks when the referral was delivered (today unless said otherwise), and its amount for
// seed funding and loans, before anything is recorded. One click recorded a delivery dated
// today (the pages' attack): a misclick in a column of identical buttons made a false record,
// and a referral served long ago was counted in this month.
function askDelivery(ctx, p, ref, done) {
  const amounted = WITH_AMOUNT.includes(ref.service);
  const dateErr = h("p", { class: "error-message", id: "delivered-on-error", hidden: true });
  const date = bsdate.dateField({ id: "delivered-on", name: "date", value: ctx.session.today,
                                  describedBy: "delivered-on-hint delivered-on-error",
                                  today: bsdate.today(ctx.session) });
  const dateGroup = h("div", { class: "form-group" },
    h("label", { for: "delivered-on" }, t("followups.delivered_on")),
    h("span", { class: "hint", id: "delivered-on-hint" }, t("followups.delivered_on_hint")),
    dateErr, date.root);
  const err = h("p", { class: "error-message", id: "amount-error", hidden: true });
  const input = amounted ? h("input", { id: "amount", name: "amount", type: "text",
    inputmode: "numeric", class: "input-short", autocomplete: "off",
    "aria-describedby": "amount-hint amount-error" }) : null;
  const group = amounted ? h("div", { class: "form-group" },
    h("label", { for: "amount" }, t("followups.amount")),
    h("span", { class: "hint", id: "amount-hint" }, t("followups.amount_hint")), err, input)
    : null;
  const other = h("div", { role: "alert" });
  const ok = h("button", { type: "submit", class: "button", id: "delivery-submit" },
    t("followups.record"));
  const cancel = h("button", { type: "button", class: "button button-secondary",
                               id: "delivery-cancel" }, t("form.cancel"));
  const form = h("form", { novalidate: true }, dateGroup, group, other,
    h("div", { class: "button-row" }, ok, cancel));
  const d = dialog(t("followups.amount_title", { service: value("service", ref.service),
                                                 name: p.full_name || p.local_id }), form);
  cancel.addEventListener("click", () => d.close("cancel"));
  const fieldErrors = (box, grp, el, list) => {
    box.hidden = list.length === 0;
    replace(box, list.length ? [h("span", { class: "visually-hidden" }, t("form.error_prefix")),
                                list.map(fieldError).join(" ")] : []);
    grp.classList.toggle("has-error", list.length > 0);
    el.setAttribute("aria-invalid", list.length ? "true" : "false");
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    // A delivery closes the referrals made on or before its day: one dated before this one
    // was recorded and the referral stayed waiting (the pages' attack).
    const on = bsdate.parse(asciiDigits(date.input.value.trim()), bsdate.calendar());
    const made = bsdate.parse(ref.date, bsdate.calendar());
    if (on !== null && made !== null && on < made) {
      fieldErrors(dateErr, dateGroup, date.input, [{ field: "date", code: "before_referral",
        reason: t("followups.before_referral", { date: bsdate.show(ref.date) }) }]);
      date.input.focus();
      return;
    }
    ok.disabled = true;
    const r = await deliver(ctx, p, ref, date.input.value, amounted ? input.value.trim() : null);
    ok.disabled = false;
    if (r.status === 201) {
      d.close("ok");
      done(r, asciiDigits(date.input.value.trim()));
      return;
    }
    const errors = (r.body && r.body.errors) || [];
    const onDate = errors.filter((x) => x.field === "date");
    const onAmount = errors.filter((x) => x.field === "amount_npr");
    const rest = errors.filter((x) => x.field !== "date" && x.field !== "amount_npr");
    fieldErrors(dateErr, dateGroup, date.input, onDate);
    if (amounted) fieldErrors(err, group, input, onAmount);
    replace(other, rest.length || !errors.length ? h("p", { class: "error-message" },
      rest.map(fieldError).join(" ") || (r.body && r.body.error) || t("error.save")) : []);
    (onDate.length ? date.input : amounted && onAmount.length ? input : ok).focus();
  });
  // Not on the button: an Enter pressed by mistake recorded a delivery dated today.
  (amounted ? input : date.input).focus();
}

export async function render(ctx, msg) {
  const r = await api.get("/v1/followups");
  if (r.status !== 200) {
    replace(ctx.main, heading(ctx, t("followups.title")), loadFailed(ctx, r));
    return;
  }
  // ?from=&to= (the close-month dialog's link: that month's pending referrals, which it counts;
  // the link listed every referral, the pages' attack found): the referrals dated in between.
  const q = new URLSearchParams(location.search);
  const from = q.get("from"), to = q.get("to");
  const ranged = !!(from && to);
  let all = 0;
  const rows = []; // [days_waiting, the row], the longest waiting first, as the intro says

  for (const p of r.body.persons) {
    for (const ref of p.referrals) {
      all++;
      if (ranged && !(ref.date >= from && ref.date <= to)) continue;
      const done = (res, on) => {
        render(ctx, t("followups.delivered_done", {
          service: value("service", ref.service), name: p.full_name || p.local_id,
          date: bsdate.show(on), id: res.body.local_id }))
          .then(() => ctx.main.querySelector("h1").focus());
      };
      const button = h("button", {
        type: "button", class: "button", "data-referral": ref.local_id,
        onclick: () => askDelivery(ctx, p, ref, done),
      }, t("followups.delivered"),
        h("span", { class: "visually-hidden" }, ` ${value("service", ref.service)}, ${p.full_name || p.local_id}`));
      rows.push([ref.days_waiting, h("tr", { "data-referral": ref.local_id },
        h("td", {}, h("a", { href: `/people/${seg(p.local_id)}`, "data-nav": "" },
          p.full_name || p.local_id)),
        h("td", {}, h("span", { class: "nowrap" }, p.phone || "")),
        h("td", {}, value("service", ref.service)),
        h("td", {}, bsdate.show(ref.date)),
        h("td", { class: "num" }, num(ref.days_waiting)),
        h("td", {}, value("provider", ref.provider)),
        h("td", {}, button))]);
    }
  }
  // Stable: a person's referrals of the same age stay together, in the node's order.
  rows.sort((a, b) => b[0] - a[0]);
  const trs = rows.map((x) => x[1]);
  replace(ctx.main,
    heading(ctx, t("followups.title")),
    notice(msg),
    ranged ? h("p", { class: "notice", id: "followups-range" },
      t("followups.range", { from: bsdate.show(from), to: bsdate.show(to), n: digits(rows.length),
                             all: digits(all) }), " ",
      h("a", { href: "/followups", "data-nav": "" }, t("followups.show_all"))) : null,
    h("p", { class: "lead" }, rows.length
      ? t("followups.intro", { n: digits(rows.length), today: bsdate.show(r.body.today) })
      : t("followups.none", { today: bsdate.show(r.body.today) })),
    rows.length ? table(t("followups.title"), [t("col.full_name"), t("col.phone"), t("col.service"),
      t("followups.referred_on"), { text: t("followups.days_waiting"), num: true },
      t("col.provider"), t("person.actions")], trs, { hideCaption: true, stack: true }) : null);
}
