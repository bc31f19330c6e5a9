// The contact card: who they are, how each identity was linked, where they came from, what
// they did (events, filterable), what we sent them unprompted, and merges.

import { get, patch, post, query } from "./api.js";
import { h, clear, fmtTime, safeUrl, toast, contactName } from "./dom.js";
import { canWrite } from "./state.js";
import { BehaviourSummary } from "./card_behaviour.js";

const IDENTITY_LABEL = { visitor: "Web visitor", user_id: "Site user id", email: "Email", phone: "Phone", telegram: "Telegram", vk: "VK" };

function row(label, value) {
  if (value === null || value === undefined || value === "") return null;
  return h("tr", {}, h("th", {}, label), h("td", {}, value));
}

function link(url) {
  const safe = safeUrl(url);
  return safe ? h("a", { href: safe, target: "_blank", rel: "noopener noreferrer" }, url) : url;
}

function valueText(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function parseValue(text) {
  const t = text.trim();
  if (t === "true" || t === "false") return t === "true";
  if (/^-?\d+(\.\d+)?$/.test(t)) return Number(t);
  return text;
}

export class ContactCard {
  constructor(contactId, { onChanged } = {}) {
    this.contactId = contactId;
    this.onChanged = onChanged || (() => {});
    this.el = h("aside", { class: "card", "aria-label": "Contact card" }, h("p", { class: "muted" }, "Loading…"));
    this.eventFilter = "";
    this.ready = this.load();
  }

  async load() {
    try {
      this.card = await get(`/contacts/${this.contactId}`);
      this.contactId = this.card.contact.id;
      this.render();
      this.loadEvents();
      this.loadProactive();
    } catch (err) {
      clear(this.el).append(h("p", { class: "error" }, err.message));
    }
  }

  render() {
    const c = this.card.contact;
    this.eventsBox = h("ol", { class: "events" });
    this.eventsMore = h("button", { type: "button", hidden: true, onclick: () => this.loadEvents(true) }, "More events");
    this.eventNames = h("select", { "aria-label": "Filter events", onchange: (e) => { this.eventFilter = e.target.value; this.loadEvents(); } },
      h("option", { value: "" }, "All events"));
    this.proactiveBox = h("ul", { class: "proactive" });
    const utm = Object.entries(c.first_utm || {});
    clear(this.el).append(
      h("h2", { class: "contact-name" }, contactName(c)),
      h("table", { class: "facts" },
        row("Email", c.email), row("Phone", c.phone), row("Contact", `#${c.id}`),
        row("Lead score", String(c.score))),
      new BehaviourSummary(c.id).el,
      canWrite() ? this.editForm(c) : null,
      h("h3", {}, "Identities"),
      h("ul", { class: "identities" }, this.card.identities.map((i) => h("li", {},
        h("b", {}, IDENTITY_LABEL[i.kind] || i.kind), " ", h("span", { class: "value" }, i.value),
        h("div", { class: "muted" }, `linked by ${i.linked_reason || "unknown"} · ${fmtTime(i.created_at)}`)))),
      h("h3", {}, "Where they came from"),
      h("table", { class: "facts system" },
        utm.length ? h("tr", {}, h("th", {}, "First UTM"), h("td", { class: "utm" },
          utm.map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`)))) : null,
        row("First referrer", c.first_referrer ? link(c.first_referrer) : null),
        row("Landing page", c.first_landing_page ? link(c.first_landing_page) : null),
        row("Sessions", String(c.sessions)),
        row("First seen", fmtTime(c.first_seen_at)),
        row("Last seen", fmtTime(c.last_seen_at)),
        row("Language", c.properties.language ? valueText(c.properties.language) : null),
        row("Browser", c.properties.browser ? valueText(c.properties.browser) : null)),
      h("h3", {}, "Properties"),
      this.propertiesView(c),
      h("h3", {}, "Events"),
      this.eventNames, this.eventsBox, this.eventsMore,
      h("h3", {}, "Proactive messages"), this.proactiveBox,
      h("h3", {}, "Merges"),
      this.card.merges.length
        ? h("ul", { class: "merges" }, this.card.merges.map((m) => h("li", {},
          `#${m.merged_id} merged in ${fmtTime(m.created_at)}: ${m.reason}`,
          m.identity_kind ? ` (through ${m.identity_kind} ${m.identity_value})` : "")))
        : h("p", { class: "muted" }, "No merges."),
      canWrite() ? this.mergeForm() : null,
    );
  }

  editForm(c) {
    const form = h("form", { class: "edit-contact" },
      h("label", {}, "Name ", h("input", { name: "name", value: c.name || "", maxlength: 200 })),
      h("label", {}, "Email ", h("input", { name: "email", type: "email", value: c.email || "", maxlength: 320 })),
      h("label", {}, "Phone ", h("input", { name: "phone", value: c.phone || "", maxlength: 50 })),
      h("button", { type: "submit" }, "Save"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = form.elements;
      await this.save({ name: f.name.value, email: f.email.value, phone: f.phone.value });
    });
    return h("details", { class: "edit" }, h("summary", {}, "Edit contact"), form);
  }

  propertiesView(c) {
    const entries = Object.entries(c.properties || {});
    const table = h("table", { class: "facts properties" }, entries.map(([k, v]) => h("tr", {},
      h("th", {}, k), h("td", {}, valueText(v)),
      canWrite() ? h("td", {}, h("button", { type: "button", class: "link", title: `Remove ${k}`,
        onclick: () => this.save({ properties: { [k]: null } }) }, "×")) : null)));
    if (!canWrite()) return entries.length ? table : h("p", { class: "muted" }, "No properties.");
    const form = h("form", { class: "add-property" },
      h("input", { name: "key", placeholder: "property", required: true, maxlength: 100 }),
      h("input", { name: "value", placeholder: "value", required: true }),
      h("button", { type: "submit" }, "Set"));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save({ properties: { [form.elements.key.value.trim()]: parseValue(form.elements.value.value) } });
    });
    return h("div", {}, table, form);
  }

  mergeForm() {
    const form = h("form", { class: "merge-form" },
      h("input", { name: "other", type: "number", min: 1, placeholder: "contact #", required: true }),
      h("input", { name: "reason", placeholder: "why (same person…)", required: true, maxlength: 200 }),
      h("button", { type: "submit" }, "Merge into this contact"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const other = Number(form.elements.other.value);
      if (!confirm(`Merge contact #${other} into #${this.contactId}? Their messages and events move here.`)) return;
      try {
        await post(`/contacts/${this.contactId}/merge`, { other_contact_id: other, reason: form.elements.reason.value });
        await this.load();
        this.onChanged();
      } catch (err) { toast(err.message); }
    });
    return h("details", { class: "edit" }, h("summary", {}, "Merge another contact"), form);
  }

  async save(fields) {
    try {
      this.card.contact = await patch(`/contacts/${this.contactId}`, fields);
      this.render();
      this.loadEvents();
      this.loadProactive();
      this.onChanged();
    } catch (err) {
      toast(err.message);
    }
  }

  async loadEvents(more = false) {
    const params = { name: this.eventFilter, limit: 30, before_id: more ? this.eventsBefore : "" };
    try {
      const page = await get(`/contacts/${this.contactId}/events${query(params)}`);
      if (!more) clear(this.eventsBox);
      if (this.eventNames.options.length === 1) {
        for (const name of page.names) this.eventNames.append(h("option", { value: name }, name));
      }
      for (const e of page.items) {
        const props = Object.entries(e.properties || {}).map(([k, v]) => `${k}: ${valueText(v)}`).join(", ");
        this.eventsBox.append(h("li", { class: "event" },
          h("time", { datetime: e.occurred_at }, fmtTime(e.occurred_at)), " ",
          h("b", {}, e.name), e.url ? h("div", { class: "url" }, link(e.url)) : null,
          props ? h("div", { class: "muted" }, props) : null));
      }
      if (!this.eventsBox.children.length) this.eventsBox.append(h("li", { class: "muted" }, "No events."));
      this.eventsBefore = page.next_before_id;
      this.eventsMore.hidden = !page.next_before_id;
    } catch (err) { toast(err.message); }
  }

  async loadProactive() {
    try {
      const list = await get(`/contacts/${this.contactId}/proactive`);
      clear(this.proactiveBox);
      for (const p of list.items) {
        this.proactiveBox.append(h("li", {},
          h("time", { datetime: p.sent_at }, fmtTime(p.sent_at)), " ", h("span", {}, p.text),
          h("div", { class: "muted" }, `${p.channel}, ${p.delivery_state}`,
            p.replied_at ? ` · replied ${fmtTime(p.replied_at)}: ${p.reply_text}` : " · no reply")));
      }
      if (!list.items.length) this.proactiveBox.append(h("li", { class: "muted" }, "None sent."));
    } catch (err) { toast(err.message); }
  }

  channels() {
    const map = { visitor: "widget", telegram: "telegram", vk: "vk", email: "email" };
    return new Set((this.card?.identities || []).map((i) => map[i.kind]).filter(Boolean));
  }
}
