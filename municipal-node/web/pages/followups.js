// Follow-ups: the referrals still waiting for a delivery, the longest waiting first, with a
// one-click "delivered" that records the service (asking the amount for seed funding and
// loans, which are counted in rupees).
import { h, replace } from "/common/dom.js";
import { t, digits, num, asciiDigits } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { heading, notice, table, dialog, loadFailed, value, errorSummary, fieldError } from "./common.js";

const WITH_AMOUNT = ["SEED_FUNDING", "LOAN"];

// Records the delivery of referral ref to person p; amount as typed (or null).
async function deliver(ctx, p, ref, amount) {
  const body = {
    person_local_id: p.local_id, service: ref.service, status: "DELIVERED",
    date: ctx.session.today,
  };
  if (ref.provider) body.provider = ref.provider;
  if (amount !== null) body.amount_npr = asciiDigits(amount).replace(/[,\s]/g, "");
  return api.post("/v1/services", body);
}

function askAmount(ctx, p, ref, done) {
  const err = h("p", { class: "error-message", id: "amount-error", hidden: true });
  const input = h("input", { id: "amount", name: "amount", type: "text", inputmode: "numeric",
                             class: "input-short", autocomplete: "off",
                             "aria-describedby": "amount-hint amount-error" });
  const group = h("div", { class: "form-group" },
    h("label", { for: "amount" }, t("followups.amount")),
    h("span", { class: "hint", id: "amount-hint" }, t("followups.amount_hint")), err, input);
  const ok = h("button", { type: "submit", class: "button", id: "amount-submit" },
    t("followups.record"));
  const cancel = h("button", { type: "button", class: "button button-secondary" }, t("form.cancel"));
  const form = h("form", { novalidate: true }, group, h("div", { class: "button-row" }, ok, cancel));
  const d = dialog(t("followups.amount_title", { service: value("service", ref.service),
                                                 name: p.full_name || p.local_id }), form);
  cancel.addEventListener("click", () => d.close("cancel"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    ok.disabled = true;
    const r = await deliver(ctx, p, ref, input.value.trim());
    ok.disabled = false;
    if (r.status === 201) {
      d.close("ok");
      done(r);
      return;
    }
    const errors = (r.body && r.body.errors) || [];
    const mine = errors.filter((x) => x.field === "amount_npr");
    err.hidden = false;
    replace(err, h("span", { class: "visually-hidden" }, t("form.error_prefix")),
      mine.length ? mine.map(fieldError).join(" ")
                  : errors.map(fieldError).join(" ") || (r.body && r.body.error) || t("error.save"));
    group.classList.add("has-error");
    input.setAttribute("aria-invalid", "true");
    input.focus();
  });
  input.focus();
}

export async function render(ctx, msg) {
  const r = await api.get("/v1/followups");
  const status = h("div", { role: "status", "aria-live": "polite" });
  if (r.status !== 200) {
    replace(ctx.main, heading(ctx, t("followups.title")), loadFailed(ctx, r));
    return;
  }
  const rows = [];
  for (const p of r.body.persons) {
    for (const ref of p.referrals) {
      const done = (res) => {
        render(ctx, t("followups.delivered_done", {
          service: value("service", ref.service), name: p.full_name || p.local_id,
          id: res.body.local_id })).then(() => ctx.main.querySelector("h1").focus());
      };
      const button = h("button", {
        type: "button", class: "button", "data-referral": ref.local_id,
        onclick: async () => {
          if (WITH_AMOUNT.includes(ref.service)) {
            askAmount(ctx, p, ref, done);
            return;
          }
          button.disabled = true;
          const res = await deliver(ctx, p, ref, null);
          if (res.status === 201) {
            done(res);
          } else {
            button.disabled = false;
            replace(status, errorSummary([{ text: (res.body && res.body.errors
              ? res.body.errors.map(fieldError).join(" ") : (res.body && res.body.error)) ||
              t("error.save") }]));
          }
        },
      }, t("followups.delivered"),
        h("span", { class: "visually-hidden" }, ` ${value("service", ref.service)}, ${p.full_name || p.local_id}`));
      rows.push(h("tr", { "data-referral": ref.local_id },
        h("td", {}, h("a", { href: `/people/${seg(p.local_id)}`, "data-nav": "" },
          p.full_name || p.local_id)),
        h("td", {}, p.phone || ""),
        h("td", {}, value("service", ref.service)),
        h("td", {}, bsdate.show(ref.date)),
        h("td", { class: "num" }, num(ref.days_waiting)),
        h("td", {}, value("provider", ref.provider)),
        h("td", {}, button)));
    }
  }
  replace(ctx.main,
    heading(ctx, t("followups.title")),
    notice(msg),
    h("p", { class: "lead" }, rows.length
      ? t("followups.intro", { n: digits(rows.length), today: bsdate.show(r.body.today) })
      : t("followups.none", { today: bsdate.show(r.body.today) })),
    status,
    rows.length ? table(t("followups.title"), [t("col.full_name"), t("col.phone"), t("col.service"),
      t("followups.referred_on"), { text: t("followups.days_waiting"), num: true },
      t("col.provider"), t("person.actions")], rows, { hideCaption: true }) : null);
}
