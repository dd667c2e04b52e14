// The pieces of the header that every set of pages draws the same way (the clerks' workspace,
// the provincial officers' dashboard and the federal pages), so that a change to the
// language switch or the navigation's markup is made once for all three.
import { h } from "/common/dom.js";
import * as i18n from "/common/i18n.js";
import { t } from "/common/i18n.js";

// The button that switches to the other language, then calls redraw to draw the page in it.
export function langSwitch(redraw) {
  const other = i18n.current() === "ne" ? "en" : "ne";
  return h("button", {
    type: "button", class: "lang-switch", lang: other,
    onclick: async () => {
      await i18n.load(other);
      redraw();
    },
  }, t(`lang.${other}`));
}

// The sign-out button of the header; onclick ends the session.
export function signOutButton(onclick) {
  return h("button", { type: "button", class: "link-button", id: "signout", onclick },
    t("header.sign_out"));
}

// The header's right-hand side: signedInAs (the text saying who is signed in, or null when no
// one is) with the sign-out button that calls onSignOut, then the language switch.
export function whoBox(signedInAs, onSignOut, redraw) {
  return h("div", { class: "who" },
    signedInAs ? h("span", {}, signedInAs) : null,
    signedInAs ? signOutButton(onSignOut) : null,
    langSwitch(redraw));
}

// One item of the main navigation: a link the app moves to without reloading, marked as the
// page shown when current.
export function navLink(href, key, current) {
  return h("li", {}, h("a", {
    href, "data-nav": "",
    "aria-current": current ? "page" : null,
  }, t(key)));
}

// The main navigation of an app's pages ({path, key} each), the one at current marked.
export function pagesNav(pages, current) {
  return mainNav(pages.map((p) => navLink(p.path, p.key, current && current.path === p.path)));
}

// The main navigation, of the navLink items given.
export function mainNav(items) {
  return h("nav", { class: "main-nav", "aria-label": t("nav.label") }, h("ul", {}, items));
}

// The page a ?next= address names, when it is one of this site's (not the sign-in); else
// fallback. "/\host" and the like, which a browser reads as another site, are refused here:
// history.replaceState would throw on them.
export function sameSitePath(next, fallback) {
  if (!next || !next.startsWith("/")) return fallback;
  try {
    const u = new URL(next, location.origin);
    if (u.origin === location.origin && u.pathname !== "/signin") return u.pathname + u.search;
  } catch (e) {
    // not an address
  }
  return fallback;
}
