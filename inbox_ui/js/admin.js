// Admin: the team (invite, role, deactivate), saved replies, the site's widget settings, webhooks.

import { get, post, patch, del } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { state } from "./state.js";
import { SiteSettingsSection } from "./site.js";
import { WebhooksSection } from "./webhooks_admin.js";
import { availabilityName, roleName, t } from "./i18n.js";
import { ChannelsSection } from "./channels_admin.js";

const ROLES = ["operator", "sales", "admin"];

export class AdminPage {
  constructor(main) {
    this.team = h("tbody");
    this.replies = h("tbody");
    const invite = h("form", { class: "invite" },
      h("input", { name: "name", placeholder: t("field.name"), "aria-label": t("field.name"), required: true, maxlength: 200 }),
      h("input", { name: "email", type: "email", placeholder: t("field.email"), "aria-label": t("field.email"), required: true }),
      h("input", { name: "password", type: "password", placeholder: t("admin.password"), "aria-label": t("admin.password"), required: true, minlength: 8 }),
      h("select", { name: "role", "aria-label": t("admin.role") }, ROLES.map((r) => h("option", { value: r }, roleName(r)))),
      h("button", { type: "submit" }, t("admin.invite")));
    invite.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = invite.elements;
      try {
        await post("/operators", { name: f.name.value, email: f.email.value, password: f.password.value, role: f.role.value });
        invite.reset();
        this.loadTeam();
      } catch (err) { toast(err.message); }
    });
    const addReply = h("form", { class: "add-reply" },
      h("input", { name: "shortcut", placeholder: t("admin.shortcut"), "aria-label": t("admin.shortcut"), required: true, maxlength: 50 }),
      h("textarea", { name: "text", placeholder: t("admin.reply_text"), "aria-label": t("admin.reply_text"), required: true, rows: 2 }),
      h("button", { type: "submit" }, t("admin.add_reply")));
    addReply.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await post("/saved-replies", { shortcut: addReply.elements.shortcut.value, text: addReply.elements.text.value });
        addReply.reset();
        this.loadReplies();
      } catch (err) { toast(err.message); }
    });
    main.append(h("div", { class: "admin-page" },
      h("h2", {}, t("admin.team")), h("table", { class: "team" }, h("thead", {}, h("tr", {},
        [t("field.name"), t("field.email"), t("admin.role"), t("admin.status"), ""].map((label) => h("th", {}, label)))), this.team), invite,
      h("h2", {}, t("admin.saved_replies")), h("table", { class: "replies" }, this.replies), addReply,
      new SiteSettingsSection().el, new WebhooksSection().el));
    this.loadTeam();
    this.loadReplies();
    main.querySelector(".admin-page").append(new ChannelsSection().el);
  }

  async loadTeam() {
    try {
      const team = (await get("/operators")).items;
      for (const o of team) state.operators.set(o.id, o);
      clear(this.team);
      for (const o of team) {
        const role = h("select", { "aria-label": t("admin.role_of", { name: o.name }), disabled: o.id === state.me.id,
          onchange: (e) => this.update(o.id, { role: e.target.value }) },
        ROLES.map((r) => h("option", { value: r, selected: r === o.role }, roleName(r))));
        this.team.append(h("tr", { class: o.is_active ? "" : "inactive" },
          h("td", {}, o.name), h("td", {}, o.email), h("td", {}, role),
          h("td", {}, o.is_active ? availabilityName(o.availability) : t("admin.deactivated")),
          h("td", {}, o.id === state.me.id ? "" : h("button", { type: "button",
            onclick: () => this.update(o.id, { is_active: !o.is_active }) }, o.is_active ? t("admin.deactivate") : t("admin.reactivate")))));
      }
    } catch (err) { toast(err.message); }
  }

  async update(id, body) {
    try {
      await patch(`/operators/${id}`, body);
    } catch (err) { toast(err.message); }
    this.loadTeam();
  }

  async loadReplies() {
    try {
      const items = (await get("/saved-replies")).items;
      state.savedReplies = items;
      clear(this.replies);
      for (const r of items) {
        const text = h("textarea", { rows: 2, "aria-label": t("admin.text_of", { shortcut: r.shortcut }) });
        text.value = r.text;
        this.replies.append(h("tr", {}, h("th", {}, `/${r.shortcut}`), h("td", {}, text),
          h("td", {}, h("button", { type: "button", onclick: async () => {
            try { await patch(`/saved-replies/${r.id}`, { text: text.value }); this.loadReplies(); } catch (err) { toast(err.message); }
          } }, t("common.save")), h("button", { type: "button", onclick: async () => {
            try { await del(`/saved-replies/${r.id}`); this.loadReplies(); } catch (err) { toast(err.message); }
          } }, t("common.delete")))));
      }
    } catch (err) { toast(err.message); }
  }
}
