// Import: a CSV file of any kind uploaded to the node, imported by the same code as
// `municipal-node import` while a progress bar follows it, then the refused rows by line,
// field and reason (downloadable as CSV); the good rows are kept. The imports the node
// remembers are listed below the form, each one's results at /import/<id> (the pages' attack:
// they were gone once the clerk left the page), and an import that changed months already
// closed says which (it said nothing, where the form warns before one such save).
import { h, replace } from "/common/dom.js";
import { t, digits, num, current } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { downloadCsv } from "/common/csv.js";
import { heading, notice, table, errorSummary, fieldError, label, periodName,
         value as enumLabel } from "./common.js";

const KINDS = ["persons", "services", "enterprises", "availability"];

// A refused value of a list (code "enum"), with the values the file may hold, each with its
// words (the pages' attack: a Nepali page said "choose one of the options given", and the
// file must hold the English codes, listed nowhere).
function problem(e, cols) {
  const col = e.code === "enum" && cols ? cols.find((c) => c.name === e.field) : null;
  if (!col || !col.values) return fieldError(e);
  return [fieldError(e), ": ", t("import.values", { list: col.values.map((v) =>
    `${v} (${enumLabel(col.name, v)})`).join(", ") })];
}

// The refused rows as a spreadsheet in the page's language (the clerk's attack: the node's
// file is in English, for programs): each row's line and column in the file, the field's
// name on the form and the problem as the page says it; then what the node said of the whole
// file, in its own words. Saved in the page, from the results it shows.
function saveProblems(job, cols) {
  const text = (x) => (Array.isArray(x) ? x.join("") : x);
  const rows = job.errors.map((e) => [e.line, e.field || "", e.field ? label(e.field) : t("err.row"),
                                      text(problem(e, cols))]);
  for (const m of job.messages) rows.push(["", "", "", m]);
  if (job.errors_left_out) rows.push(["", "", "", t("import.left_out", { n: num(job.errors_left_out) })]);
  const base = String(job.name || "import").replace(/\.csv$/i, "");
  downloadCsv(`${base}-${t("import.problems_file")}-${current()}.csv`,
              [t("import.line"), t("import.column"), t("import.field"), t("import.reason")], rows);
}

// The months of the rows stored that were closed, approved, or approved and changed since
// when the import ended (their state then, kept by the node: not what came after).
const CLOSED = ["closed", "approved", "changed"];
function closedMonths(job) {
  const hit = (job.months || []).filter((m) => CLOSED.includes(m.state));
  if (!hit.length) return null;
  return h("div", { class: "warning", id: "import-closed" },
    h("p", {}, t("import.closed_intro")),
    h("ul", {}, hit.map((m) => h("li", {}, t(`import.closed_${m.state}`, {
      month: periodName(m.period),
      rows: t(m.rows === 1 ? "import.n_rows_one" : "import.n_rows", { n: num(m.rows) }) })))),
    h("p", {}, h("a", { href: "/months", "data-nav": "" }, t("import.closed_see"))));
}

// The persons the import stored that look registered already, each with the person it looks
// like (the clerk attack's: a spreadsheet of people already registered was taken without a
// word, and counted twice upstream). Said, not refused: the clerk opens both and decides.
function duplicates(job) {
  const list = job.duplicates || [];
  if (!list.length) return null;
  const link = (id) => h("a", { href: `/people/${seg(id)}`, "data-nav": "" }, id);
  return h("div", { class: "warning", id: "import-duplicates" },
    h("p", {}, t(list.length === 1 ? "import.duplicates_intro_one" : "import.duplicates_intro",
                 { n: num(list.length) })),
    h("ul", {}, list.map((d) => h("li", { "data-local-id": d.local_id }, t("import.duplicate_like", {
      same: t(`import.duplicate_same_${d.same}`) }).split(/(\{person\}|\{like\})/).map((part) =>
      (part === "{person}" ? link(d.local_id) : part === "{like}" ? link(d.like) : part))))),
    job.duplicates_more ? h("p", {}, t("import.duplicates_more")) : null);
}

// When an import started, as the clerk reads it: Nepal's time and day.
function started(ms) {
  return `${digits(bsdate.nepalTime(ms))}, ${bsdate.long(bsdate.nepalDay(ms))}`;
}

function results(job, cols) {
  const facts = [["import.rows", job.rows], ["import.inserted", job.inserted],
                 ["import.updated", job.updated], ["import.unchanged", job.unchanged],
                 ["import.refused", job.refused]];
  const byLine = job.errors.map((e) => h("tr", {},
    h("td", { class: "num" }, num(e.line)), h("td", {}, e.field ? label(e.field) : t("err.row")),
    h("td", {}, problem(e, cols))));
  return [
    h("h2", { id: "import-result", tabindex: "-1" }, job.state === "done"
      ? t("import.done", { name: job.name }) : t("import.failed", { name: job.name })),
    h("p", { class: "muted" }, t(job.state === "done" ? "import.by" : "import.started_by", {
      clerk: job.clerk, when: started(job.started), kind: t(`kind.${job.kind}`) })),
    h("dl", { class: "summary-list" }, facts.map(([k, v]) => [h("dt", {}, t(k)),
                                                              h("dd", {}, num(v))])),
    closedMonths(job),
    duplicates(job),
    // What the node said of the whole file is in English (its words for every client): said
    // first in the page's language.
    job.messages.length ? h("div", { class: "danger" }, h("p", {}, t("import.file_problem")),
      h("ul", { lang: "en" }, job.messages.map((m) => h("li", {}, m)))) : null,
    job.errors.length ? [
      h("h3", {}, t(job.refused === 1 ? "import.bad_rows_one" : "import.bad_rows", { n: digits(job.refused) })),
      h("p", { class: "button-row" },
        h("button", { type: "button", class: "button button-secondary", id: "download-errors",
                      onclick: () => saveProblems(job, cols) }, t("import.download")),
        h("a", { href: `/v1/imports/${seg(job.id)}/errors.csv`, download: "",
                 id: "download-errors-api" }, t("import.download_api"))),
      table(t("import.bad_rows_caption"), [{ text: t("import.line"), num: true },
        t("import.field"), t("import.reason")], byLine),
      job.errors_left_out ? h("p", { class: "muted" },
        t("import.left_out", { n: num(job.errors_left_out) })) : null,
    ] : null,
  ];
}

// The imports the node remembers, newest first, each linked to its results.
function recent(list) {
  if (!list.length) return null;
  return [h("h2", { id: "recent" }, t("import.recent")),
    h("p", { class: "muted" }, t("import.recent_kept")),
    table(t("import.recent"), [t("import.col_file"), t("import.col_kind"),
      t("import.col_by"), t("import.col_started"), t("import.col_state"),
      { text: t("import.rows"), num: true }, { text: t("import.refused"), num: true }],
    list.map((j) => h("tr", {},
      h("td", {}, h("a", { href: `/import/${seg(j.id)}`, "data-nav": "" }, j.name)),
      h("td", {}, t(`kind.${j.kind}`)), h("td", {}, j.clerk), h("td", {}, started(j.started)),
      h("td", {}, t(`import.state.${j.state}`)), h("td", { class: "num" }, num(j.rows)),
      h("td", { class: "num" }, num(j.refused)))), { stack: true, hideCaption: true })];
}

export async function render(ctx, msg) {
  const out = h("div", { id: "import-out" });
  const recentBox = h("div", { id: "import-recent" });
  const kind = h("select", { id: "kind", name: "kind", "aria-describedby": "kind-hint" },
    KINDS.map((k) => h("option", { value: k }, t(`kind.${k}`))));
  const file = h("input", { id: "file", name: "file", type: "file", accept: ".csv,text/csv",
                            "aria-describedby": "file-hint" });
  const button = h("button", { type: "submit", class: "button", id: "upload" }, t("import.upload"));
  const form = h("form", { novalidate: true },
    h("div", { class: "form-group" }, h("label", { for: "kind" }, t("import.kind")),
      h("span", { class: "hint", id: "kind-hint" }, t("import.kind_hint")), kind),
    h("div", { class: "form-group" }, h("label", { for: "file" }, t("import.file")),
      h("span", { class: "hint", id: "file-hint" }, t("import.file_hint")), file),
    button);

  const showRecent = async () => {
    const r = await api.get("/v1/imports");
    replace(recentBox, r.status === 200 ? recent(r.body.imports) : null);
    return r.status === 200 ? r.body.imports : [];
  };
  // The results of an import that has ended (focus: the heading takes the focus).
  const showResults = async (job, bar, focus) => {
    const cols = (await ctx.schema()).kinds[job.kind];
    if (!out.isConnected) return;
    // A file not imported to the end says so, not "importing: 0%" above it.
    replace(out, job.state === "done" && bar ? [h("div", { role: "status" },
      t(job.rows === 1 ? "import.progress_one" : "import.progress", {
        name: job.name, pct: digits(100), rows: num(job.rows) })), bar] : null,
    results(job, cols));
    if (focus) out.querySelector("#import-result").focus();
  };
  // Follows a running import to its end, then shows its results and keeps them at its own
  // address (a reload, or the clerk coming back, finds them). It stops when the page is left
  // (a review: it went on polling, and took the address of the page shown after it).
  const follow = async (id, name) => {
    button.disabled = true;
    const bar = h("progress", { id: "progress", max: "100", value: "0",
                                "aria-labelledby": "progress-label" });
    const barLabel = h("p", { id: "progress-label" }, t("import.uploading", { name }));
    replace(out, h("div", { role: "status", "aria-live": "polite" }, barLabel), bar);
    while (out.isConnected) {
      const s = await api.get(`/v1/imports/${seg(id)}`);
      if (!out.isConnected) return;
      if (s.status !== 200) {
        replace(out, errorSummary([{ text: t("error.load") }]));
        break;
      }
      const job = s.body;
      const pct = job.total_bytes ? Math.floor((100 * job.done_bytes) / job.total_bytes) : 100;
      bar.value = pct;
      barLabel.textContent = t(job.rows === 1 ? "import.progress_one" : "import.progress", {
        name: job.name, pct: digits(pct), rows: num(job.rows) });
      if (job.state !== "running") {
        bar.value = job.state === "done" ? 100 : bar.value;
        history.replaceState({}, "", `/import/${seg(id)}`);
        await showResults(job, bar, true);
        break;
      }
      await new Promise((ok) => setTimeout(ok, 250));
    }
    button.disabled = false;
    if (out.isConnected) showRecent();
  };

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) {
      replace(out, errorSummary([{ text: t("import.no_file"), href: "#file" }]));
      out.firstChild.focus();
      return;
    }
    button.disabled = true;
    replace(out, h("div", { role: "status", "aria-live": "polite" },
      h("p", {}, t("import.uploading", { name: f.name }))));
    const r = await api.post(`/v1/imports/${kind.value}?name=${encodeURIComponent(f.name)}`, f,
                             { "Content-Type": "text/csv" });
    if (r.status !== 202) {
      button.disabled = false;
      replace(out, errorSummary([{ text: r.status === 409 ? t("import.busy")
        : r.status === 413 ? t("import.too_big") : (r.body && r.body.error) || t("error.save") }]));
      out.firstChild.focus();
      return;
    }
    await follow(r.body.id, f.name);
  });
  // An empty file with the kind's columns, to fill in a spreadsheet (the columns were
  // described nowhere a clerk reads).
  const template = h("button", { type: "button", class: "button button-secondary",
    id: "template", onclick: async () => {
      const cols = (await ctx.schema()).kinds[kind.value];
      downloadCsv(`${kind.value}-template.csv`, cols.map((c) => c.name), []);
    } }, t("import.template"));
  replace(ctx.main, heading(ctx, t("import.title")), notice(msg),
    h("p", { class: "lead" }, t("import.intro")),
    h("p", {}, t("import.template_intro"), " ", template), form, out, recentBox);

  const list = await showRecent();
  const id = ctx.path.startsWith("/import/") ? ctx.path.slice("/import/".length) : null;
  const running = list.find((j) => j.state === "running");
  if (id) {
    // One import's results, as the list links them.
    const s = await api.get(`/v1/imports/${seg(id)}`);
    if (s.status !== 200) {
      replace(out, h("div", { class: "warning", role: "alert", id: "import-gone" },
        t("import.gone")));
    } else if (s.body.state === "running") {
      follow(id, s.body.name);
    } else {
      await showResults(s.body, null, false);
    }
  } else if (running) {
    // An import started before (here or by another clerk) is followed again.
    follow(running.id, running.name);
  }
}
