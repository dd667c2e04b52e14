// Month close: the months of the current fiscal year with their state, and for a month that
// has ended a checklist before closing it (records dated in it, referrals of it still
// without an outcome), then the close. The state comes from the province's review
// (GET /v1/months: approved, returned with the reviewer's comment, changed since approval)
// where the node has it, else from what the node knows itself (closed or not).
import { h, replace } from "/common/dom.js";
import { t, digits, num } from "/common/i18n.js";
import { api } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { heading, notice, table, loadFailed, errorSummary, dialog } from "./common.js";

// "BS2083-04" or "2083-04" -> "2083-04".
export function monthKey(period) {
  return String(period).replace(/^BS/, "");
}

// The fiscal year's months, each with its review when GET /v1/months answers (it does on a
// node with the monthly review; another answers 404 and the node's own state stands).
export async function loadMonths(year) {
  const [fy, rev] = await Promise.all([
    api.get(`/v1/fiscal-year${year ? `?year=${year}` : ""}`), api.get("/v1/months")]);
  if (fy.status !== 200) return { error: fy };
  const reviews = {};
  if (rev.status === 200 && rev.body && Array.isArray(rev.body.months)) {
    for (const m of rev.body.months) reviews[monthKey(m.period)] = m;
  }
  for (const m of fy.body.months) {
    const r = reviews[m.month];
    m.review = r || null;
    m.state = r && r.state ? r.state : m.closed ? "closed" : m.ended ? "due" : m.current ? "current" : "future";
  }
  fy.body.reviewed = rev.status === 200;
  // Every month the province reviewed, of any fiscal year (returned ones first): a month
  // returned from last year still needs the clerk.
  fy.body.reviews = rev.status === 200 && rev.body && Array.isArray(rev.body.months)
    ? rev.body.months : [];
  return fy.body;
}

// The fiscal year (its first BS year) that month key "2083-04" belongs to.
export function fiscalYearOf(key) {
  const [y, m] = key.split("-").map(Number);
  return m >= 4 ? y : y - 1;
}

// The day of a review's decision (an ISO time) as the clerk reads dates.
function decidedOn(r) {
  const ms = r && r.decided_at ? Date.parse(r.decided_at) : NaN;
  return Number.isNaN(ms) ? "" : bsdate.long(bsdate.nepalDay(ms));
}

// A month closed again after the reviewer returned it: until the hub has the new close its
// state there is still "returned"; after, the return stays as its last decision.
export function closedAgain(r) {
  return r.state === "closed" && (r.hub_state === "returned" || Boolean(r.decided_by));
}

// What the province said of a month, in words: who returned or approved it and when, and the
// reviewer's comment; null when there is nothing to say. r: a row of GET /v1/months.
export function reviewNote(r) {
  if (!r || !r.state) return null;
  const who = { by: r.decided_by || "", when: decidedOn(r) };
  const comment = r.comment ? h("q", { class: "review-comment" }, r.comment) : null;
  if (r.state === "returned") {
    return h("p", { class: "review-note" }, t("months.returned_by", who), " ", comment);
  }
  if (closedAgain(r)) {
    return h("p", { class: "review-note muted" }, t("months.closed_again"), " ", comment);
  }
  if (r.state === "approved") return h("p", { class: "review-note muted" }, t("months.approved_by", who));
  if (r.state === "changed") return h("p", { class: "review-note muted" }, t("months.changed_note", who));
  return null;
}

export function monthLabel(fy, key) {
  const [y, m] = key.split("-").map(Number);
  return fy.calendar === "BS" ? digits(`${bsdate.monthName(m)} ${y}`)
    : new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric", timeZone: "UTC" })
      .format(new Date(Date.UTC(y, m - 1, 1)));
}

function stateTag(m) {
  const cls = { closed: "tag-closed", approved: "tag-approved", returned: "tag-returned",
                changed: "tag-open", due: "tag-open", open: "tag-open", current: "tag-future",
                future: "tag-future" }[m.state] || "";
  return h("span", { class: `tag ${cls}` }, t(`months.state.${m.state}`));
}

function closeDialog(ctx, fy, m, done) {
  const status = h("div", {});
  const confirm = h("input", { type: "checkbox", id: "checked", name: "checked" });
  const go = h("button", { type: "submit", class: "button", id: "close-submit" },
    t("months.close_submit", { month: monthLabel(fy, m.month) }));
  const cancel = h("button", { type: "button", class: "button button-secondary" }, t("form.cancel"));
  const form = h("form", { novalidate: true },
    status,
    h("p", {}, t("months.checklist_intro", { first: bsdate.show(m.first), last: bsdate.show(m.last) })),
    h("ul", { class: "checklist" },
      h("li", {}, t("months.check_records", { n: num(m.records) })),
      h("li", {}, m.referrals_pending
        ? [t("months.check_pending", { n: num(m.referrals_pending) }), " ",
           h("a", { href: `/followups?from=${encodeURIComponent(m.first)}&to=${encodeURIComponent(m.last)}`,
                    "data-nav": "" }, t("months.see_followups"))]
        : t("months.check_no_pending")),
      m.review && m.review.state === "returned"
        ? h("li", {}, t("months.check_returned", { comment: m.review.comment || "" })) : null),
    h("div", { class: "form-group" }, h("div", { class: "checkbox" }, confirm,
      h("label", { for: "checked" }, t("months.confirm")))),
    h("div", { class: "button-row" }, go, cancel));
  const d = dialog(t("months.close_title", { month: monthLabel(fy, m.month) }), form);
  cancel.addEventListener("click", () => d.close("cancel"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!confirm.checked) {
      replace(status, errorSummary([{ text: t("months.confirm_needed"), href: "#checked" }]));
      status.firstChild.focus();
      return;
    }
    go.disabled = true;
    const r = await api.post(`/v1/closes/${m.month}`, {});
    go.disabled = false;
    if (r.status === 200) {
      d.close("ok");
      done(r.body);
      return;
    }
    replace(status, errorSummary([{ text: r.body && r.body.code === "month_not_ended"
      ? t("months.not_ended", { last: bsdate.show(r.body.arg) })
      : (r.body && r.body.error) || t("error.save") }]));
    status.firstChild.focus();
  });
  confirm.focus();
}

export async function render(ctx, msg) {
  const year = ctx.params.get("year");
  const fy = await loadMonths(year);
  if (fy.error) {
    replace(ctx.main, heading(ctx, t("months.title")), loadFailed(ctx, fy.error));
    return;
  }
  // The months in their order (a returned month listed first read as the year's first, by
  // the pages' attack); the returned ones, the clerk's work to do, are named above the table
  // and marked in it.
  const returned = fy.months.filter((m) => m.state === "returned");
  const rows = fy.months.map((m) => {
    const closable = m.ended && (m.state === "due" || m.state === "returned" || m.state === "open");
    const note = reviewNote(m.review);
    return h("tr", { "data-month": m.month, "data-state": m.state,
                     class: m.state === "returned" ? "row-returned" : null },
      h("th", { scope: "row" }, monthLabel(fy, m.month)),
      h("td", {}, stateTag(m), note),
      h("td", { class: "num" }, num(m.records)),
      h("td", { class: "num" }, num(m.referrals_pending)),
      h("td", {}, closable ? h("button", { type: "button", class: "button", "data-close": m.month,
        onclick: () => closeDialog(ctx, fy, m, () => {
          ctx.notify(t("months.closed_done", { month: monthLabel(fy, m.month) }));
          ctx.navigate(location.pathname + location.search, true);
        }) }, t(m.state === "returned" ? "months.close_again" : "months.close"), h("span", { class: "visually-hidden" }, ` ${monthLabel(fy, m.month)}`))
        : m.state === "closed" && m.closed_by ? h("span", { class: "muted" },
          // "cli" is the command line's name when it knows no user: not a clerk's.
          m.closed_by === "cli" ? t("months.closed_by_cli") : t("months.closed_by", { by: m.closed_by }))
          : null));
  });
  const prev = fy.year - 1, next = fy.year + 1;
  replace(ctx.main,
    heading(ctx, t("months.title")),
    notice(msg),
    h("p", { class: "lead" }, t("months.intro", { fy: digits(fy.fiscal_year) })),
    fy.reviewed ? null : h("p", { class: "muted" }, t("months.no_review")),
    returned.length ? h("div", { class: "warning", id: "months-returned" },
      t("months.returned_lead", { months: returned.map((m) => monthLabel(fy, m.month))
        .join(", ") })) : null,
    table(t("months.caption", { fy: digits(fy.fiscal_year) }),
      [t("months.month"), t("months.state"), { text: t("months.records"), num: true },
       { text: t("months.pending"), num: true }, t("person.actions")], rows, { stack: true }),
    h("p", {},
      h("a", { href: `/months?year=${prev}`, "data-nav": "" },
        t("months.fy_link", { fy: digits(`${prev}/${String(prev + 1).slice(2)}`) })), " · ",
      h("a", { href: `/months?year=${next}`, "data-nav": "" },
        t("months.fy_link", { fy: digits(`${next}/${String(next + 1).slice(2)}`) }))));
}
