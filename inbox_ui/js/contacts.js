// Contacts for sales reps: search, filters on fields, properties and events (AND), chosen
// columns, CSV export; a click opens the full card with the whole conversation.

import { get, post, request } from "./api.js";
import { h, clear, fmtTime, toast, contactName } from "./dom.js";
import { ContactCard } from "./card.js";
import { Thread } from "./thread.js";
import { fmtNumber, t } from "./i18n.js";

const COLUMNS = () => [
  ["name", t("field.name")], ["email", t("field.email")], ["phone", t("field.phone")], ["score", t("field.score")],
  ["sessions", t("field.sessions")], ["last_seen_at", t("field.last_seen")], ["first_seen_at", t("field.first_seen")],
  ["first_referrer", t("field.first_referrer")], ["first_landing_page", t("field.landing_page")], ["id", t("field.id")],
];
const chosen = new Set(["name", "email", "phone", "score", "last_seen_at"]);
const propertyColumns = []; // keys of properties shown as columns too
let savedConditions = [];
let savedSearch = "";
let savedSegment = null; // the segment the list is narrowed to (its own definition, on the server)

// The segments page opens a segment's contacts here.
export function showSegment(id) {
  savedSegment = id;
  location.hash = "#/contacts";
}

const KINDS = {
  field: { label: () => t("cond.field"), ops: ["is_set", "not_set", "eq", "ne", "contains"] },
  number: { label: () => t("cond.number"), ops: ["gt", "gte", "lt", "lte", "eq", "ne"] },
  time: { label: () => t("cond.time"), ops: ["within_days", "older_than_days"] },
  property: { label: () => t("cond.property"), ops: ["is_set", "not_set", "eq", "ne", "contains", "gt", "gte", "lt", "lte"] },
  event: { label: () => t("cond.event"), ops: ["at_least", "never"] },
};
const OP_SYMBOL = { eq: "=", ne: "≠", gt: ">", gte: "≥", lt: "<", lte: "≤" };
function opLabel(op) {
  return OP_SYMBOL[op] || {
    is_set: t("op.is_set"), not_set: t("op.not_set"), contains: t("op.contains"), within_days: t("op.within_days"),
    older_than_days: t("op.older_than_days"), at_least: t("op.at_least"), never: t("op.never"),
  }[op] || op;
}

function select(name, options, value, label) {
  return h("select", { name, "aria-label": label || name },
    options.map(([v, l]) => h("option", { value: v, selected: v === value }, l)));
}

function conditionRow(cond, onChange, onRemove) {
  const row = h("div", { class: "condition" });
  const render = () => {
    clear(row);
    const kind = select("kind", Object.entries(KINDS).map(([k, v]) => [k, v.label()]), cond.kind, t("cond.kind"));
    kind.addEventListener("change", () => { Object.keys(cond).forEach((k) => delete cond[k]); Object.assign(cond, defaults(kind.value)); render(); onChange(); });
    row.append(kind);
    const bind = (el, key, parse = (v) => v) => {
      el.addEventListener("change", () => {
        const v = el.value;
        if (v === "") delete cond[key]; else cond[key] = parse(v);
        // Only a new operator changes which inputs the row has; re-rendering on every value
        // would pull the focused input out from under the user.
        if (key === "op") render();
        onChange();
      });
      return el;
    };
    const op = bind(select("op", KINDS[cond.kind].ops.map((o) => [o, opLabel(o)]), cond.op, t("cond.operator")), "op");
    if (cond.kind === "field") {
      row.append(bind(select("field", ["email", "name", "phone", "first_referrer", "first_landing_page"].map((f) => [f, fieldName(f)]), cond.field, t("cond.field")), "field"), op);
      if (["eq", "ne", "contains"].includes(cond.op)) row.append(bind(h("input", { name: "value", value: cond.value || "", placeholder: t("card.value"), "aria-label": t("card.value") }), "value"));
    } else if (cond.kind === "number") {
      row.append(bind(select("field", [["score", t("field.lead_score")], ["sessions", t("field.sessions")]], cond.field, t("cond.field")), "field"), op,
        bind(h("input", { name: "value", type: "number", value: cond.value ?? 0, "aria-label": t("card.value") }), "value", Number));
    } else if (cond.kind === "time") {
      row.append(bind(select("field", [["last_seen_at", t("field.last_seen")], ["first_seen_at", t("field.first_seen")]], cond.field, t("cond.field")), "field"), op,
        bind(h("input", { name: "days", type: "number", min: 1, value: cond.days ?? 30, "aria-label": t("cond.days") }), "days", Number));
    } else if (cond.kind === "property") {
      row.append(bind(h("input", { name: "key", value: cond.key || "", placeholder: t("card.property"), "aria-label": t("cond.property") }), "key"), op);
      if (!["is_set", "not_set"].includes(cond.op)) {
        const numeric = ["gt", "gte", "lt", "lte"].includes(cond.op);
        row.append(bind(h("input", { name: "value", type: numeric ? "number" : "text", value: cond.value ?? "", "aria-label": t("card.value") }), "value",
          (v) => (numeric || /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v)));
      }
    } else {
      row.append(bind(h("input", { name: "name", value: cond.name || "", placeholder: t("cond.event_placeholder"), "aria-label": t("cond.event") }), "name"), op);
      if (cond.op === "at_least") row.append(bind(h("input", { name: "count", type: "number", min: 1, value: cond.count ?? 1, "aria-label": t("cond.times_label"), size: 3 }), "count", Number), " ", t("cond.times"));
      row.append(" ", t("cond.url_contains"), " ", bind(h("input", { name: "url_contains", value: cond.url_contains || "", placeholder: "/pricing", "aria-label": t("cond.url_contains") }), "url_contains"),
        " ", t("cond.within"), " ", bind(h("input", { name: "within_days", type: "number", min: 1, value: cond.within_days ?? "", placeholder: t("cond.any"), "aria-label": t("cond.within_label"), size: 4 }), "within_days", Number), " ", t("cond.days_suffix"));
    }
    row.append(h("button", { type: "button", class: "link", title: t("cond.remove"), onclick: onRemove }, "×"));
  };
  render();
  return row;
}

function fieldName(field) {
  return Object.fromEntries(COLUMNS())[field] || field;
}

function defaults(kind) {
  return {
    field: { kind, field: "email", op: "is_set" },
    number: { kind, field: "score", op: "gt", value: 0 },
    time: { kind, field: "last_seen_at", op: "within_days", days: 30 },
    property: { kind, key: "", op: "is_set" },
    event: { kind, name: "Page viewed", op: "at_least", count: 1 },
  }[kind];
}

export class ContactsPage {
  constructor(main, contactId) {
    this.main = main;
    if (contactId) { this.showContact(contactId); return; }
    this.conditions = savedConditions;
    this.rows = [];
    this.conditionsBox = h("div", { class: "conditions" });
    this.table = h("table", { class: "contacts-table" });
    this.more = h("button", { type: "button", hidden: true, onclick: () => this.load(true) }, t("common.load_more"));
    this.count = h("span", { class: "muted" });
    const search = h("input", { type: "search", placeholder: t("contacts.search_placeholder"), value: savedSearch, "aria-label": t("contacts.search") });
    search.addEventListener("input", () => { savedSearch = search.value.trim(); clearTimeout(this.timer); this.timer = setTimeout(() => this.load(), 250); });
    const addProperty = h("form", { class: "add-column" },
      h("input", { name: "key", placeholder: t("contacts.property_column"), maxlength: 100, "aria-label": t("contacts.property_column") }),
      h("button", { type: "submit" }, t("contacts.add")));
    addProperty.addEventListener("submit", (e) => {
      e.preventDefault();
      const key = addProperty.elements.key.value.trim();
      if (key && !propertyColumns.includes(key)) propertyColumns.push(key);
      addProperty.reset();
      this.renderTable();
    });
    const columns = h("details", { class: "columns" }, h("summary", {}, t("contacts.columns")), COLUMNS().map(([key, label]) => h("label", {},
      h("input", { type: "checkbox", checked: chosen.has(key), onchange: (e) => { if (e.target.checked) chosen.add(key); else chosen.delete(key); this.renderTable(); } }), ` ${label}`)),
    addProperty);
    const segment = h("select", { class: "segment-filter", "aria-label": t("contacts.segment"), onchange: (e) => {
      savedSegment = Number(e.target.value) || null; this.load();
    } }, h("option", { value: "" }, t("contacts.all_contacts")));
    get("/segments").then(({ items }) => {
      for (const sg of items) segment.append(h("option", { value: sg.id, selected: sg.id === savedSegment }, t("contacts.segment_option", { name: sg.name, count: sg.count })));
    }).catch((err) => toast(err.message));
    main.append(h("div", { class: "contacts-page" },
      h("div", { class: "toolbar" }, search, segment, columns,
        h("button", { type: "button", class: "export", onclick: () => this.exportCsv() }, t("contacts.export")), this.count),
      h("div", { class: "filter" }, h("b", {}, t("contacts.filter")), this.conditionsBox,
        h("button", { type: "button", class: "add-condition", onclick: () => { this.conditions.push(defaults("field")); this.renderConditions(); } }, t("contacts.add_condition")),
        h("button", { type: "button", class: "apply", onclick: () => this.load() }, t("contacts.apply"))),
      this.table, this.more));
    this.renderConditions();
    this.load();
  }

  renderConditions() {
    clear(this.conditionsBox);
    this.conditions.forEach((cond, i) => this.conditionsBox.append(conditionRow(cond, () => {}, () => {
      this.conditions.splice(i, 1);
      this.renderConditions();
    })));
  }

  body() {
    return { filter: { all: this.conditions }, q: savedSearch || null, segment_id: savedSegment };
  }

  async load(more = false) {
    try {
      const page = await post("/contacts/search", { ...this.body(), limit: 50, cursor: more ? this.cursor : null });
      this.rows = more ? [...this.rows, ...page.items] : page.items;
      this.cursor = page.next_cursor ? Number(page.next_cursor) : null;
      this.more.hidden = !this.cursor;
      this.renderTable();
    } catch (err) { toast(err.message); }
  }

  columns() {
    return [...COLUMNS().filter(([key]) => chosen.has(key)), ...propertyColumns.map((k) => [`property:${k}`, k])];
  }

  renderTable() {
    const cols = this.columns();
    const cell = (c, key) => {
      if (key.startsWith("property:")) {
        const v = c.properties[key.slice(9)];
        return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
      }
      if (key === "score" || key === "sessions") return fmtNumber(c[key]);
      return key.endsWith("_at") ? fmtTime(c[key]) : key === "name" ? contactName(c) : c[key] ?? "";
    };
    clear(this.table).append(
      h("thead", {}, h("tr", {}, cols.map(([, label]) => h("th", {}, label)))),
      h("tbody", {}, this.rows.map((c) => h("tr", { class: "contact-row", dataset: { id: c.id }, tabindex: 0,
        onclick: () => { location.hash = `#/contacts/${c.id}`; } },
      cols.map(([key]) => h("td", {}, cell(c, key)))))));
    const count = { count: this.rows.length };
    this.count.textContent = this.cursor ? t("contacts.count_more", count) : t("contacts.count", count);
  }

  async exportCsv() {
    try {
      const columns = this.columns().map(([key]) => key);
      const response = await request("POST", "/contacts/export", { ...this.body(), columns }, { raw: true });
      const blob = await response.blob();
      const a = h("a", { href: URL.createObjectURL(blob), download: "contacts.csv" });
      document.body.append(a);
      a.click();
      a.remove();
    } catch (err) { toast(err.message); }
  }

  leave() {
    savedConditions = this.conditions || savedConditions;
  }

  async showContact(id) {
    const card = new ContactCard(id);
    const back = h("a", { href: "#/contacts" }, t("contacts.back"));
    const history = h("section", { class: "thread-pane" }, h("p", { class: "muted" }, t("contacts.loading_conversation")));
    this.main.append(h("div", { class: "contact-page" }, h("div", {}, back, history), card.el));
    await card.ready;
    const conv = card.card?.conversation;
    if (!conv) {
      clear(history).append(back, h("p", { class: "muted" }, t("contacts.no_conversation")));
      return;
    }
    const thread = new Thread(conv.id);
    clear(history).append(back, h("h2", {}, t("contacts.conversation_with", { name: contactName(conv.contact) })), thread.el);
    try { await thread.load(); } catch (err) { toast(err.message); }
  }
}

