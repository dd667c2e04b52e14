// The review queue: the months the province's clerks closed, with the figures to decide on
// (GET /v1/reviews), approved or returned with a comment by a reviewer (POST
// /v1/reviews/<municipality>/<period> with the version seen, so that a month changed since is
// not decided blind).
import { h, replace } from "/common/dom.js";
import { t, num, digits } from "/common/i18n.js";
import { api } from "/common/api.js";
import { addMonths, monthName, placesInLanguage } from "/pages/util.js";

const WAITING = ["closed", "changed"];
const COMMENT_MAX = 1000; /* bytes of UTF-8, as common/review.h keeps */

export async function draw(main, session, nav, notice) {
  const params = new URLSearchParams(location.search);
  const last = addMonths(session.bs_month, -1);
  const period = params.get("period") || last;
  const r = await api.get(`/v1/reviews?period=${encodeURIComponent(period)}`);
  if (r.status !== 200) throw new Error((r.body && r.body.error) || t("error.load"));
  const rows = await placesInLanguage(session, r.body.rows, "municipality");
  const queue = rows.filter((x) => WAITING.includes(x.state));
  const others = rows.filter((x) => !WAITING.includes(x.state) && x.state !== "other_calendar" && x.enrolled);
  const reviewer = session.role === "reviewer";
  // The last twelve months, each with how many wait in it, and the month shown whatever it
  // is (a link to an older one): the selector never names another month than the rows'.
  const months = Array.from({ length: 12 }, (_, k) => addMonths(last, -k));
  if (!months.includes(period)) months.push(period);
  months.sort().reverse();
  const waiting = await Promise.all(months.map(async (p) => {
    if (p === period) return queue.length;
    const o = await api.get(`/v1/reviews?period=${encodeURIComponent(p)}`);
    return o.status === 200 ? o.body.rows.filter((x) => WAITING.includes(x.state)).length : 0;
  }));
  const periodSelect = h("select", { id: "reviews-period", onchange: (e) => {
    history.replaceState({}, "", `/reviews?period=${encodeURIComponent(e.target.value)}`);
    draw(main, session, nav);
  } }, months.map((p, i) => h("option", { value: p, selected: p === period },
    waiting[i] ? t("reviews.month_waiting", { month: monthName(p), n: num(waiting[i]) })
      : monthName(p))));

  function cleanComment(text) {
    return text.replace(/[\u2028\u2029]/g, "\n")
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/g, "");
  }

  function draftKey(row) {
    return `review-comment:${session.province}:${session.who}:${row.municipality}:${period}`;
  }

  function keepDraft(key, text) {
    if (text) sessionStorage.setItem(key, text);
    else sessionStorage.removeItem(key);
  }

  // The comment as sent: the marks the hub refuses in a comment are invisible (a pasted
  // right-to-left override, a control), so the reviewer could not see them, and the refusal
  // said "byte 16" in English (the attack on the officers' pages). They are taken out, line
  // separators made line breaks, before the comment is checked; the box and its draft then
  // hold what is sent.
  function commentOf(row, box) {
    const text = cleanComment(box.value);
    if (text !== box.value) {
      box.value = text;
      keepDraft(draftKey(row), text);
    }
    return text;
  }

  async function decide(row, approve, comment, errorEl) {
    const body = { decision: approve ? "approve" : "return", comment, seen_version: row.version_text };
    // Returning a month approved before takes the approval's clock as seen: a colleague's
    // approval made since is not undone unseen.
    if (row.state === "approved") body.seen_clock = row.clock_text;
    const res = await api.post(`/v1/reviews/${row.municipality}/${encodeURIComponent(period)}`, body);
    if (res.status === 200) {
      sessionStorage.removeItem(draftKey(row));
      await draw(main, session, nav, t(approve ? "reviews.approved_notice" : "reviews.returned_notice",
        { name: row.name, month: monthName(period) }));
      return;
    }
    if (res.status === 409) {
      // The month changed (or was decided) since the queue was drawn: draw it again, with the
      // month as it now stands, rather than leave a row that every try refuses.
      await draw(main, session, nav, { warning: true,
        text: t("reviews.changed_notice", { name: row.name, month: monthName(period) }) });
      return;
    }
    // Said in the page's language, the hub's own words apart (for whoever helps).
    replace(errorEl, h("p", { class: "error-message", role: "alert" },
      t("reviews.refused"), res.body && res.body.error
        ? h("span", { class: "api-words", lang: "en" }, ` (${res.body.error})`) : null));
  }

  // A month approved by mistake is returned from the page too (with a comment), not only
  // through the API.
  function actions(row) {
    if (!reviewer) return t("reviews.reviewer_only");
    const approved = row.state === "approved";
    const id = `comment-${row.municipality}`;
    // A comment being written outlives the page: a session that ends, a reload (kept for
    // this tab only, and dropped once the month is decided).
    const draft = draftKey(row);
    // The comment's room said before it is used up (the pages' attack: it was said only by
    // the refusal): the limit, then, near it, about how many letters are left.
    const hint = h("span", { class: "hint", id: `${id}-hint` });
    const room = () => {
      const bytes = new TextEncoder().encode(comment.value).length;
      const letters = [...comment.value].length;
      const left = letters ? Math.floor((COMMENT_MAX - bytes) * letters / bytes) : 0;
      replace(hint, bytes < COMMENT_MAX * 0.8 ? t("reviews.comment_hint")
        : left >= 0 ? t("reviews.comment_left", { n: num(left) })
          : t("reviews.comment_over", { n: num(-left) }));
    };
    const comment = h("textarea", { id, rows: "2", class: "comment", "aria-describedby": hint.id,
                                    oninput: (e) => { keepDraft(draft, e.target.value); room(); } });
    comment.value = sessionStorage.getItem(draft) || "";
    room();
    const err = h("div");
    return h("div", { class: "decide" },
      approved ? null : h("button", { type: "button", class: "button", "data-approve": row.municipality,
                    onclick: () => decide(row, true, commentOf(row, comment), err) }, t("reviews.approve"),
        h("span", { class: "visually-hidden" }, ` ${row.name}, ${monthName(period)}`)),
      h("label", { for: id }, t("reviews.comment")), hint, comment,
      h("button", { type: "button", class: "button button-warning", "data-return": row.municipality,
                    onclick: () => {
                      // The error is the field's: tied to it (aria-describedby) and marked on
                      // it (aria-invalid), as the node's forms do.
                      const fieldError = (key) => {
                        replace(err, h("p", { class: "error-message", role: "alert", id: `${id}-error` }, t(key)));
                        comment.setAttribute("aria-invalid", "true");
                        comment.setAttribute("aria-describedby", `${id}-hint ${id}-error`);
                        comment.focus();
                      };
                      const text = commentOf(row, comment);
                      if (!text.trim()) {
                        fieldError("reviews.comment_needed");
                        return;
                      }
                      // The protocol keeps 1,000 bytes: about 330 Devanagari letters.
                      if (new TextEncoder().encode(text).length > COMMENT_MAX) {
                        fieldError("reviews.comment_too_long");
                        return;
                      }
                      decide(row, false, text, err);
                    } }, t("reviews.return"),
        h("span", { class: "visually-hidden" }, ` ${row.name}, ${monthName(period)}`)),
      err);
  }

  const head = ["reviews.where", "reviews.state", "reviews.closed_on", "reviews.records",
                "reviews.change", "reviews.pending", "reviews.unavailable"];
  function row(x, withActions) {
    return h("tr", { "data-code": x.municipality },
      h("th", { scope: "row" }, x.name, " ", h("span", { class: "muted" }, `(${digits(x.municipality)}, ${x.district})`)),
      // data-label: on a phone the rows stand as cards, each figure under its name.
      h("td", { "data-label": t(head[1]) }, h("span", { class: `tag state-${x.state}` }, t(`state.${x.state}`)),
        // The last decision, who made it and on which day (in Nepal, BS), then what she said:
        // named, since a month closed again after a return shows the return under its new
        // state.
        x.decided_by && (x.decision === "approved" || x.decision === "returned")
          ? h("span", { class: "hint decided-by" },
            t(`reviews.${x.decision}_by`, { who: x.decided_by }),
            x.decided_on_bs ? `, ${digits(x.decided_on_bs)}` : "") : null,
        x.comment ? h("span", { class: "hint review-said" }, t("reviews.said", { who: x.decided_by, comment: x.comment })) : null),
      h("td", { "data-label": t(head[2]) }, x.closed_on_bs ? digits(x.closed_on_bs) : t("value.none")),
      h("td", { class: "num", "data-label": t(head[3]) }, num(x.records)),
      h("td", { class: "num", "data-label": t(head[4]) }, (x.records_change > 0 ? "+" : "") + num(x.records_change)),
      h("td", { class: "num", "data-label": t(head[5]) }, num(x.referrals_pending)),
      h("td", { class: "num", "data-label": t(head[6]) }, num(x.services_unavailable)),
      withActions ? h("td", { class: "decision" }, withActions === "approved" && x.state !== "approved"
        ? null : actions(x)) : null);
  }
  // The notice after a decision takes the focus (the button pressed is gone), so that a
  // keyboard or screen-reader user hears it and goes on from there.
  const noticeEl = notice ? h("div", notice.warning ? { class: "warning", role: "alert", tabindex: "-1", id: "reviews-notice" }
    : { class: "notice", role: "status", tabindex: "-1", id: "reviews-notice" },
  h("p", {}, notice.warning ? notice.text : notice)) : null;
  replace(main,
    h("h1", {}, t("reviews.title")),
    noticeEl,
    h("p", { class: "lead" }, t(reviewer ? "reviews.lead" : "reviews.lead_officer")),
    // The same words meant two figures: the clerk's all open referrals, the reviewer's the
    // indicator's overdue ones (the attack on the officers' pages).
    h("p", { class: "hint", id: "reviews-pending-rule" }, t("reviews.pending_rule")),
    h("div", { class: "form-group" }, h("label", { for: "reviews-period" }, t("reviews.month")), periodSelect),
    h("h2", { id: "reviews-heading" }, t("reviews.queue", { month: monthName(period), n: num(queue.length) })),
    queue.length === 0 ? h("p", { id: "reviews-empty" }, t("reviews.empty", { month: monthName(period) })) :
      h("div", { class: "table-wrap" }, h("table", { class: "table review-table", id: "reviews-queue" },
        h("caption", { class: "visually-hidden" }, t("reviews.queue", { month: monthName(period), n: num(queue.length) })),
        h("thead", {}, h("tr", {}, head.map((k, i) => h("th", { scope: "col", class: i >= 3 ? "num" : null }, t(k))),
          h("th", { scope: "col" }, t("reviews.decision")))),
        h("tbody", {}, queue.map((x) => row(x, true))))),
    h("h2", {}, t("reviews.others")),
    others.length === 0 ? h("p", {}, t(queue.length ? "reviews.all_above" : "reviews.no_others")) :
      h("div", { class: "table-wrap" }, h("table", { class: "table review-table", id: "reviews-others" },
        h("caption", { class: "visually-hidden" }, t("reviews.others")),
        h("thead", {}, h("tr", {}, head.map((k, i) => h("th", { scope: "col", class: i >= 3 ? "num" : null }, t(k))),
          reviewer ? h("th", { scope: "col" }, t("reviews.decision")) : null)),
        h("tbody", {}, others.map((x) => row(x, reviewer ? "approved" : false))))));
  if (noticeEl) noticeEl.focus();
}
