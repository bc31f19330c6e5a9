// Pick a contact by name, email or phone: a search box and the matching contacts (newest first).

import { get, query } from "./api.js";
import { h, clear, contactName, toast } from "./dom.js";
import { t } from "./i18n.js";

export class ContactPicker {
  constructor() {
    this.choice = h("select", { class: "contact-choice", "aria-label": t("triggers.contact") });
    this.search = h("input", { type: "search", class: "contact-search", placeholder: t("triggers.find_contact"),
      "aria-label": t("triggers.find_contact"), oninput: () => {
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.load(), 250);
      } });
    this.el = h("span", { class: "contact-picker" }, this.search, this.choice);
    this.load();
  }

  get contactId() {
    return this.choice.value ? Number(this.choice.value) : null;
  }

  async load() {
    const asked = this.search.value.trim();
    let items;
    try {
      items = (await get(`/contacts${query({ q: asked, limit: 20 })}`)).items;
    } catch (err) { toast(err.message); return; }
    if (asked !== this.search.value.trim()) return;
    clear(this.choice).append(...(items.length
      ? items.map((c) => h("option", { value: c.id }, `${contactName(c)} #${c.id}`))
      : [h("option", { value: "" }, t("triggers.no_contacts"))]));
  }
}
