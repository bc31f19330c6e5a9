// The messages a trigger sends: up to five variants with weights (an A/B test when more than
// one), each previewed against a real contact as the server would render it.

import { post } from "./api.js";
import { h, clear } from "./dom.js";
import { t } from "./i18n.js";
import { newVariant } from "./trigger_definition.js";
import { check, field, input, select, textarea } from "./trigger_fields.js";
import { ContactPicker } from "./contact_picker.js";

const MAX_VARIANTS = 5;

export class VariantsEditor {
  // form: the trigger form's state (variants and channel are read and changed in place).
  constructor(form, { onChange }) {
    this.form = form;
    this.onChange = onChange;
    this.picker = new ContactPicker();
    this.list = h("div", { class: "variant-list" });
    this.total = h("output", { class: "weights-total", "aria-live": "polite" });
    this.el = h("div", { class: "variants-editor", dataset: { field: "variants" } },
      h("div", { class: "preview-contact" }, h("span", { class: "label" }, t("triggers.preview_as")), this.picker.el),
      this.list, this.total, h("span", { class: "field-error", role: "alert" }),
      h("button", { type: "button", class: "add-variant", onclick: () => this.add() }, t("triggers.add_variant")));
    this.render();
  }

  add() {
    const vs = this.form.variants;
    if (vs.length >= MAX_VARIANTS) return;
    const used = new Set(vs.map((v) => v.name));
    const name = [..."ABCDE"].find((n) => !used.has(n)) || String(vs.length + 1);
    vs.push(newVariant(name, 0));
    this.render();
  }

  render() {
    const vs = this.form.variants;
    const channel = this.form.channel;
    // A lead form is the point of that channel: every variant asks for something.
    if (channel === "lead_form") for (const v of vs) v.form_on = true;
    clear(this.list);
    vs.forEach((v, i) => {
      const path = `variants.${i}`;
      const result = h("div", { class: "preview-result", "aria-live": "polite" });
      this.list.append(h("div", { class: "variant", dataset: { field: path, variant: v.name } },
        field(`${path}.name`, t("triggers.variant_name"), input(v, "name", { label: t("triggers.variant_name"), maxlength: 50,
          class: "variant-name", onChange: () => this.onChange() })),
        field(`${path}.weight`, t("triggers.weight"), input(v, "weight", { type: "number", min: 1, max: 100,
          label: t("triggers.weight"), class: "variant-weight", onChange: () => this.changed() })),
        ["email", "best_available"].includes(channel)
          ? field(`${path}.subject`, t("triggers.subject"), input(v, "subject", { label: t("triggers.subject"), class: "variant-subject" })) : null,
        field(`${path}.text`, t("triggers.text"), textarea(v, "text", { label: t("triggers.text"), class: "variant-text" })),
        ["lead_form", "widget_popup"].includes(channel) ? this.formFields(v, path) : null,
        h("div", { class: "variant-actions" },
          h("button", { type: "button", class: "preview", onclick: () => this.preview(v, result) }, t("triggers.preview")),
          vs.length > 1 ? h("button", { type: "button", class: "link remove", onclick: () => { vs.splice(i, 1); this.render(); } },
            t("builder.remove")) : null),
        result));
    });
    this.changed();
  }

  formFields(v, path) {
    const box = h("span", {});
    const show = () => clear(box).append(...(v.form_on ? [
      select(v, "form_field", [["email", t("field.email")], ["phone", t("triggers.phone")]], { label: t("triggers.form_field") }),
      input(v, "form_button", { label: t("triggers.form_button"), placeholder: t("triggers.form_button"), maxlength: 50 })] : []));
    show();
    return h("div", { class: "variant-form", dataset: { field: `${path}.form` } },
      check(v, "form_on", t("triggers.form_on"), { onChange: show }), box, h("span", { class: "field-error", role: "alert" }));
  }

  changed() {
    const total = this.form.variants.reduce((sum, v) => sum + (Number(v.weight) || 0), 0);
    this.total.textContent = t("triggers.weights_total", { total });
    this.total.classList.toggle("error", total !== 100);
    this.onChange();
  }

  async preview(v, result) {
    clear(result).classList.remove("error");
    const contactId = this.picker.contactId;
    if (!contactId) {
      result.classList.add("error");
      result.textContent = t("triggers.pick_contact");
      return;
    }
    try {
      const rendered = await post("/triggers/preview", { text: v.text, contact_id: contactId });
      result.append(h("div", { class: "preview-text" }, rendered.text));
    } catch (err) {
      result.classList.add("error");
      result.textContent = t("triggers.render_error", { error: err.message });
    }
  }
}
