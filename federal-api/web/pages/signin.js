// Signing in to the national dashboard with a ministry's API token. The token goes to the
// API once (POST /v1/session); the session's cookie is HttpOnly and never seen here.
import { h, replace } from "/common/dom.js";
import { t } from "/common/i18n.js";
import { api } from "/common/api.js";

export async function render(ctx, message) {
  ctx.setTitle(t("signin.title"));
  const status = h("div", { "aria-live": "polite" });
  const token = h("input", { id: "signin-token", name: "token", type: "password",
                             autocomplete: "off", spellcheck: "false",
                             "aria-describedby": "signin-token-hint" });
  const button = h("button", { type: "submit", class: "button", id: "signin-submit" },
    t("signin.submit"));
  const fail = (text) => {
    replace(status, h("div", { class: "error-summary", role: "alert", tabindex: "-1" },
      h("h2", {}, t("error.summary")), h("ul", {}, h("li", {}, h("a", { href: "#signin-token" }, text)))));
    status.firstChild.focus();
  };
  const form = h("form", { novalidate: true, id: "signin-form", onsubmit: async (e) => {
    e.preventDefault();
    const value = token.value.trim();
    if (!value) {
      fail(t("signin.empty"));
      return;
    }
    button.disabled = true;
    const r = await api.post("/v1/session", { token: value });
    button.disabled = false;
    if (r.status === 200) ctx.onSignedIn(r.body);
    else if (r.status === 401) fail(t("signin.failed"));
    else if (r.status === 403) fail(t("signin.forbidden"));
    else if (r.status === 429) fail(t("signin.limited"));
    else fail(t("signin.error"));
  } },
  h("div", { class: "form-group" }, h("label", { for: "signin-token" }, t("signin.token")),
    h("span", { class: "hint", id: "signin-token-hint" }, t("signin.token_hint")), token),
  button);
  replace(ctx.main, h("h1", { tabindex: "-1" }, t("signin.title")),
    message ? h("div", { class: "notice", role: "status", tabindex: "-1", id: "signin-notice" },
      h("p", {}, message)) : null,
    status, h("p", { class: "lead" }, t("signin.intro")), h("div", { class: "panel" }, form),
    h("p", {}, h("a", { href: "/open-data", "data-nav": "" }, t("signin.open_link"))));
  // A notice (the session ended, or signed out) is read first, and heard.
  const notice = document.getElementById("signin-notice");
  if (notice) notice.focus();
}
