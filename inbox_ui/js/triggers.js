// Triggers: automatic messages sent when a visitor does something (or stops doing it). Everyone
// sees the list and each trigger's results; admins create, edit, pause, duplicate and delete.

import { get, post, patch, del } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { fmtNumber, t } from "./i18n.js";
import { isAdmin } from "./state.js";
import { behaviourNames } from "./segments.js";
import { CHANNEL_LABEL, TriggerForm } from "./trigger_form.js";
import { renderTriggerResults } from "./trigger_results.js";

// The API keeps the definition apart from the trigger's own columns; the form sees them as one.
const flat = (trigger) => ({ id: trigger.id, name: trigger.name, enabled: trigger.enabled, ...trigger.definition });

export class TriggersPage {
  // arg/sub from the route: #/triggers, #/triggers/<id>/results.
  constructor(main, arg, sub) {
    this.main = main;
    if (arg && sub === "results") {
      this.results(Number(arg));
      return;
    }
    this.list = h("tbody");
    this.editor = h("div", { class: "trigger-editor" });
    main.append(h("div", { class: "triggers-page" },
      h("h2", {}, t("triggers.title")),
      isAdmin() ? h("div", { class: "toolbar" },
        h("button", { type: "button", class: "new-trigger", onclick: () => this.edit(null) }, t("triggers.add"))) : null,
      this.editor,
      h("table", { class: "triggers" }, h("thead", {}, h("tr", {},
        [t("triggers.name"), t("triggers.status"), t("triggers.channel"), t("triggers.matched"), t("triggers.sent"), ""]
          .map((text) => h("th", {}, text)))), this.list)));
    this.load();
  }

  // A trigger's results: their own page (trigger_results.js), with the way back to the list.
  results(id) {
    const box = h("div", { class: "trigger-results-page" });
    this.main.append(h("p", {}, h("a", { href: "#/triggers", class: "back" }, t("triggers.back"))), box);
    renderTriggerResults(box, id);
  }

  async load() {
    let items;
    try {
      items = (await get("/triggers")).items;
    } catch (err) { toast(err.message); return; }
    clear(this.list);
    if (!items.length) this.list.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("triggers.none"))));
    for (const tr of items) {
      const admin = isAdmin();
      this.list.append(h("tr", { dataset: { trigger: tr.id }, class: tr.enabled ? "active" : "paused" },
        h("td", { class: "name" }, tr.name),
        h("td", { class: "status" }, tr.enabled ? t("triggers.active") : t("triggers.paused")),
        h("td", { class: "channel" }, CHANNEL_LABEL[tr.definition.channel] || tr.definition.channel),
        h("td", { class: "matched" }, fmtNumber(tr.matched ?? 0)),
        h("td", { class: "sent" }, fmtNumber(tr.sent ?? 0)),
        h("td", { class: "actions" },
          h("a", { href: `#/triggers/${tr.id}/results`, class: "results" }, t("triggers.results")), " ",
          admin ? [
            h("button", { type: "button", class: "link edit", onclick: () => this.edit(tr) }, t("segments.edit")), " ",
            h("button", { type: "button", class: "link toggle", onclick: () => this.toggle(tr) },
              tr.enabled ? t("triggers.pause") : t("triggers.resume")), " ",
            h("button", { type: "button", class: "link duplicate", onclick: () => this.act(() => post(`/triggers/${tr.id}/duplicate`)) },
              t("triggers.duplicate")), " ",
            h("button", { type: "button", class: "link delete", onclick: () => this.remove(tr) }, t("common.delete"))] : null)));
    }
  }

  async edit(trigger) {
    let segments = [];
    const [names, full] = await Promise.all([behaviourNames(), trigger ? get(`/triggers/${trigger.id}`).catch(() => trigger) : null]);
    try { segments = (await get("/segments")).items; } catch (err) { toast(err.message); }
    const form = new TriggerForm(full && flat(full), { names, segments,
      onSaved: () => { clear(this.editor); this.load(); },
      onCancel: () => clear(this.editor) });
    clear(this.editor).append(h("h3", {}, trigger ? trigger.name : t("triggers.add")), form.el);
    form.el.querySelector(".trigger-name").focus();
  }

  toggle(trigger) {
    return this.act(() => patch(`/triggers/${trigger.id}`, { enabled: !trigger.enabled }));
  }

  async remove(trigger) {
    if (!confirm(t("triggers.confirm_delete", { name: trigger.name }))) return;
    await this.act(() => del(`/triggers/${trigger.id}`));
  }

  async act(doIt) {
    try { await doIt(); } catch (err) { toast(err.message); }
    this.load();
  }
}
