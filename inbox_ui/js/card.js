// The contact card: who they are, how each identity was linked, where they came from, what
// they did (events, filterable), what we sent them unprompted, and merges.

import { get, patch, post, query } from "./api.js";
import { h, clear, fmtTime, safeUrl, toast, contactName } from "./dom.js";
import { canWrite } from "./state.js";
import { channelName, deliveryName, fmtAgo, fmtNumber, t } from "./i18n.js";
import { BehaviourSummary } from "./card_behaviour.js";

function identityName(kind) {
  return {
    visitor: t("identity.visitor"), user_id: t("identity.user_id"), email: t("field.email"), phone: t("field.phone"),
    telegram: t("channel.telegram"), vk: t("channel.vk"),
  }[kind] || kind;
}

// How an identity was linked is stored as an English phrase; the ones the server writes are
// told in the operator's language, anything else as stored.
const LINKED = [
  [/^first visit$/, () => t("linked.first_visit")],
  [/^identify$/, () => t("linked.identify")],
  [/^first message on (Telegram|VK|email)$/, (m) => t("linked.first_message", { channel: channelName(m[1].toLowerCase()) })],
  [/^email reply in the contact's thread$/, () => t("linked.email_thread")],
  [/^email from the contact's address$/, () => t("linked.email_address")],
  [/^merge: (.*)$/s, (m) => t("linked.merge", { reason: m[1] })],
];

function linkedReason(text) {
  if (!text) return t("card.unknown");
  for (const [pattern, say] of LINKED) {
    const match = pattern.exec(text);
    if (match) return say(match);
  }
  return text;
}

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

// A property's value for people: a page as a link named by its title, any other object as
// "key: value" lines (last_utm: source / medium / campaign), a list as its items; never JSON.
function propertyValue(v) {
  if (v === null || v === undefined) return "";
  if (Array.isArray(v)) {
    return v.every((x) => x === null || typeof x !== "object") ? v.join(", ") : h("div", { class: "prop-lines" }, v.map((x) => h("div", {}, propertyValue(x))));
  }
  if (typeof v !== "object") return String(v);
  if (typeof v.url === "string" && v.url) {
    const safe = safeUrl(v.url);
    const name = typeof v.title === "string" && v.title.trim() ? v.title.trim() : v.url;
    const rest = Object.entries(v).filter(([k]) => k !== "url" && k !== "title");
    const page = safe ? h("a", { href: safe, target: "_blank", rel: "noopener noreferrer", title: v.url }, name) : `${name} (${v.url})`;
    return rest.length ? h("div", { class: "prop-lines" }, h("div", {}, page), propertyLines(rest)) : page;
  }
  return h("div", { class: "prop-lines" }, propertyLines(Object.entries(v)));
}

function propertyLines(entries) {
  return entries.map(([k, x]) => h("div", { class: "prop-line" }, `${k}: `, propertyValue(x)));
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
    this.el = h("aside", { class: "card", "aria-label": t("card.label") }, h("p", { class: "muted" }, t("common.loading")));
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
    this.eventsMore = h("button", { type: "button", hidden: true, onclick: () => this.loadEvents(true) }, t("card.more_events"));
    this.eventNames = h("select", { "aria-label": t("card.filter_events"), onchange: (e) => { this.eventFilter = e.target.value; this.loadEvents(); } },
      h("option", { value: "" }, t("card.all_events")));
    this.proactiveBox = h("ul", { class: "proactive" });
    const utm = Object.entries(c.first_utm || {});
    clear(this.el).append(
      h("h2", { class: "contact-name" }, contactName(c)),
      h("table", { class: "facts" },
        row(t("field.email"), c.email), row(t("field.phone"), c.phone), row(t("card.contact"), `#${c.id}`),
        row(t("field.lead_score"), fmtNumber(c.score))),
      new BehaviourSummary(c.id).el,
      canWrite() ? this.editForm(c) : null,
      h("h3", {}, t("card.identities")),
      h("ul", { class: "identities" }, this.card.identities.map((i) => h("li", {},
        h("b", {}, identityName(i.kind)), " ", h("span", { class: "value" }, i.value),
        i.state === "blocked" ? h("span", { class: "tag blocked" }, t("card.blocked_us")) : null,
        h("div", { class: "muted" }, t("card.linked", { reason: linkedReason(i.linked_reason), time: fmtTime(i.created_at) }))))),
      h("h3", {}, t("card.origin")),
      h("table", { class: "facts system" },
        utm.length ? h("tr", {}, h("th", {}, t("card.first_utm")), h("td", { class: "utm" },
          utm.map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`)))) : null,
        row(t("field.first_referrer"), c.first_referrer ? link(c.first_referrer) : null),
        row(t("field.landing_page"), c.first_landing_page ? link(c.first_landing_page) : null),
        row(t("field.sessions"), fmtNumber(c.sessions)),
        row(t("field.first_seen"), fmtTime(c.first_seen_at)),
        row(t("field.last_seen"), c.last_seen_at ? h("time", { datetime: c.last_seen_at, title: fmtTime(c.last_seen_at) }, fmtAgo(c.last_seen_at)) : null),
        row(t("card.language"), c.properties.language ? valueText(c.properties.language) : null),
        row(t("card.browser"), c.properties.browser ? valueText(c.properties.browser) : null)),
      h("h3", {}, t("card.properties")),
      this.propertiesView(c),
      h("h3", {}, t("card.events")),
      this.eventNames, this.eventsBox, this.eventsMore,
      h("h3", {}, t("card.proactive")), this.proactiveBox,
      h("h3", {}, t("card.merges")),
      this.card.merges.length
        ? h("ul", { class: "merges" }, this.card.merges.map((m) => h("li", {},
          t("card.merged", { id: m.merged_id, time: fmtTime(m.created_at), reason: m.reason }),
          m.identity_kind ? t("card.merged_through", { kind: identityName(m.identity_kind), value: m.identity_value }) : "")))
        : h("p", { class: "muted" }, t("card.no_merges")),
      canWrite() ? this.mergeForm() : null,
    );
  }

  editForm(c) {
    const form = h("form", { class: "edit-contact" },
      h("label", {}, t("field.name"), " ", h("input", { name: "name", value: c.name || "", maxlength: 200 })),
      h("label", {}, t("field.email"), " ", h("input", { name: "email", type: "email", value: c.email || "", maxlength: 320 })),
      h("label", {}, t("field.phone"), " ", h("input", { name: "phone", value: c.phone || "", maxlength: 50 })),
      h("button", { type: "submit" }, t("common.save")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = form.elements;
      await this.save({ name: f.name.value, email: f.email.value, phone: f.phone.value });
    });
    return h("details", { class: "edit" }, h("summary", {}, t("card.edit")), form);
  }

  propertiesView(c) {
    const entries = Object.entries(c.properties || {});
    const table = h("table", { class: "facts properties" }, entries.map(([k, v]) => h("tr", {},
      h("th", {}, k), h("td", {}, propertyValue(v)),
      canWrite() ? h("td", {}, h("button", { type: "button", class: "link", title: t("common.remove", { name: k }),
        onclick: () => this.save({ properties: { [k]: null } }) }, "×")) : null)));
    if (!canWrite()) return entries.length ? table : h("p", { class: "muted" }, t("card.no_properties"));
    const form = h("form", { class: "add-property" },
      h("input", { name: "key", placeholder: t("card.property"), "aria-label": t("card.property"), required: true, maxlength: 100 }),
      h("input", { name: "value", placeholder: t("card.value"), "aria-label": t("card.value"), required: true }),
      h("button", { type: "submit" }, t("card.set")));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.save({ properties: { [form.elements.key.value.trim()]: parseValue(form.elements.value.value) } });
    });
    return h("div", {}, table, form);
  }

  mergeForm() {
    const form = h("form", { class: "merge-form" },
      h("input", { name: "other", type: "number", min: 1, placeholder: t("card.merge_other"), "aria-label": t("card.merge_other"), required: true }),
      h("input", { name: "reason", placeholder: t("card.merge_reason"), "aria-label": t("card.merge_reason"), required: true, maxlength: 200 }),
      h("button", { type: "submit" }, t("card.merge_submit")));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const other = Number(form.elements.other.value);
      if (!confirm(t("card.merge_confirm", { other, id: this.contactId }))) return;
      try {
        await post(`/contacts/${this.contactId}/merge`, { other_contact_id: other, reason: form.elements.reason.value });
        await this.load();
        this.onChanged();
      } catch (err) { toast(err.message); }
    });
    return h("details", { class: "edit" }, h("summary", {}, t("card.merge_title")), form);
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
      if (!this.eventsBox.children.length) this.eventsBox.append(h("li", { class: "muted" }, t("card.no_events")));
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
          h("div", { class: "muted" }, `${channelName(p.channel)}, ${deliveryName(p.delivery_state)}`,
            p.replied_at ? t("card.replied", { time: fmtTime(p.replied_at), text: p.reply_text }) : t("card.no_reply"))));
      }
      if (!list.items.length) this.proactiveBox.append(h("li", { class: "muted" }, t("card.none_sent")));
      for (const u of list.unsubscribed || []) {
        this.proactiveBox.append(h("li", { class: "unsubscribed" },
          t("card.unsubscribed", { channel: channelName(u.channel), time: fmtTime(u.at) })));
      }
    } catch (err) { toast(err.message); }
  }

  channels() {
    const map = { visitor: "widget", telegram: "telegram", vk: "vk", email: "email" };
    return new Set((this.card?.identities || []).map((i) => map[i.kind]).filter(Boolean));
  }

  // Channels on which the person blocked us (a Telegram bot blocked, VK messages denied).
  blockedChannels() {
    const kinds = (this.card?.identities || []).map((i) => [i.kind, i.state]);
    const reachable = new Set(kinds.filter(([, state]) => state !== "blocked").map(([kind]) => kind));
    return new Set(kinds.filter(([kind, state]) => state === "blocked" && !reachable.has(kind)).map(([kind]) => kind));
  }
}
