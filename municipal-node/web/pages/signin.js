// Signing in: with the clerk token the node gave (municipal-node token CLERK), or with a
// name and the password set with municipal-node password CLERK.
import { h, replace, newId } from "/common/dom.js";
import { t, digits } from "/common/i18n.js";
import { api } from "/common/api.js";
import { heading, notice, errorSummary } from "./common.js";

function field(id, labelText, hint, input) {
  const hintId = hint ? newId("hint") : null;
  if (hintId) input.setAttribute("aria-describedby", hintId);
  return h("div", { class: "form-group" },
    h("label", { for: id }, labelText),
    hint ? h("span", { class: "hint", id: hintId }, hint) : null,
    input);
}

// The last refusal, and the name typed, said again when the page is drawn again in the
// other language (the clerk's attack: switching language cleared the error). Until a
// sign-in succeeds; never the token or the password.
let last = null; // the refusal: {status, body}
let typed = ""; // the name in the name field

export async function render(ctx, message) {
  const status = h("div", { "aria-live": "polite" });
  const failed = (r, focus) => {
    // A wait to try again is not said again later: it would be stale.
    last = r.status === 429 ? null : { status: r.status, body: r.body };
    let text;
    if (r.status === 429) {
      text = t("signin.limited", { seconds: digits(r.body && r.body.retry_after || "") });
    } else if (r.status === 401) {
      text = t("signin.failed");
    } else {
      text = t("signin.error");
    }
    replace(status, errorSummary([{ text }]));
    if (focus) status.querySelector(".error-summary").focus();
  };
  const submit = async (e, body, button) => {
    e.preventDefault();
    button.disabled = true;
    const r = await api.post("/v1/session", body);
    button.disabled = false;
    if (r.status === 200) {
      last = null;
      typed = "";
      ctx.onSignedIn(r.body);
    } else {
      failed(r, true);
    }
  };

  const token = h("input", { id: "signin-token", name: "token", type: "password",
                             autocomplete: "off", spellcheck: "false" });
  const tokenButton = h("button", { type: "submit", class: "button", id: "signin-token-submit" },
    t("signin.submit"));
  const tokenForm = h("form", { novalidate: true, onsubmit: (e) => submit(e,
      { token: token.value.trim() }, tokenButton) },
    h("fieldset", {}, h("legend", {}, t("signin.with_token")),
      field("signin-token", t("signin.token"), t("signin.token_hint"), token)),
    tokenButton);

  const clerk = h("input", { id: "signin-clerk", name: "clerk", type: "text",
                             autocomplete: "username", spellcheck: "false", value: typed,
                             oninput: () => { typed = clerk.value; } });
  const password = h("input", { id: "signin-password", name: "password", type: "password",
                                autocomplete: "current-password" });
  const pwButton = h("button", { type: "submit", class: "button", id: "signin-password-submit" },
    t("signin.submit"));
  const pwForm = h("form", { novalidate: true, onsubmit: (e) => submit(e,
      { clerk: clerk.value.trim(), password: password.value }, pwButton) },
    h("fieldset", {}, h("legend", {}, t("signin.with_password")),
      field("signin-clerk", t("signin.clerk"), null, clerk),
      field("signin-password", t("signin.password"), null, password)),
    pwButton);

  // Why the page changed under her (a session that ended) is read first, and heard (the
  // focus stayed on the page's body).
  const why = notice(message);
  if (why) {
    why.id = "signin-notice";
    why.setAttribute("tabindex", "-1");
  }
  replace(ctx.main,
    heading(ctx, t("signin.title")),
    why,
    status,
    h("p", { class: "lead" }, t("signin.intro")),
    h("div", { class: "signin-grid" },
      h("div", { class: "panel" }, tokenForm),
      h("div", { class: "panel" }, pwForm)));
  if (why) why.focus();
  if (last && !why) failed(last, true);
}
