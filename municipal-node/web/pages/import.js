// Import: a CSV file of any kind uploaded to the node, imported by the same code as
// `municipal-node import` while a progress bar follows it, then the refused rows by line,
// field and reason (downloadable as CSV); the good rows are kept.
import { h, replace } from "/common/dom.js";
import { t, digits, num } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import { downloadCsv } from "/common/csv.js";
import { heading, notice, table, errorSummary, fieldError, label, value as enumLabel }
  from "./common.js";

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
    h("dl", { class: "summary-list" }, facts.map(([k, v]) => [h("dt", {}, t(k)),
                                                              h("dd", {}, num(v))])),
    // What the node said of the whole file is in English (its words for every client): said
    // first in the page's language.
    job.messages.length ? h("div", { class: "danger" }, h("p", {}, t("import.file_problem")),
      h("ul", { lang: "en" }, job.messages.map((m) => h("li", {}, m)))) : null,
    job.errors.length ? [
      h("h3", {}, t(job.refused === 1 ? "import.bad_rows_one" : "import.bad_rows", { n: digits(job.refused) })),
      h("p", {}, h("a", { href: `/v1/imports/${seg(job.id)}/errors.csv`, download: "",
                          class: "button button-secondary", id: "download-errors" },
        t("import.download"))),
      table(t("import.bad_rows_caption"), [{ text: t("import.line"), num: true },
        t("import.field"), t("import.reason")], byLine),
      job.errors_left_out ? h("p", { class: "muted" },
        t("import.left_out", { n: num(job.errors_left_out) })) : null,
    ] : null,
  ];
}

export async function render(ctx, msg) {
  const out = h("div", { id: "import-out" });
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
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) {
      replace(out, errorSummary([{ text: t("import.no_file"), href: "#file" }]));
      out.firstChild.focus();
      return;
    }
    button.disabled = true;
    const bar = h("progress", { id: "progress", max: "100", value: "0",
                                "aria-labelledby": "progress-label" });
    const barLabel = h("p", { id: "progress-label" }, t("import.uploading", { name: f.name }));
    replace(out, h("div", { role: "status", "aria-live": "polite" }, barLabel), bar);
    const r = await api.post(`/v1/imports/${kind.value}?name=${encodeURIComponent(f.name)}`, f,
                             { "Content-Type": "text/csv" });
    if (r.status !== 202) {
      button.disabled = false;
      replace(out, errorSummary([{ text: r.status === 409 ? t("import.busy")
        : r.status === 413 ? t("import.too_big") : (r.body && r.body.error) || t("error.save") }]));
      out.firstChild.focus();
      return;
    }
    const id = r.body.id;
    for (;;) {
      const s = await api.get(`/v1/imports/${seg(id)}`);
      if (s.status !== 200) {
        replace(out, errorSummary([{ text: t("error.load") }]));
        break;
      }
      const job = s.body;
      const pct = job.total_bytes ? Math.floor((100 * job.done_bytes) / job.total_bytes) : 100;
      bar.value = pct;
      barLabel.textContent = t("import.progress", { name: job.name, pct: digits(pct),
                                                    rows: num(job.rows) });
      if (job.state !== "running") {
        bar.value = job.state === "done" ? 100 : bar.value;
        // A file not imported to the end says so, not "importing: 0%" above it.
        const cols = (await ctx.schema()).kinds[kind.value];
        replace(out, job.state === "done" ? [h("div", { role: "status" }, t("import.progress", {
          name: job.name, pct: digits(100), rows: num(job.rows) })), bar] : null,
        results(job, cols));
        out.querySelector("#import-result").focus();
        break;
      }
      await new Promise((ok) => setTimeout(ok, 250));
    }
    button.disabled = false;
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
    h("p", {}, t("import.template_intro"), " ", template), form, out);
}
