// The segment builder: a form for nested AND / OR groups of conditions (three levels at most),
// with the number of matching contacts counted live by the server while it is edited.

import { post } from "./api.js";
import { h, clear } from "./dom.js";
import { t } from "./i18n.js";

// Every sentence this module shows, in one place.
export const TEXT = {
  get all() { return t("builder.all"); },
  get any() { return t("builder.any"); },
  get addCondition() { return t("builder.add_condition"); },
  get addGroup() { return t("builder.add_group"); },
  get remove() { return t("builder.remove"); },
  get counting() { return t("builder.counting"); },
  get value() { return t("builder.value"); },
  get values() { return t("builder.values"); },
  get days() { return t("builder.days"); },
  get key() { return t("builder.key"); },
  get event() { return t("builder.event"); },
  get count() { return t("builder.count"); },
  get within() { return t("builder.within"); },
  get ever() { return t("builder.ever"); },
  get urlContains() { return t("builder.url_contains"); },
  get where() { return t("builder.where"); },
  get match() { return t("builder.match"); },
  get condition() { return t("builder.condition"); },
  get operator() { return t("builder.operator"); },
  get field() { return t("builder.field"); },
  get firstOrLast() { return t("builder.first_or_last"); },
  get segment() { return t("builder.segment"); },
  get unit() { return t("builder.unit"); },
  get eventOperator() { return t("builder.event_operator"); },
  get date() { return t("builder.date"); },
  get first() { return t("builder.first"); },
  get last() { return t("builder.last"); },
  get minutes() { return t("builder.minutes"); },
  get hours() { return t("builder.hours"); },
  contacts: (count) => t("builder.contacts", { count }),
};

const KINDS = {
  get field() { return t("builder.kind.field"); },
  get number() { return t("builder.kind.number"); },
  get time() { return t("builder.kind.time"); },
  get property() { return t("builder.kind.property"); },
  get event() { return t("builder.kind.event"); },
  get event_time() { return t("builder.kind.event_time"); },
  get grade() { return t("builder.kind.grade"); },
  get segment() { return t("builder.kind.segment"); },
};
const OPS = {
  field: ["is_set", "not_set", "eq", "ne", "contains", "in_list"],
  number: ["gt", "gte", "lt", "lte", "eq", "ne"],
  time: ["within_days", "older_than_days"],
  property: ["is_set", "not_set", "eq", "ne", "contains", "gt", "gte", "lt", "lte", "in_list", "before", "after",
    "within_days", "older_than_days"],
  event: ["at_least", "at_most", "exactly", "never"],
  event_time: ["less_than", "more_than"],
  grade: ["eq", "ne", "in_list", "is_set", "not_set"],
  segment: ["in", "not_in"],
};
const OP_LABEL = {
  get is_set() { return t("builder.op.is_set"); },
  get not_set() { return t("builder.op.not_set"); },
  get eq() { return t("builder.op.eq"); },
  get ne() { return t("builder.op.ne"); },
  get contains() { return t("builder.op.contains"); },
  get in_list() { return t("builder.op.in_list"); },
  get gt() { return t("builder.op.gt"); },
  get gte() { return t("builder.op.gte"); },
  get lt() { return t("builder.op.lt"); },
  get lte() { return t("builder.op.lte"); },
  get before() { return t("builder.op.before"); },
  get after() { return t("builder.op.after"); },
  get within_days() { return t("builder.op.within_days"); },
  get older_than_days() { return t("builder.op.older_than_days"); },
  get at_least() { return t("builder.op.at_least"); },
  get at_most() { return t("builder.op.at_most"); },
  get exactly() { return t("builder.op.exactly"); },
  get never() { return t("builder.op.never"); },
  get less_than() { return t("builder.op.less_than"); },
  get more_than() { return t("builder.op.more_than"); },
  get in() { return t("builder.op.in"); },
  get not_in() { return t("builder.op.not_in"); },
};
const FIELDS = {
  field: ["email", "name", "phone", "first_referrer", "first_landing_page"],
  number: ["score", "sessions"],
  time: ["last_seen_at", "first_seen_at"],
};
const GRADES = [..."ABCDE"].flatMap((f) => [1, 2, 3, 4].map((e) => f + e));

export function parseValue(text) {
  const trimmed = String(text).trim();
  if (trimmed === "true" || trimmed === "false") return trimmed === "true";
  if (/^-?\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  return String(text);
}

const list = (text) => String(text).split(",").map((v) => v.trim()).filter(Boolean);

export function newCondition(kind = "field") {
  const c = { kind, op: OPS[kind][0] };
  if (FIELDS[kind]) c.field = FIELDS[kind][0];
  if (kind === "number") c.value = 0;
  if (kind === "time") c.days = 14;
  if (kind === "property") c.key = "";
  if (kind === "event") Object.assign(c, { name: "", count: 1 });
  if (kind === "event_time") Object.assign(c, { name: "", which: "last", ago: { amount: 14, unit: "days" } });
  if (kind === "grade") c.values = ["A1"];
  if (kind === "segment") c.segment_id = null;
  return c;
}

export class SegmentBuilder {
  // names: {events: [...], properties: [...]} from the data page; segments: [{id, name}] it may read.
  constructor(definition, { names = { events: [], properties: [] }, segments = [], onChange = () => {} } = {}) {
    this.definition = structuredClone(definition || { kind: "group", match: "all", conditions: [] });
    this.definition.kind = "group";
    this.names = names;
    this.segments = segments;
    this.onChange = onChange;
    this.count = h("output", { class: "segment-count", "aria-live": "polite" });
    this.box = h("div", { class: "segment-groups" });
    this.el = h("div", { class: "segment-builder" }, this.box, this.count,
      h("datalist", { id: "segment-event-names" }, names.events.map((n) => h("option", { value: n }))),
      h("datalist", { id: "segment-property-names" }, names.properties.map((n) => h("option", { value: n }))));
    this.render();
  }

  render() {
    replaceChildren(this.box, this.group(this.definition, 1, null));
    this.changed();
  }

  changed() {
    this.onChange(this.definition);
    clearTimeout(this.timer);
    this.count.textContent = TEXT.counting;
    this.count.classList.remove("error");
    this.timer = setTimeout(() => this.recount(), 300);
  }

  async recount() {
    const asked = JSON.stringify(this.definition);
    try {
      const { count } = await post("/segments/count", { definition: this.definition });
      if (asked === JSON.stringify(this.definition)) this.count.textContent = TEXT.contacts(count);
    } catch (err) {
      if (asked !== JSON.stringify(this.definition)) return;
      this.count.textContent = err.message;
      this.count.classList.add("error");
    }
  }

  group(g, depth, parent) {
    const rows = h("div", { class: "conditions" }, g.conditions.map((c) => c.kind === "group"
      ? this.group(c, depth + 1, g) : this.condition(c, g)));
    return h("fieldset", { class: `segment-group depth-${depth}` },
      h("legend", {}, h("select", { "aria-label": TEXT.match, onchange: (e) => { g.match = e.target.value; this.changed(); } },
        h("option", { value: "all", selected: g.match !== "any" }, TEXT.all),
        h("option", { value: "any", selected: g.match === "any" }, TEXT.any))),
      rows,
      h("button", { type: "button", class: "add-condition", onclick: () => { g.conditions.push(newCondition()); this.render(); } },
        TEXT.addCondition),
      depth < 3 ? h("button", { type: "button", class: "add-group", onclick: () => {
        g.conditions.push({ kind: "group", match: "any", conditions: [newCondition()] }); this.render();
      } }, TEXT.addGroup) : null,
      parent ? h("button", { type: "button", class: "link remove", onclick: () => {
        parent.conditions.splice(parent.conditions.indexOf(g), 1); this.render();
      } }, TEXT.remove) : null);
  }

  condition(c, parent) {
    const set = (key, value) => { if (value === undefined || value === "" || value === null) delete c[key]; else c[key] = value; this.changed(); };
    const kind = h("select", { class: "kind", "aria-label": TEXT.condition, onchange: (e) => {
      parent.conditions[parent.conditions.indexOf(c)] = newCondition(e.target.value); this.render();
    } }, Object.entries(KINDS).map(([k, label]) => h("option", { value: k, selected: k === c.kind }, label)));
    const op = h("select", { class: "op", "aria-label": TEXT.operator, onchange: (e) => { c.op = e.target.value; this.render(); } },
      OPS[c.kind].map((o) => h("option", { value: o, selected: o === c.op }, OP_LABEL[o] || o)));
    const parts = [kind];
    if (FIELDS[c.kind]) {
      parts.push(h("select", { class: "field", "aria-label": TEXT.field, onchange: (e) => set("field", e.target.value) },
        FIELDS[c.kind].map((f) => h("option", { value: f, selected: f === c.field }, f))));
    }
    if (c.kind === "property") parts.push(this.input("key", c.key, TEXT.key, (v) => set("key", v), "segment-property-names"));
    if (c.kind === "event" || c.kind === "event_time") {
      parts.push(this.input("name", c.name, TEXT.event, (v) => set("name", v), "segment-event-names"));
    }
    if (c.kind === "event_time") {
      parts.push(h("select", { class: "which", "aria-label": TEXT.firstOrLast, onchange: (e) => set("which", e.target.value) },
        ["last", "first"].map((w) => h("option", { value: w, selected: w === c.which }, TEXT[w]))));
    }
    parts.push(op);
    parts.push(...this.operands(c, set));
    parts.push(h("button", { type: "button", class: "link remove", onclick: () => {
      parent.conditions.splice(parent.conditions.indexOf(c), 1); this.render();
    } }, TEXT.remove));
    return h("div", { class: "segment-condition" }, parts);
  }

  operands(c, set) {
    const o = c.op;
    if (["is_set", "not_set"].includes(o)) return [];
    if (c.kind === "segment") {
      return [h("select", { class: "segment", "aria-label": TEXT.segment, onchange: (e) => set("segment_id", Number(e.target.value) || null) },
        h("option", { value: "" }, "—"),
        this.segments.map((s) => h("option", { value: s.id, selected: s.id === c.segment_id }, s.name)))];
    }
    if (c.kind === "grade") {
      return [this.input("values", (c.values || []).join(", "), TEXT.values, (v) => set("values", list(v).map((g) => g.toUpperCase())))];
    }
    if (["within_days", "older_than_days"].includes(o)) {
      return [this.input("days", c.days ?? "", TEXT.days, (v) => set("days", v === "" ? undefined : Number(v)), null, "number")];
    }
    if (o === "in_list") return [this.input("values", (c.values || []).join(", "), TEXT.values, (v) => set("values", list(v)))];
    if (c.kind === "event") {
      const parts = [];
      if (o !== "never") parts.push(this.input("count", c.count ?? 1, TEXT.count, (v) => set("count", Number(v)), null, "number"));
      parts.push(...this.window(c, "within", set, true));
      parts.push(this.input("url_contains", c.url_contains || "", TEXT.urlContains, (v) => set("url_contains", v || undefined)));
      parts.push(...this.where(c));
      return parts;
    }
    if (c.kind === "event_time") return this.window(c, "ago", set, false);
    const numeric = c.kind === "number" || ["gt", "gte", "lt", "lte"].includes(o);
    const date = ["before", "after"].includes(o);
    return [this.input("value", c.value ?? "", date ? TEXT.date : TEXT.value,
      (v) => set("value", v === "" ? undefined : numeric ? Number(v) : date ? v : parseValue(v)), null,
      numeric ? "number" : date ? "date" : "text")];
  }

  window(c, key, set, optional) {
    const w = c[key] || { amount: "", unit: "days" };
    const update = (amount, unit) => set(key, amount === "" && optional ? undefined : { amount: Number(amount), unit });
    const amount = this.input(`${key}-amount`, w.amount ?? "", optional ? TEXT.ever : "", (v) => update(v, unit.value), null, "number");
    const unit = h("select", { "aria-label": TEXT.unit, onchange: () => update(amount.value, unit.value) },
      ["minutes", "hours", "days"].map((u) => h("option", { value: u, selected: u === w.unit }, TEXT[u])));
    return [h("span", { class: "muted" }, key === "within" ? TEXT.within : ""), amount, unit];
  }

  where(c) {
    const w = (c.where && c.where[0]) || { kind: "property", key: "", op: "eq", value: "" };
    const apply = () => {
      const key = keyInput.value.trim();
      if (!key) delete c.where;
      else {
        const cond = { kind: "property", key, op: opSelect.value };
        if (!["is_set", "not_set"].includes(cond.op)) cond.value = parseValue(valueInput.value);
        c.where = [cond];
      }
      this.changed();
    };
    const keyInput = this.input("where-key", w.key, TEXT.where, apply);
    const opSelect = h("select", { "aria-label": TEXT.eventOperator, onchange: apply },
      ["eq", "ne", "contains", "gt", "gte", "lt", "lte", "is_set"].map((o) => h("option", { value: o, selected: o === w.op }, OP_LABEL[o])));
    const valueInput = this.input("where-value", w.value ?? "", TEXT.value, apply);
    return [keyInput, opSelect, valueInput];
  }

  input(name, value, placeholder, onValue, listId = null, type = "text") {
    return h("input", { name, value: String(value ?? ""), placeholder, type, list: listId, "aria-label": placeholder || name,
      class: `in-${name}`, oninput: (e) => onValue(e.target.value) });
  }
}

function replaceChildren(el, child) {
  clear(el).append(child);
}
