// People: search by name, phone, citizenship number or local id (personal data stays on the
// node); a person's page with their services and enterprises; register, correct and delete
// a person, a service or referral, an enterprise.
import { h, replace } from "/common/dom.js";
import { t, digits, num } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { heading, notice, table, dialog, loadFailed, value, label, countryShown } from "./common.js";
import { rowForm } from "./forms.js";

const personHref = (id) => `/people/${seg(id)}`;

function personLink(p) {
  return h("a", { href: personHref(p.local_id), "data-nav": "" },
    p.full_name || t("people.no_name"));
}

// A phone or citizenship number in a list: its last three digits (the pages' attack: the
// People page listed everyone's in full before any search, on a screen others can see). In
// full on the person's page only.
function masked(text) {
  if (!text) return "";
  const s = String(text);
  const last = s.replace(/\D/g, "").slice(-3);
  let keep = 3;
  const shown = [...s].reverse().map((c) => (/\d/.test(c) && keep-- > 0 ? c : /\d/.test(c) ? "•" : c))
    .reverse().join("");
  return h("span", { class: "masked" }, h("span", { "aria-hidden": "true" }, shown),
    h("span", { class: "visually-hidden" }, t("people.ending_in", { digits: digits(last) })));
}

// What was last searched, kept in this page's memory only: out of the address (and so of
// the browser's history, and of the sign-in address when a session ends) and out of the
// history's state, which browsers save to disk to restore a session (a review). Coming back
// to People shows it again; a reload forgets it.
let lastSearch = "";

async function search(ctx, msg) {
  // An old link's ?q= is searched, then taken out of the address.
  const q = ctx.params.get("q") || lastSearch;
  lastSearch = q;
  if (ctx.params.has("q")) history.replaceState({}, "", "/people");
  const results = h("div", { id: "results", "aria-live": "polite" });
  const input = h("input", { id: "q", name: "q", type: "search", value: q, autocomplete: "off",
                             "aria-describedby": "q-hint" });
  const draw = async (text) => {
    const r = await api.get(`/v1/persons?q=${encodeURIComponent(text)}&limit=50`);
    if (r.status !== 200) {
      replace(results, loadFailed(ctx, r));
      return;
    }
    const rows = r.body.persons.map((p) => h("tr", {},
      h("td", {}, personLink(p)),
      h("td", {}, p.local_id),
      h("td", {}, masked(p.phone)),
      h("td", {}, masked(p.citizenship_no)),
      h("td", {}, bsdate.show(p.registered_on))));
    replace(results,
      h("p", {}, text ? t("people.found", { n: digits(r.body.persons.length) + (r.body.more ? "+" : "") })
                      : t("people.recent")),
      rows.length ? table(t("people.results"), [t("col.full_name"), t("col.local_id"),
        t("col.phone"), t("col.citizenship_no"), t("col.registered_on")], rows,
      { hideCaption: true, stack: true })
        : h("p", {}, t("people.none")));
  };
  let timer = null;
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      lastSearch = input.value;
      draw(input.value.trim());
    }, 250);
  });
  replace(ctx.main,
    heading(ctx, t("people.title")),
    notice(msg),
    h("p", {}, h("a", { href: "/people?new=1", "data-nav": "", class: "button", id: "register" },
      t("people.register"))),
    h("form", { role: "search", onsubmit: (e) => {
      e.preventDefault();
      lastSearch = input.value;
      draw(input.value.trim());
    } },
      h("div", { class: "search-row" },
        h("div", { class: "form-group" },
          h("label", { for: "q" }, t("people.search")),
          h("span", { class: "hint", id: "q-hint" }, t("people.search_hint")),
          input),
        h("button", { type: "submit", class: "button button-secondary" }, t("people.search_button")))),
    results);
  await draw(q.trim());
}

async function registerPerson(ctx) {
  const form = await rowForm({
    ctx, kind: "persons", submitText: t("people.register_submit"), cancelHref: "/people",
    onSaved: (r) => {
      ctx.notify(t("people.registered", { id: r.local_id }));
      ctx.navigate(personHref(r.local_id));
    },
  });
  replace(ctx.main, heading(ctx, t("people.register")),
    h("p", {}, t("people.register_intro")), form);
}

// Asks before deleting; runs f() when confirmed.
function confirmDelete(what, f) {
  const yes = h("button", { type: "button", class: "button button-warning", id: "confirm-delete" },
    t("delete.yes"));
  const no = h("button", { type: "button", class: "button button-secondary", value: "no" },
    t("delete.no"));
  const d = dialog(t("delete.title", { what }),
    [h("p", {}, t("delete.body")), h("div", { class: "button-row" }, yes, no)]);
  no.addEventListener("click", () => d.close("no"));
  yes.addEventListener("click", async () => {
    yes.disabled = true;
    await f();
    d.close("yes");
  });
  no.focus();
}

// Why a person cannot be deleted yet, in a dialog with one way out.
function cannotDelete(name, services, enterprises) {
  const ok = h("button", { type: "button", class: "button", id: "cannot-delete-ok" },
    t("delete.understood"));
  const d = dialog(t("delete.title", { what: name }),
    [h("p", {}, t("delete.has_records", { services: num(services),
                                          enterprises: num(enterprises) })),
     h("div", { class: "button-row" }, ok)]);
  ok.addEventListener("click", () => d.close("ok"));
  ok.focus();
}

function rowsTable(ctx, person, kind, rows, cols) {
  if (!rows.length) return h("p", { class: "muted" }, t(`person.no_${kind}`));
  const param = kind === "services" ? "service" : "enterprise";
  // On a phone each row a block, its links on the screen (the clerk's attack: "Correct" and
  // "Delete" were reachable only by scrolling the table sideways).
  return table(t(`person.${kind}`), [...cols.map((c) => t(`col.${c}`)), t("person.actions")],
    rows.map((r) => h("tr", {},
      cols.map((c) => h("td", { class: c === "amount_npr" || c === "employees" ? "num" : null },
        c === "date" ? bsdate.show(r[c])
          : c === "amount_npr" || c === "employees" ? num(r[c])
            : c === "local_id" ? r[c] : value(c, r[c]))),
      h("td", {},
        h("a", { href: `${personHref(person)}?${param}=${seg(r.local_id)}`, "data-nav": "" },
          t("person.edit"), h("span", { class: "visually-hidden" }, ` ${r.local_id}`)),
        " · ",
        h("button", { type: "button", class: "link-button", onclick: () =>
          // Named as the clerk knows it ("Legal aid, 21 Mangsir 2083"), not by its local id.
          confirmDelete(`${value(kind === "services" ? "service" : "sector",
            kind === "services" ? r.service : r.sector)}, ${bsdate.show(r.date)}`, async () => {
            const res = await api.del(`/v1/${kind}/${seg(r.local_id)}`);
            ctx.notify(res.status === 204 ? t("person.deleted", { id: r.local_id })
              : { text: t("error.save"), warning: true });
            ctx.navigate(personHref(person), true);
          }) }, t("person.delete"), h("span", { class: "visually-hidden" }, ` ${r.local_id}`))))),
    { hideCaption: true, stack: true });
}

async function personPage(ctx, id, msg) {
  const r = await api.get(`/v1/persons/${seg(id)}`);
  if (r.status === 404) {
    replace(ctx.main, heading(ctx, t("person.not_found")),
      h("p", {}, h("a", { href: "/people", "data-nav": "" }, t("person.back"))));
    return;
  }
  if (r.status !== 200) {
    replace(ctx.main, heading(ctx, t("people.title")), loadFailed(ctx, r));
    return;
  }
  const p = r.body.person;
  const edit = ctx.params.get("edit");
  const service = ctx.params.get("service");
  const enterprise = ctx.params.get("enterprise");
  const name = p.full_name || t("people.no_name");
  if (edit !== null) {
    const form = await rowForm({
      ctx, kind: "persons", row: p, localId: id, submitText: t("form.save"),
      cancelHref: personHref(id),
      onSaved: () => { ctx.notify(t("person.saved")); ctx.navigate(personHref(id)); },
    });
    replace(ctx.main, heading(ctx, t("person.edit_title"), name), form);
    return;
  }
  for (const [param, kind, rows, owner] of [["service", "services", r.body.services, "person_local_id"],
                                            ["enterprise", "enterprises", r.body.enterprises, "owner_local_id"]]) {
    const which = param === "service" ? service : enterprise;
    if (which === null) continue;
    const row = which === "new" ? null : rows.find((x) => x.local_id === which);
    const form = await rowForm({
      ctx, kind, row, localId: row ? row.local_id : null, fixed: { [owner]: id }, person: p,
      submitText: row ? t("form.save") : t(`person.add_${param}_submit`),
      cancelHref: personHref(id),
      onSaved: (res) => {
        ctx.notify(t(row ? "person.saved" : `person.added_${param}`, { id: res.local_id }));
        ctx.navigate(personHref(id));
      },
    });
    replace(ctx.main, heading(ctx, t(row ? `person.edit_${param}` : `person.add_${param}`), name),
      h("p", {}, t(`person.${param}_intro`)), form);
    return;
  }
  const yesNo = (v) => (v ? t(v === "true" ? "form.yes" : "form.no") : "");
  // Every field the node keeps, so that the clerk checks them without opening the form.
  const facts = [
    ["local_id", p.local_id], ["phone", p.phone], ["citizenship_no", p.citizenship_no],
    ["ward", p.ward ? digits(p.ward) : ""], ["address", p.address],
    ["sex", value("sex", p.sex)], ["birth_year", p.birth_year ? digits(p.birth_year) : ""],
    ["caste_group", value("caste_group", p.caste_group)], ["disability", yesNo(p.disability)],
    ["category", value("category", p.category)],
    ["registered_on", bsdate.show(p.registered_on)],
    ["destination_country", countryShown(p.destination_country)],
    ["years_abroad", p.years_abroad ? digits(p.years_abroad) : ""],
    ["return_date", bsdate.show(p.return_date)],
    ["remigration_intention", value("remigration_intention", p.remigration_intention)],
    ["family_member_abroad", yesNo(p.family_member_abroad)],
    ["consent", yesNo(p.consent)],
  ];
  replace(ctx.main,
    // The tab's title says "Person", not the name (kept in the browser's history otherwise).
    heading(ctx, name, t("person.caption"), t("person.caption")),
    notice(msg),
    h("dl", { class: "summary-list" }, facts.map(([k, v]) => [
      h("dt", {}, label(k)), h("dd", {}, v || h("span", { class: "muted" }, t("form.not_known")))])),
    h("p", {},
      h("a", { href: `${personHref(id)}?edit=1`, "data-nav": "", class: "button button-secondary",
               id: "edit-person" }, t("person.edit_person")),
      h("button", { type: "button", class: "button button-warning", id: "delete-person", onclick: () =>
        // A person with services or enterprises is not deleted: said before, not after a
        // dialog that promised it (the pages' attack).
        (r.body.services.length || r.body.enterprises.length) ?
          cannotDelete(name, r.body.services.length, r.body.enterprises.length) :
        confirmDelete(name, async () => {
          const res = await api.del(`/v1/persons/${seg(id)}`);
          if (res.status === 409) {
            // The person's services and enterprises are listed below: they go first.
            ctx.notify({ text: t("person.has_records", { id }), warning: true });
            ctx.navigate(personHref(id), true);
            return;
          }
          ctx.notify(res.status === 204 ? t("person.deleted", { id })
            : { text: t("error.save"), warning: true });
          ctx.navigate("/people", true);
        }) }, t("person.delete_person"))),
    h("h2", {}, t("person.services")),
    h("p", {}, h("a", { href: `${personHref(id)}?service=new`, "data-nav": "", class: "button",
                        id: "add-service" }, t("person.add_service"))),
    rowsTable(ctx, id, "services", r.body.services,
      ["local_id", "service", "status", "date", "provider", "amount_npr"]),
    h("h2", {}, t("person.enterprises")),
    h("p", {}, h("a", { href: `${personHref(id)}?enterprise=new`, "data-nav": "", class: "button",
                        id: "add-enterprise" }, t("person.add_enterprise"))),
    rowsTable(ctx, id, "enterprises", r.body.enterprises,
      ["local_id", "action", "sector", "date", "employees", "status"]));
}

export async function render(ctx, msg) {
  const rest = ctx.path.slice("/people".length);
  if (rest.startsWith("/") && rest.length > 1) {
    await personPage(ctx, decodeURIComponent(rest.slice(1)), msg);
  } else if (ctx.params.get("new") !== null) {
    await registerPerson(ctx);
  } else {
    await search(ctx, msg);
  }
}
