// Admin: the site's widget settings (key and snippet, allowed origins, identity secret,
// colour, language, texts).

import { get, patch } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { t } from "./i18n.js";

// The widget texts a site may override (the server checks the same list).
const TEXT_KEYS = [
  "title", "subtitle", "placeholder", "send", "offline", "email_prompt", "email_saved", "launcher",
  "close", "attach", "new_message", "continue_in", "sending", "sent", "delivered", "read", "typing",
];
const TEXT_LANGUAGES = ["en", "ru"];

export class SiteSettingsSection {
  constructor() {
    this.el = h("section", { class: "site-settings" }, h("h2", {}, t("site.title")), h("p", { class: "muted" }, t("common.loading")));
    this.load();
  }

  async load() {
    try {
      this.render(await get("/site"));
    } catch (err) {
      clear(this.el).append(h("h2", {}, t("site.title")), h("p", { class: "error" }, err.message));
    }
  }

  render(site) {
    const form = h("form", { class: "site-form" },
      h("label", {}, t("site.name"), " ", h("input", { name: "name", value: site.name, maxlength: 200 })),
      h("label", {}, t("site.origins"), " ",
        h("textarea", { name: "allowed_origins", rows: 3, value: site.allowed_origins.join("\n") })),
      h("label", {}, t("site.secret"), " ",
        h("input", { name: "identity_secret", type: "password", autocomplete: "off",
          placeholder: site.identity_secret_set ? t("site.secret_set", { hint: site.identity_secret_hint || t("site.hidden") }) : t("site.secret_off") })),
      site.identity_secret_set ? h("label", {}, h("input", { type: "checkbox", name: "clear_secret" }), " ", t("site.clear_secret")) : null,
      h("label", {}, t("site.colour"), " ", h("input", { name: "color", type: "color", value: site.color })),
      h("label", {}, t("site.language"), " ", h("select", { name: "language" },
        [["auto", t("site.language_auto")], ["en", "English"], ["ru", "Русский"]]
          .map(([l, label]) => h("option", { value: l, selected: l === site.language }, label)))),
      h("details", {}, h("summary", {}, t("site.texts")),
        h("table", { class: "texts" },
          h("thead", {}, h("tr", {}, h("th", {}, ""), TEXT_LANGUAGES.map((l) => h("th", {}, l)))),
          h("tbody", {}, TEXT_KEYS.map((key) => h("tr", {}, h("th", {}, key), TEXT_LANGUAGES.map((lang) => h("td", {},
            h("input", { name: `text:${lang}:${key}`, value: site.texts?.[lang]?.[key] || "", maxlength: 300, "aria-label": `${key} (${lang})` })))))))),
      h("button", { type: "submit" }, t("common.save")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = form.elements;
      const texts = {};
      for (const lang of TEXT_LANGUAGES) {
        texts[lang] = {};
        for (const key of TEXT_KEYS) {
          const value = f[`text:${lang}:${key}`].value.trim();
          if (value) texts[lang][key] = value;
        }
      }
      const body = {
        name: f.name.value, color: f.color.value, language: f.language.value, texts,
        allowed_origins: f.allowed_origins.value.split("\n").map((o) => o.trim()).filter(Boolean),
      };
      if (f.clear_secret?.checked) body.identity_secret = "";
      else if (f.identity_secret.value) body.identity_secret = f.identity_secret.value;
      await this.save(body);
    });
    clear(this.el).append(
      h("h2", {}, t("site.title")),
      h("p", {}, t("site.key"), " ", h("code", { class: "site-key" }, site.site_key), " ",
        h("button", { type: "button", onclick: () => {
          if (confirm(t("site.rotate_confirm"))) this.save({ rotate_site_key: true });
        } }, t("site.rotate"))),
      h("p", {}, t("site.snippet")),
      h("pre", { class: "snippet" }, site.snippet),
      form);
  }

  async save(body) {
    try {
      this.render(await patch("/site", body));
      toast(t("site.saved"), "ok");
    } catch (err) { toast(err.message); }
  }
}
