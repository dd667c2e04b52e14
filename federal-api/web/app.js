// The federal pages: the national dashboard (signed in with a ministry token, then a session
// kept by the API in PostgreSQL) and the open-data page (no sign-in). Draws the header and
// the page the address names, and moves between pages without reloading.
import { h, replace } from "/common/dom.js";
import * as i18n from "/common/i18n.js";
import { t } from "/common/i18n.js";
import { api, setCsrf, whenSignedOut } from "/common/api.js";
import { mainNav, navLink, sameSitePath, whoBox } from "/common/shell.js";
import * as signin from "./pages/signin.js";
import * as dashboard from "./pages/dashboard.js";
import * as opendata from "./pages/opendata.js";
import { errorBox } from "./views.js";

const state = { session: null, checked: false, notice: null };
const main = document.getElementById("main");

export function navigate(url, replaceState) {
  if (replaceState) history.replaceState({}, "", url);
  else history.pushState({}, "", url);
  render();
}

async function signOut() {
  await api.del("/v1/session");
  state.session = null;
  setCsrf(null);
  state.notice = t("signin.signed_out");
  navigate("/signin");
}

function header() {
  const s = state.session;
  const path = location.pathname;
  replace(document.getElementById("top"),
    h("div", { class: "top-row" },
      h("p", { class: "brand" }, t("app.name")),
      whoBox(s ? t("header.signed_in_as", { who: s.who }) : null, signOut, render)),
    mainNav([
      s ? navLink("/dashboard", "nav.dashboard", path === "/dashboard" || path === "/")
        : navLink("/signin", "nav.signin", path === "/signin"),
      navLink("/open-data", "nav.open", path === "/open-data"),
    ]));
  document.getElementById("skip").textContent = t("app.skip");
  replace(document.getElementById("foot"), t("footer.text"));
}

// The pages the shell draws (fweb.c serves it for these and, with 404, for any other).
const PAGES = ["/", "/signin", "/dashboard", "/open-data"];

// Each render's number: a page still loading when another was drawn (the sign-in page after a
// 401 under the dashboard) must not draw its error over it.
let renders = 0;

async function render() {
  const mine = ++renders;
  const path = location.pathname;
  if (!state.checked && path !== "/open-data") {
    // A session of an earlier visit (the cookie is HttpOnly: only the API can say).
    const r = await api.get("/v1/session");
    if (r.status === 200) {
      state.session = r.body;
      setCsrf(r.body.csrf);
    }
    state.checked = true;
  }
  header();
  const ctx = {
    main, navigate, params: new URLSearchParams(location.search),
    setTitle: (text) => { document.title = `${text} · ${t("app.name")}`; },
    onSignedIn: (session) => {
      state.session = session;
      state.checked = true;
      setCsrf(session.csrf);
      // Back to the dashboard as the address had it when the session was asked for (its
      // indicator, period and grouping), on this site only.
      const next = new URLSearchParams(location.search).get("next");
      navigate(sameSitePath(next, "/dashboard"), true);
    },
  };
  try {
    if (!PAGES.includes(path)) {
      // A mistyped or old address: said so, with the way on.
      ctx.setTitle(t("notfound.title"));
      replace(main, h("h1", { tabindex: "-1" }, t("notfound.title")),
        h("p", {}, t("notfound.body")),
        h("p", {}, h("a", { href: state.session ? "/dashboard" : "/open-data", "data-nav": "" },
          t(state.session ? "notfound.dashboard" : "notfound.open"))));
    } else if (path === "/open-data") {
      await opendata.render(ctx);
    } else if (!state.session || path === "/signin") {
      if (state.session) {
        navigate("/dashboard", true);
        return;
      }
      if (path !== "/signin") {
        const here = path + location.search;
        history.replaceState({}, "", here === "/" ? "/signin"
          : `/signin?next=${encodeURIComponent(here)}`);
      }
      const notice = state.notice;
      state.notice = null;
      await signin.render(ctx, notice);
    } else {
      await dashboard.render(ctx);
    }
  } catch (e) {
    if (mine === renders) replace(main, errorBox(e));
  }
  if (mine === renders) document.body.setAttribute("data-page", location.pathname);
}

whenSignedOut(() => {
  if (!state.session) return;
  state.session = null;
  setCsrf(null);
  // The session ended under the page (its 8 hours, 30 minutes unused, or revoked): said so,
  // and signing in again comes back to the same view.
  state.notice = t("signin.expired");
  const here = location.pathname + location.search;
  navigate(here === "/" || location.pathname === "/signin" ? "/signin"
    : `/signin?next=${encodeURIComponent(here)}`, true);
});

document.addEventListener("click", (e) => {
  const a = e.target.closest("a[data-nav]");
  if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);

await i18n.load(i18n.preferred());
render();
