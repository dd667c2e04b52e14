// The clerk's workspace: signs in, draws the header and the page the address names, and
// moves between pages without reloading. Every page calls the node's JSON API (api.h).
import { h, replace } from "/common/dom.js";
import * as i18n from "/common/i18n.js";
import { t } from "/common/i18n.js";
import * as bsdate from "/common/bsdate.js";
import { api, setCsrf, whenSignedOut } from "/common/api.js";
import { pagesNav, sameSitePath, whoBox } from "/common/shell.js";
import { keepDraft } from "/pages/forms.js";

import * as signin from "/pages/signin.js";
import * as today from "/pages/today.js";
import * as people from "/pages/people.js";
import * as followups from "/pages/followups.js";
import * as importPage from "/pages/import.js";
import * as months from "/pages/months.js";
import * as availability from "/pages/availability.js";
import * as exportPage from "/pages/export.js";

const PAGES = [
  { path: "/today", key: "nav.today", page: today },
  { path: "/people", key: "nav.people", page: people },
  { path: "/followups", key: "nav.followups", page: followups },
  { path: "/import", key: "nav.import", page: importPage },
  { path: "/months", key: "nav.months", page: months },
  { path: "/availability", key: "nav.availability", page: availability },
  { path: "/export", key: "nav.export", page: exportPage },
];

const state = { session: null, schema: null, notice: null };
const main = document.getElementById("main");

async function schema() {
  if (!state.schema) {
    const r = await api.get("/v1/schema");
    if (r.status !== 200) throw new Error(t("error.load"));
    state.schema = r.body;
  }
  return state.schema;
}

function pageFor(path) {
  if (path === "/" || path === "") return PAGES[0];
  return PAGES.find((p) => path === p.path || path.startsWith(p.path + "/")) || null;
}

// Shows a message at the top of the next page drawn (after a change was saved).
function notify(text) {
  state.notice = text;
}

export function navigate(url, replaceState) {
  if (replaceState) history.replaceState({}, "", url);
  else history.pushState({}, "", url);
  render();
}

function header() {
  const top = document.getElementById("top");
  const s = state.session;
  const nav = s ? pagesNav(PAGES, pageFor(location.pathname)) : null;
  // A form half typed is drawn again in the other language with what it held (it came back
  // empty: a review of the young returnee's warning found it).
  const who = whoBox(s ? t("header.signed_in_as", { clerk: s.clerk }) : null, signOut, () => {
    keepDraft(true);
    render();
  });
  replace(top,
    h("div", { class: "top-row" },
      h("p", { class: "brand" }, t("app.name"), s ? " · " : "",
        s ? h("small", {}, i18n.localLevelName(s.municipality, s.municipality_name)) : null),
      who),
    nav);
  document.getElementById("skip").textContent = t("app.skip");
  replace(document.getElementById("foot"),
    s ? t("footer.node", { code: i18n.digits(s.municipality),
                           district: i18n.districtName(s.district_code, s.district),
                           province: i18n.has(`province.${s.province}`) ? t(`province.${s.province}`)
                             : s.province, today: bsdate.show(s.today) })
      : t("footer.offline"));
}

async function signOut() {
  await api.del("/v1/session");
  state.session = null;
  setCsrf(null);
  notify(t("signin.signed_out"));
  navigate("/signin");
}

function signedIn(session) {
  state.session = session;
  setCsrf(session.csrf);
  bsdate.load(session.calendar);
}

async function render() {
  // The node's day read again at each page (a GET of the session, small, on the office's
  // network): a page left open overnight drew a new row's date as yesterday's and called it
  // today (a review of the prefilled date). The calendar stays as signed in.
  if (state.session) {
    const r = await api.get("/v1/session");
    if (r.status === 200 && state.session) {
      state.session = r.body;
      setCsrf(r.body.csrf);
    }
  }
  header();
  const path = location.pathname;
  const ctx = {
    main, navigate, notify, schema,
    session: state.session,
    params: new URLSearchParams(location.search),
    path,
    setTitle: (text) => { document.title = `${text} · ${t("app.name")}`; },
  };
  const notice = state.notice;
  state.notice = null;
  if (!state.session || path === "/signin") {
    if (state.session && path === "/signin") {
      navigate("/today", true);
      return;
    }
    ctx.onSignedIn = (session) => {
      signedIn(session);
      const next = new URLSearchParams(location.search).get("next");
      navigate(sameSitePath(next, "/today"), true);
    };
    await signin.render(ctx, notice);
    return;
  }
  const entry = pageFor(path);
  if (!entry) {
    ctx.setTitle(t("notfound.title"));
    replace(main, h("h1", { tabindex: "-1" }, t("notfound.title")),
      h("p", {}, h("a", { href: "/today", "data-nav": "" }, t("notfound.back"))));
    focusHeading();
    return;
  }
  replace(main, h("p", { class: "muted", role: "status" }, t("app.loading")));
  try {
    await entry.page.render(ctx, notice);
  } catch (e) {
    replace(main, h("h1", { tabindex: "-1" }, t("error.title")),
      h("p", {}, t("error.load")), h("p", { class: "muted" }, String(e.message || e)));
  }
  focusHeading();
}

// After a page is drawn, its heading takes the focus, so that a screen reader announces the
// new page and the keyboard starts from it.
function focusHeading() {
  const target = main.querySelector("[data-autofocus]") || main.querySelector("h1");
  if (target) {
    if (!target.hasAttribute("tabindex")) target.setAttribute("tabindex", "-1");
    target.focus();
  }
}

// Links within the workspace change the page without a reload.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);

whenSignedOut(() => {
  if (!state.session) return;
  state.session = null;
  setCsrf(null);
  notify(keepDraft() ? t("signin.expired_kept") : t("signin.expired"));
  navigate(`/signin?next=${encodeURIComponent(location.pathname + location.search)}`, true);
});

async function start() {
  await i18n.load(i18n.preferred());
  await bsdate.load();
  const r = await api.get("/v1/session");
  if (r.status === 200) signedIn(r.body);
  await render();
}

start();
