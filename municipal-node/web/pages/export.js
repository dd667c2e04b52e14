// Export: the CSV export of each kind (every local field, personal data included), as
// `municipal-node export` writes it; importing it again changes nothing.
import { h, replace } from "/common/dom.js";
import { t } from "/common/i18n.js";
import { heading, notice } from "./common.js";

export async function render(ctx, msg) {
  replace(ctx.main,
    heading(ctx, t("export.title")),
    notice(msg),
    h("p", { class: "lead" }, t("export.intro")),
    h("div", { class: "warning" }, t("export.personal")),
    h("ul", {}, ["persons", "services", "enterprises", "availability"].map((k) =>
      h("li", {}, h("a", { href: `/v1/export/${k}`, download: "", id: `export-${k}` },
        t("export.link", { kind: t(`kind.${k}`) }))))));
}
