// Availability: which services each provider offers, as of when, and a form to change it
// (PUT /v1/availability/<service>/<provider>).
import { h, replace } from "/common/dom.js";
import { t } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { heading, notice, table, loadFailed, value } from "./common.js";
import { rowForm } from "./forms.js";

export async function render(ctx, msg) {
  const r = await api.get("/v1/availability");
  if (r.status !== 200) {
    replace(ctx.main, heading(ctx, t("availability.title")), loadFailed(ctx, r));
    return;
  }
  const byProvider = {};
  for (const a of r.body.availability) (byProvider[a.provider] = byProvider[a.provider] || []).push(a);
  const providers = Object.keys(byProvider).sort();
  // Availability is set by its (service, provider) pair: a save is a PUT to that pair.
  const form = await rowForm({
    ctx, kind: "availability", row: { as_of: ctx.session.today }, submitText: t("availability.save"),
    save: (body) => api.put(`/v1/availability/${seg(body.service || "-")}/${seg(body.provider || "-")}`,
      { available: body.available, as_of: body.as_of }),
    onSaved: () => {
      ctx.notify(t("availability.saved"));
      ctx.navigate("/availability", true);
    },
  });
  replace(ctx.main,
    heading(ctx, t("availability.title")),
    notice(msg),
    h("p", { class: "lead" }, t("availability.intro")),
    providers.length ? providers.map((p) => [
      h("h2", {}, value("provider", p)),
      table(value("provider", p), [t("col.service"), t("col.available"), t("col.as_of")],
        byProvider[p].map((a) => h("tr", {},
          h("td", {}, value("service", a.service)),
          h("td", {}, h("span", { class: `tag ${a.available === "true" ? "tag-closed" : "tag-returned"}` },
            t(a.available === "true" ? "availability.offered" : "availability.not_offered"))),
          h("td", {}, bsdate.show(a.as_of)))), { hideCaption: true })])
      : h("p", {}, t("availability.none")),
    h("h2", {}, t("availability.change")),
    form);
}
