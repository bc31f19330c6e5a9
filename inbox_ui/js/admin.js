// Admin: the team (invite, role, deactivate), saved replies, the site's widget settings.

import { get, post, patch, del } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { state } from "./state.js";
import { SiteSettingsSection } from "./site.js";

export class AdminPage {
  constructor(main) {
    this.team = h("tbody");
    this.replies = h("tbody");
    const invite = h("form", { class: "invite" },
      h("input", { name: "name", placeholder: "Name", required: true, maxlength: 200 }),
      h("input", { name: "email", type: "email", placeholder: "Email", required: true }),
      h("input", { name: "password", type: "password", placeholder: "Initial password (8+)", required: true, minlength: 8 }),
      h("select", { name: "role", "aria-label": "Role" }, ["operator", "sales", "admin"].map((r) => h("option", { value: r }, r))),
      h("button", { type: "submit" }, "Invite"));
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
      h("input", { name: "shortcut", placeholder: "shortcut", required: true, maxlength: 50 }),
      h("textarea", { name: "text", placeholder: "Reply text", required: true, rows: 2 }),
      h("button", { type: "submit" }, "Add saved reply"));
    addReply.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await post("/saved-replies", { shortcut: addReply.elements.shortcut.value, text: addReply.elements.text.value });
        addReply.reset();
        this.loadReplies();
      } catch (err) { toast(err.message); }
    });
    main.append(h("div", { class: "admin-page" },
      h("h2", {}, "Team"), h("table", { class: "team" }, h("thead", {}, h("tr", {},
        ["Name", "Email", "Role", "Status", ""].map((t) => h("th", {}, t)))), this.team), invite,
      h("h2", {}, "Saved replies"), h("table", { class: "replies" }, this.replies), addReply,
      new SiteSettingsSection().el));
    this.loadTeam();
    this.loadReplies();
  }

  async loadTeam() {
    try {
      const team = (await get("/operators")).items;
      for (const o of team) state.operators.set(o.id, o);
      clear(this.team);
      for (const o of team) {
        const role = h("select", { "aria-label": `Role of ${o.name}`, disabled: o.id === state.me.id,
          onchange: (e) => this.update(o.id, { role: e.target.value }) },
        ["operator", "sales", "admin"].map((r) => h("option", { value: r, selected: r === o.role }, r)));
        this.team.append(h("tr", { class: o.is_active ? "" : "inactive" },
          h("td", {}, o.name), h("td", {}, o.email), h("td", {}, role),
          h("td", {}, o.is_active ? o.availability : "deactivated"),
          h("td", {}, o.id === state.me.id ? "" : h("button", { type: "button",
            onclick: () => this.update(o.id, { is_active: !o.is_active }) }, o.is_active ? "Deactivate" : "Reactivate"))));
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
        const text = h("textarea", { rows: 2, "aria-label": `Text of /${r.shortcut}` });
        text.value = r.text;
        this.replies.append(h("tr", {}, h("th", {}, `/${r.shortcut}`), h("td", {}, text),
          h("td", {}, h("button", { type: "button", onclick: async () => {
            try { await patch(`/saved-replies/${r.id}`, { text: text.value }); this.loadReplies(); } catch (err) { toast(err.message); }
          } }, "Save"), h("button", { type: "button", onclick: async () => {
            try { await del(`/saved-replies/${r.id}`); this.loadReplies(); } catch (err) { toast(err.message); }
          } }, "Delete"))));
      }
    } catch (err) { toast(err.message); }
  }
}
