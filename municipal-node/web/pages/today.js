// Today: the node's sync state in words, months returned by the province with the reviewer's
// comment (or, without the monthly review, months that ended and are not closed), the
// directives in force with how many participants are eligible, and the referrals waiting.
import { h, replace } from "/common/dom.js";
import { t, digits, num } from "/common/i18n.js";
import { api, seg } from "/common/api.js";
import * as bsdate from "/common/bsdate.js";
import { heading, notice, table, loadFailed } from "./common.js";
import { loadMonths, monthLabel, monthKey, fiscalYearOf, reviewNote, closedAgain } from "./months.js";

function ago(seconds) {
  if (seconds === null || seconds === undefined) return t("today.never");
  if (seconds < 120) return t("today.seconds_ago", { n: num(seconds) });
  if (seconds < 7200) return t("today.minutes_ago", { n: num(Math.floor(seconds / 60)) });
  if (seconds < 172800) return t("today.hours_ago", { n: num(Math.floor(seconds / 3600)) });
  return t("today.days_ago", { n: num(Math.floor(seconds / 86400)) });
}

function syncCard(s) {
  const lines = [];
  let tone = "notice";
  if (s.upgrade_needed) {
    tone = "danger";
    lines.push(t("today.upgrade_needed"));
  } else if (s.clock_ahead) {
    tone = "danger";
    lines.push(t("today.clock_ahead"));
  } else if (s.crl_expired) {
    tone = "danger";
    lines.push(t("today.crl_expired"));
  } else if (s.hub_reachable === false) {
    tone = "warning";
    lines.push(t("today.hub_unreachable"));
  } else {
    lines.push(t("today.hub_reachable"));
  }
  lines.push(t("today.last_sync", { when: ago(s.last_sync_age_s) }));
  lines.push(s.backlog ? t("today.backlog", { n: num(s.backlog), when: ago(s.oldest_unsynced_age_s) })
                       : t("today.no_backlog"));
  return h("div", { class: tone, id: "sync-state" }, h("h2", {}, t("today.sync")),
    h("ul", {}, lines.map((l) => h("li", {}, l))),
    s.last_error ? h("p", { class: "muted" }, t("today.last_error", { error: s.last_error })) : null);
}

export async function render(ctx, msg) {
  const [st, dl, dir, fu, fy] = await Promise.all([
    api.get("/v1/status"), api.get("/v1/dead-letters"), api.get("/v1/directives"),
    api.get("/v1/followups"), loadMonths(null)]);
  if (st.status !== 200) {
    replace(ctx.main, heading(ctx, t("today.title")), loadFailed(ctx, st));
    return;
  }
  const s = st.body;
  const pending = fu.status === 200
    ? fu.body.persons.reduce((n, p) => n + p.referrals.length, 0) : 0;
  const longest = fu.status === 200 && fu.body.persons.length ? fu.body.persons[0].days_waiting : 0;

  // Months the province reviewed, of any fiscal year, from GET /v1/months (returned ones
  // first); months that ended unclosed, from this fiscal year's list.
  const reviews = fy.error ? [] : fy.reviews;
  const returned = reviews.filter((r) => r.state === "returned");
  const changed = reviews.filter((r) => r.state === "changed");
  const again = reviews.filter(closedAgain);
  const due = fy.error ? [] : fy.months.filter((m) => m.state === "due");
  const cal = fy.error ? { calendar: ctx.session.calendar } : fy;
  const link = (key, text) => h("a", { href: `/months?year=${fiscalYearOf(key)}`, "data-nav": "" }, text);

  const monthItems = [
    ...returned.map((r) => {
      const key = monthKey(r.period);
      return h("li", { class: "month-returned", "data-period": r.period },
        h("strong", {}, t("today.returned", { month: monthLabel(cal, key) })), " ", reviewNote(r),
        link(key, t("today.correct_and_close", { month: monthLabel(cal, key) })));
    }),
    ...again.map((r) => h("li", { "data-period": r.period },
      t("today.closed_again", { month: monthLabel(cal, monthKey(r.period)) }))),
    ...changed.map((r) => h("li", { "data-period": r.period },
      t("today.changed", { month: monthLabel(cal, monthKey(r.period)) }))),
    ...due.map((m) => h("li", {}, t("today.due", { month: monthLabel(cal, m.month) }))),
  ];

  const dead = dl.status === 200 ? dl.body.dead_letters : [];
  const directives = dir.status === 200 ? dir.body.directives : [];
  replace(ctx.main,
    heading(ctx, t("today.title"), bsdate.show(ctx.session.today)),
    notice(msg),
    h("div", { class: "cards" },
      h("div", { class: "card" }, h("h2", {}, t("today.followups")),
        h("p", { class: "big" }, num(pending)),
        h("p", {}, pending ? t("today.followups_longest", { n: num(longest) }) : t("today.followups_none"),
          " ", h("a", { href: "/followups", "data-nav": "" }, t("today.followups_link")))),
      h("div", { class: "card" }, h("h2", {}, t("today.records")),
        h("p", { class: "big" }, num(s.records)),
        h("p", {}, h("a", { href: "/people", "data-nav": "" }, t("today.people_link")))),
      h("div", { class: "card" }, h("h2", {}, t("today.months")),
        // A month changed since approval waits for the reviewer, not the clerk (the pages'
        // attack: it was counted as needing her); it is still listed below.
        h("p", { class: "big" }, num(returned.length + due.length)),
        h("p", {}, h("a", { href: "/months", "data-nav": "" }, t("today.months_link"))))),
    syncCard(s),
    h("h2", {}, t("today.months_title")),
    monthItems.length ? h("ul", { id: "month-alerts" }, monthItems)
      : h("p", {}, t("today.months_ok")),
    h("h2", {}, t("today.dead_letters", { n: num(s.dead_letters) })),
    dead.length ? table(t("today.dead_letters_caption"), [t("today.dl_record"), t("today.dl_field"),
      t("today.dl_reason"), t("today.dl_when")], dead.map((d) => h("tr", {},
        h("td", {}, d.kind === "persons" && d.local_id
          ? h("a", { href: `/people/${seg(d.local_id)}`, "data-nav": "" }, d.local_id)
          : `${t(`kind.${d.kind}`)} ${d.local_id || ""}`),
        h("td", {}, d.field), h("td", {}, d.reason),
        h("td", {}, bsdate.long(bsdate.nepalDay(d.at_ms))))), { hideCaption: true })
      : h("p", {}, t("today.no_dead_letters")),
    h("h2", {}, t("today.directives")),
    directives.length ? table(t("today.directives"), [t("today.directive"), t("today.in_force"),
      { text: t("today.eligible"), num: true }], directives.map((d) => h("tr", {},
        h("td", {}, h("strong", {}, d.title), h("br", {}), h("span", { class: "muted" }, d.text),
          ...((d.priority_rules || []).length ? [h("br", {}), h("span", { class: "priority" },
            t("today.priority", { rules: d.priority_rules.join("; ") }))] : [])),
        h("td", {}, d.to ? t("today.from_to", { from: bsdate.show(d.from), to: bsdate.show(d.to) })
                         : t("today.from", { from: bsdate.show(d.from) })),
        // Who is eligible, to act on the directive (the pages' attack: a count alone, though
        // the node lists them): the first ones the node gives, each linking to the person.
        h("td", { class: "num" }, (d.eligible || []).length
          ? h("details", { class: "eligible" }, h("summary", {}, num(d.eligible_count)),
            h("ul", { class: "eligible-list" }, d.eligible.map((p) => h("li", {},
              h("a", { href: `/people/${seg(p.local_id)}`, "data-nav": "" },
                p.full_name || p.local_id)))),
            d.eligible.length < d.eligible_count
              ? h("p", { class: "muted" }, t("today.eligible_first", { n: num(d.eligible.length) }))
              : null)
          : num(d.eligible_count)))), { hideCaption: true })
      : h("p", {}, t("today.no_directives")));
}
