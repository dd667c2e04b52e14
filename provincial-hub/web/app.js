// The provincial officers' dashboard: signs in with an officer's token, draws the header and
// the page the address names, and moves between pages without reloading. Every page calls the
// hub's officers' API (provincial-hub/officers.h), the same one other programs use.
import { h, replace } from "/common/dom.js";
import * as i18n from "/common/i18n.js";
import { t } from "/common/i18n.js";
import { api, setCsrf, whenSignedOut } from "/common/api.js";
import { pagesNav, sameSitePath, whoBox } from "/common/shell.js";

import * as gaps from "/pages/gaps.js";
import * as reviews from "/pages/reviews.js";
import * as indicators from "/pages/indicators.js";
import { provinceName } from "/pages/util.js";

const PAGES = [
  { path: "/gaps", key: "nav.gaps", page: gaps },
  { path: "/reviews", key: "nav.reviews", page: reviews },
  { path: "/indicators", key: "nav.indicators", page: indicators },
];

const state = { session: null, notice: null };
const main = document.getElementById("main");

function pageFor(path) {
  if (path === "/" || path === "") return PAGES[0];
  return PAGES.find((p) => path === p.path) || null;
}

export function navigate(url) {
  history.pushState({}, "", url);
  render();
}

function header() {
  const s = state.session;
  const nav = s ? pagesNav(PAGES, pageFor(location.pathname)) : null;
  const signedInAs = s ? t("header.signed_in_as", { who: s.who, role: t(`role.${s.role}`) }) : null;
  const who = whoBox(signedInAs, signOut, render);
  replace(document.getElementById("top"),
    h("div", { class: "top-row" },
      h("p", { class: "brand" }, t("app.name"),
        s ? h("small", {}, " · ", t("header.province", { province: provinceName(s.province_name) })) : null),
      who),
    nav);
  replace(document.getElementById("foot"), h("p", {}, t("footer.text")));
}

async function signOut() {
  // A comment being written is this reviewer's: the next one to sign in here does not find it.
  for (const k of Object.keys(sessionStorage)) {
    if (k.startsWith("review-comment:")) sessionStorage.removeItem(k);
  }
  await api.del("/v1/session");
  state.session = null;
  setCsrf(null);
  history.pushState({}, "", "/signin");
  render();
}

function signInPage() {
  const input = h("input", { type: "password", id: "token", name: "token",
                             autocomplete: "off", spellcheck: "false",
                             "aria-describedby": "token-hint" });
  const errorBox = h("div", { id: "signin-error" });
  const form = h("form", { novalidate: true, onsubmit: async (e) => {
    e.preventDefault();
    const r = await api.post("/v1/session", { token: input.value.trim() });
    if (r.status === 200) {
      state.session = r.body;
      state.notice = null;
      setCsrf(r.body.csrf);
      // Comments kept for someone else whose session ended at this machine are dropped: they
      // are hers, not the newcomer's to find in storage (the pages' attack).
      const mine = `review-comment:${r.body.province}:${r.body.who}:`;
      for (const k of Object.keys(sessionStorage)) {
        if (k.startsWith("review-comment:") && !k.startsWith(mine)) sessionStorage.removeItem(k);
      }
      // Back to the page the session ended on (a reviewer's queue, with her comment kept).
      history.replaceState({}, "", sameSitePath(new URLSearchParams(location.search).get("next"), "/gaps"));
      render();
      return;
    }
    replace(errorBox, h("div", { class: "error-summary", role: "alert", tabindex: "-1" },
      h("h2", {}, t("signin.error_title")),
      h("ul", {}, h("li", {}, h("a", { href: "#token" },
        r.status === 429 ? t("signin.limited") : t("signin.wrong"))))));
    errorBox.firstChild.focus();
  } },
  h("div", { class: "form-group" },
    h("label", { for: "token" }, t("signin.token")),
    h("span", { class: "hint", id: "token-hint" }, t("signin.token_hint")),
    input),
  h("button", { type: "submit", class: "button", id: "signin" }, t("signin.submit")));
  const notice = state.notice ? h("div", { class: "warning", role: "status", tabindex: "-1",
                                           id: "signin-notice" }, t(state.notice)) : null;
  return [h("h1", {}, t("signin.title")), notice, errorBox, form];
}

export async function render() {
  header();
  if (!state.session) {
    if (location.pathname !== "/signin") {
      const here = location.pathname + location.search;
      history.replaceState({}, "", here === "/" ? "/signin" : `/signin?next=${encodeURIComponent(here)}`);
    }
    replace(main, signInPage());
    document.title = `${t("signin.title")} · ${t("app.name")}`;
    // Why the page changed under her (a session that ended) is read first, and heard.
    const notice = document.getElementById("signin-notice");
    if (notice) notice.focus();
    return;
  }
  const p = pageFor(location.pathname);
  if (!p) {
    // A mistyped or old address: said so, with the way on (it went to the gaps unasked).
    replace(main, h("h1", { tabindex: "-1" }, t("notfound.title")),
      h("p", {}, t("notfound.body")),
      h("p", {}, h("a", { href: "/gaps", "data-nav": "" }, t("notfound.back"))));
    document.title = `${t("notfound.title")} · ${t("app.name")}`;
    return;
  }
  replace(main, h("p", { class: "muted" }, t("loading")));
  try {
    await p.page.draw(main, state.session, { navigate });
  } catch (e) {
    replace(main, h("div", { class: "danger", role: "alert" }, h("h1", {}, t("error.title")),
      h("p", {}, String(e.message || e))));
  }
  document.title = `${t(p.key)} · ${t("app.name")}`;
}

async function start() {
  await i18n.load(i18n.preferred());
  whenSignedOut(() => {
    state.session = null;
    state.notice = "signin.expired";
    render();
  });
  const r = await api.get("/v1/session");
  if (r.status === 200) {
    state.session = r.body;
    setCsrf(r.body.csrf);
  }
  document.addEventListener("click", (e) => {
    const a = e.target.closest("a[data-nav]");
    if (a && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      navigate(a.getAttribute("href"));
    }
  });
  window.addEventListener("popstate", render);
  render();
}

start();
