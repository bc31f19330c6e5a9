// Before switching a trigger on: "explain" checks each of its conditions against one contact
// (✓ / ✗ and the value seen), and the dry run replays the last days of events through it.

import { get, post, query } from "./api.js";
import { h, append, clear } from "./dom.js";
import { fmtTime, t } from "./i18n.js";
import { ContactPicker } from "./contact_picker.js";

// The unsaved dry run takes the definition alone: the name and the switch are not part of it.
const unsaved = ({ name, enabled, ...definition }) => definition;

export class TriggerTools {
  // trigger: the saved trigger, or null (then only the dry run of the unsaved definition works);
  // definition: () => what the form means now.
  constructor(trigger, definition) {
    this.trigger = trigger;
    this.definition = definition;
    this.picker = new ContactPicker();
    this.days = h("input", { type: "number", min: 1, max: 90, value: "7", class: "dry-run-days", "aria-label": t("triggers.dry_run_days") });
    this.explained = h("div", { class: "explain-result", "aria-live": "polite" });
    this.ran = h("div", { class: "dry-run-result", "aria-live": "polite" });
    this.el = h("fieldset", { class: "trigger-tools" }, h("legend", {}, t("triggers.section.check")),
      trigger ? h("div", { class: "explain" }, this.picker.el,
        h("button", { type: "button", class: "explain-button", onclick: () => this.explain() }, t("triggers.explain")),
        this.explained) : h("p", { class: "muted" }, t("triggers.explain_saved_only")),
      h("div", { class: "dry-run" }, h("label", {}, `${t("triggers.dry_run_days")} `, this.days),
        h("button", { type: "button", class: "dry-run-button", onclick: () => this.dryRun() }, t("triggers.dry_run")),
        this.ran));
  }

  async explain() {
    clear(this.explained).classList.remove("error");
    const contactId = this.picker.contactId;
    if (!contactId) { this.explained.textContent = t("triggers.pick_contact"); return; }
    try {
      const result = await get(`/triggers/${this.trigger.id}/explain${query({ contact_id: contactId })}`);
      const line = (c) => h("li", { class: c.ok ? "ok" : "failed" }, h("span", { class: "mark" }, c.ok ? "✓" : "✗"), " ",
        h("span", { class: "condition" }, c.condition), h("span", { class: "muted value" }, ` ${t("triggers.value")}: ${c.value}`));
      this.explained.append(
        h("p", { class: "verdict" }, result.would_send_now ? t("triggers.would_fire") : t("triggers.would_not_fire")),
        h("ul", { class: "conditions" }, [...result.conditions, ...result.limits, result.hours].map(line)),
        h("p", { class: "muted" }, t("triggers.explain_channel", { channel: result.channel.chosen || "—", why: result.channel.why || "" })));
    } catch (err) {
      this.explained.classList.add("error");
      this.explained.textContent = err.message;
    }
  }

  async dryRun() {
    clear(this.ran).classList.remove("error");
    const days = Number(this.days.value) || 7;
    try {
      const result = this.trigger
        ? await post(`/triggers/${this.trigger.id}/dry-run`, { days })
        : await post("/triggers/dry-run", { ...unsaved(this.definition()), days });
      if (!result.supported) {
        this.ran.append(h("p", { class: "summary" }, t("triggers.dry_run_unsupported", { reason: result.reason })));
        return;
      }
      append(this.ran, [h("p", { class: "summary" }, t("triggers.dry_run_result", { count: result.fired, contacts: result.contacts, days })),
        result.control ? h("p", { class: "muted" }, t("triggers.dry_run_control", { count: result.control })) : null,
        result.sample.length ? h("ul", { class: "sample" }, result.sample.map((x) => h("li", {},
          h("a", { href: `#/contacts/${x.contact_id}` }, t("contact.visitor", { id: x.contact_id })),
          ` · ${fmtTime(x.at)}${x.variant ? ` · ${x.variant}` : ""}`))) : null]);
    } catch (err) {
      this.ran.classList.add("error");
      this.ran.textContent = err.message;
    }
  }
}
