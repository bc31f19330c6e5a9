// Contacts for sales reps: search, filters on fields, properties and events (AND), chosen
// columns, CSV export; a click opens the full card with the whole conversation.

import { get, post, request } from "./api.js";
import { h, clear, fmtTime, toast, contactName } from "./dom.js";
import { ContactCard } from "./card.js";
import { Thread } from "./thread.js";

const COLUMNS = [
  ["name", "Name"], ["email", "Email"], ["phone", "Phone"], ["score", "Score"], ["sessions", "Sessions"],
  ["last_seen_at", "Last seen"], ["first_seen_at", "First seen"], ["first_referrer", "First referrer"],
  ["first_landing_page", "Landing page"], ["id", "Id"],
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
  field: { label: "Field", ops: ["is_set", "not_set", "eq", "ne", "contains"] },
  number: { label: "Number", ops: ["gt", "gte", "lt", "lte", "eq", "ne"] },
  time: { label: "Seen", ops: ["within_days", "older_than_days"] },
  property: { label: "Property", ops: ["is_set", "not_set", "eq", "ne", "contains", "gt", "gte", "lt", "lte"] },
  event: { label: "Event", ops: ["at_least", "never"] },
};
const OP_LABEL = {
  is_set: "is set", not_set: "is not set", eq: "=", ne: "≠", contains: "contains", gt: ">", gte: "≥", lt: "<", lte: "≤",
  within_days: "within the last N days", older_than_days: "more than N days ago", at_least: "happened at least", never: "never happened",
};

function select(name, options, value, label) {
  return h("select", { name, "aria-label": label || name },
    options.map(([v, l]) => h("option", { value: v, selected: v === value }, l)));
}

function conditionRow(cond, onChange, onRemove) {
  const row = h("div", { class: "condition" });
  const render = () => {
    clear(row);
    const kind = select("kind", Object.entries(KINDS).map(([k, v]) => [k, v.label]), cond.kind, "Condition kind");
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
    const op = bind(select("op", KINDS[cond.kind].ops.map((o) => [o, OP_LABEL[o]]), cond.op, "Operator"), "op");
    if (cond.kind === "field") {
      row.append(bind(select("field", [["email", "Email"], ["name", "Name"], ["phone", "Phone"], ["first_referrer", "First referrer"], ["first_landing_page", "Landing page"]], cond.field, "Field"), "field"), op);
      if (["eq", "ne", "contains"].includes(cond.op)) row.append(bind(h("input", { name: "value", value: cond.value || "", placeholder: "value", "aria-label": "Value" }), "value"));
    } else if (cond.kind === "number") {
      row.append(bind(select("field", [["score", "Lead score"], ["sessions", "Sessions"]], cond.field, "Field"), "field"), op,
        bind(h("input", { name: "value", type: "number", value: cond.value ?? 0, "aria-label": "Value" }), "value", Number));
    } else if (cond.kind === "time") {
      row.append(bind(select("field", [["last_seen_at", "Last seen"], ["first_seen_at", "First seen"]], cond.field, "Field"), "field"), op,
        bind(h("input", { name: "days", type: "number", min: 1, value: cond.days ?? 30, "aria-label": "Days" }), "days", Number));
    } else if (cond.kind === "property") {
      row.append(bind(h("input", { name: "key", value: cond.key || "", placeholder: "property", "aria-label": "Property" }), "key"), op);
      if (!["is_set", "not_set"].includes(cond.op)) {
        const numeric = ["gt", "gte", "lt", "lte"].includes(cond.op);
        row.append(bind(h("input", { name: "value", type: numeric ? "number" : "text", value: cond.value ?? "", "aria-label": "Value" }), "value",
          (v) => (numeric || /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v)));
      }
    } else {
      row.append(bind(h("input", { name: "name", value: cond.name || "", placeholder: "event, e.g. Page viewed", "aria-label": "Event" }), "name"), op);
      if (cond.op === "at_least") row.append(bind(h("input", { name: "count", type: "number", min: 1, value: cond.count ?? 1, "aria-label": "Times", size: 3 }), "count", Number), " times");
      row.append(" URL contains ", bind(h("input", { name: "url_contains", value: cond.url_contains || "", placeholder: "/pricing", "aria-label": "URL contains" }), "url_contains"),
        " within ", bind(h("input", { name: "within_days", type: "number", min: 1, value: cond.within_days ?? "", placeholder: "any", "aria-label": "Within days", size: 4 }), "within_days", Number), " days");
    }
    row.append(h("button", { type: "button", class: "link", title: "Remove condition", onclick: onRemove }, "×"));
  };
  render();
  return row;
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
    this.more = h("button", { type: "button", hidden: true, onclick: () => this.load(true) }, "Load more");
    this.count = h("span", { class: "muted" });
    const search = h("input", { type: "search", placeholder: "Search name, email, phone", value: savedSearch, "aria-label": "Search contacts" });
    search.addEventListener("input", () => { savedSearch = search.value.trim(); clearTimeout(this.timer); this.timer = setTimeout(() => this.load(), 250); });
    const addProperty = h("form", { class: "add-column" },
      h("input", { name: "key", placeholder: "property column", maxlength: 100, "aria-label": "Property column" }),
      h("button", { type: "submit" }, "Add"));
    addProperty.addEventListener("submit", (e) => {
      e.preventDefault();
      const key = addProperty.elements.key.value.trim();
      if (key && !propertyColumns.includes(key)) propertyColumns.push(key);
      addProperty.reset();
      this.renderTable();
    });
    const columns = h("details", { class: "columns" }, h("summary", {}, "Columns"), COLUMNS.map(([key, label]) => h("label", {},
      h("input", { type: "checkbox", checked: chosen.has(key), onchange: (e) => { if (e.target.checked) chosen.add(key); else chosen.delete(key); this.renderTable(); } }), ` ${label}`)),
    addProperty);
    const segment = h("select", { class: "segment-filter", "aria-label": "Segment", onchange: (e) => {
      savedSegment = Number(e.target.value) || null; this.load();
    } }, h("option", { value: "" }, "All contacts"));
    get("/segments").then(({ items }) => {
      for (const sg of items) segment.append(h("option", { value: sg.id, selected: sg.id === savedSegment }, `${sg.name} (${sg.count})`));
    }).catch((err) => toast(err.message));
    main.append(h("div", { class: "contacts-page" },
      h("div", { class: "toolbar" }, search, segment, columns,
        h("button", { type: "button", class: "export", onclick: () => this.exportCsv() }, "Export CSV"), this.count),
      h("div", { class: "filter" }, h("b", {}, "Filter (all must hold)"), this.conditionsBox,
        h("button", { type: "button", class: "add-condition", onclick: () => { this.conditions.push(defaults("field")); this.renderConditions(); } }, "+ Condition"),
        h("button", { type: "button", class: "apply", onclick: () => this.load() }, "Apply")),
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
    return [...COLUMNS.filter(([key]) => chosen.has(key)), ...propertyColumns.map((k) => [`property:${k}`, k])];
  }

  renderTable() {
    const cols = this.columns();
    const cell = (c, key) => {
      if (key.startsWith("property:")) {
        const v = c.properties[key.slice(9)];
        return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
      }
      return key.endsWith("_at") ? fmtTime(c[key]) : key === "name" ? contactName(c) : c[key] ?? "";
    };
    clear(this.table).append(
      h("thead", {}, h("tr", {}, cols.map(([, label]) => h("th", {}, label)))),
      h("tbody", {}, this.rows.map((c) => h("tr", { class: "contact-row", dataset: { id: c.id }, tabindex: 0,
        onclick: () => { location.hash = `#/contacts/${c.id}`; } },
      cols.map(([key]) => h("td", {}, cell(c, key)))))));
    this.count.textContent = `${this.rows.length}${this.cursor ? "+" : ""} contacts`;
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
    const back = h("a", { href: "#/contacts" }, "← All contacts");
    const history = h("section", { class: "thread-pane" }, h("p", { class: "muted" }, "Loading the conversation…"));
    this.main.append(h("div", { class: "contact-page" }, h("div", {}, back, history), card.el));
    await card.ready;
    const conv = card.card?.conversation;
    if (!conv) {
      clear(history).append(back, h("p", { class: "muted" }, "No conversation with this contact yet."));
      return;
    }
    const thread = new Thread(conv.id);
    clear(history).append(back, h("h2", {}, `Conversation with ${contactName(conv.contact)}`), thread.el);
    try { await thread.load(); } catch (err) { toast(err.message); }
  }
}

