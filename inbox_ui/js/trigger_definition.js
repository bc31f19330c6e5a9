// A trigger's form state and the definition the API stores (TRIGGERS.md), each made from the
// other by pure functions, so the browser test can check that the form means what it sends.
// The form keeps what the inputs show (text, local times, a delay in its unit); the definition
// is what the server validates.

import { parseValue } from "./segment_builder.js";

export const WHEN_TYPES = ["event", "segment_entered", "segment_left", "page_time", "exit_intent",
  "property_changed", "inactivity", "date_property", "emails_not_opened"];
// The fields each kind of "when" has, in the order the form shows them.
export const WHEN_FIELDS = {
  event: ["event", "url_contains", "where", "count", "within_minutes"],
  segment_entered: ["segment_id"],
  segment_left: ["segment_id"],
  page_time: ["url_contains", "seconds"],
  exit_intent: ["url_contains"],
  property_changed: ["property"],
  inactivity: ["event", "days"],
  date_property: ["property", "offset_days", "annual"],
  emails_not_opened: ["count"],
};
export const CHANNELS = ["widget_chat", "widget_popup", "lead_form", "email", "telegram", "vk", "best_available"];
export const REACH = ["widget", "email", "telegram", "vk"];
export const FREQUENCIES = ["once", "once_per_period", "every_time"];
export const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
export const UNITS = { seconds: 1, minutes: 60, hours: 3600, days: 86400 };
// Left out of the definition when empty (the server then reads "any page", "ever").
const OPTIONAL = ["event.url_contains", "event.within_minutes", "exit_intent.url_contains"];
export const WHERE_OPS = ["eq", "ne", "contains", "gt", "gte", "lt", "lte", "is_set", "not_set"];

export function newVariant(name = "A", weight = 100) {
  return { name, weight: String(weight), text: "", subject: "", form_on: false, form_field: "email", form_button: "Send" };
}

// A new trigger as the form first shows it: paused, one variant, a chat message from the bot.
export function newForm() {
  return {
    name: "", enabled: false,
    when: { type: "event", event: "page_viewed", where: [], count: "1", within_minutes: "", segment_id: null,
      url_contains: "", seconds: "30", property: "", days: "14", offset_days: "0", annual: true },
    audience: { filter: null, online_now: false, has_channel: "" },
    delay: { amount: "0", unit: "seconds" },
    channel: "widget_chat",
    sender: { operator_id: null, bot_name: "Bot" },
    variants: [newVariant()],
    control_percent: "0",
    limits: { frequency: "once", period_hours: "24", skip_if_live_conversation: true },
    hours: { on: false, timezone: "site", zone: "", days: Object.fromEntries(DAYS.map((d) => [d, ""])) },
    starts_at: "", ends_at: "",
    goal: { on: false, event: "", where: [], within_hours: "72", revenue_property: "" },
  };
}

const num = (text) => (String(text).trim() === "" ? null : Number(text));
const text = (value) => (value === null || value === undefined ? "" : String(value));

function whereOut(rows) {
  return rows.filter((r) => r.key.trim()).map((r) => {
    const c = { kind: "property", key: r.key.trim(), op: r.op };
    if (!["is_set", "not_set"].includes(r.op)) c.value = parseValue(r.value);
    return c;
  });
}
const whereIn = (conds) => (conds || []).map((c) => ({ key: c.key, op: c.op, value: text(c.value) }));

// "09:00-12:00, 13:00-18:00" ⇄ [["09:00", "12:00"], ["13:00", "18:00"]]
export function parseRanges(value) {
  return String(value).split(",").map((r) => r.trim()).filter(Boolean).map((r) => r.split("-").map((p) => p.trim()));
}
const rangesText = (ranges) => (ranges || []).map((r) => r.join("-")).join(", ");

// A datetime-local value (the operator's own clock) ⇄ an ISO instant.
function instantOut(local) {
  return local ? new Date(local).toISOString() : null;
}
function instantIn(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function toDefinition(form) {
  const w = form.when;
  const when = { type: w.type };
  for (const field of WHEN_FIELDS[w.type]) {
    if (field === "where") when.where = whereOut(w.where);
    else if (OPTIONAL.includes(`${w.type}.${field}`)) {
      if (String(w[field]).trim() !== "") when[field] = field === "within_minutes" ? num(w[field]) : w[field].trim();
    }
    else if (["event", "url_contains", "property"].includes(field)) when[field] = w[field].trim();
    else if (field === "annual") when.annual = Boolean(w.annual);
    else if (field === "segment_id") when.segment_id = w.segment_id;
    else when[field] = num(w[field]);
  }
  const filter = form.audience.filter && form.audience.filter.conditions.length ? form.audience.filter : null;
  return {
    name: form.name.trim(),
    enabled: Boolean(form.enabled),
    when,
    audience: { filter, online_now: Boolean(form.audience.online_now), has_channel: form.audience.has_channel || null },
    delay_seconds: (num(form.delay.amount) ?? 0) * UNITS[form.delay.unit],
    channel: form.channel,
    sender: { operator_id: form.sender.operator_id || null, bot_name: form.sender.bot_name.trim() || "Bot" },
    variants: form.variants.map((v) => ({
      name: v.name.trim(), weight: num(v.weight), text: v.text,
      subject: form.channel === "email" || form.channel === "best_available" ? v.subject.trim() || null : null,
      form: v.form_on ? { field: v.form_field, button: v.form_button.trim() || "Send" } : null,
    })),
    control_percent: num(form.control_percent) ?? 0,
    limits: { frequency: form.limits.frequency, period_hours: num(form.limits.period_hours),
      skip_if_live_conversation: Boolean(form.limits.skip_if_live_conversation) },
    hours: form.hours.on ? {
      timezone: form.hours.timezone === "zone" ? form.hours.zone.trim() : form.hours.timezone,
      days: Object.fromEntries(DAYS.filter((d) => form.hours.days[d].trim()).map((d) => [d, parseRanges(form.hours.days[d])])),
    } : null,
    starts_at: instantOut(form.starts_at),
    ends_at: instantOut(form.ends_at),
    goal: form.goal.on ? { event: form.goal.event.trim(), where: whereOut(form.goal.where),
      within_hours: num(form.goal.within_hours), revenue_property: form.goal.revenue_property.trim() || null } : null,
  };
}

// The largest unit the delay is a whole number of.
function delayIn(seconds) {
  const s = seconds || 0;
  const unit = ["days", "hours", "minutes"].find((u) => s && s % UNITS[u] === 0) || "seconds";
  return { amount: String(s / UNITS[unit]), unit };
}

export function fromDefinition(d) {
  const form = newForm();
  form.name = d.name || "";
  form.enabled = Boolean(d.enabled);
  const w = d.when || { type: "event" };
  Object.assign(form.when, { type: w.type });
  for (const field of WHEN_FIELDS[w.type] || []) {
    if (field === "where") form.when.where = whereIn(w.where);
    else if (field === "annual") form.when.annual = w.annual !== false;
    else if (field === "segment_id") form.when.segment_id = w.segment_id ?? null;
    else form.when[field] = text(w[field]);
  }
  const a = d.audience || {};
  form.audience = { filter: a.filter || null, online_now: Boolean(a.online_now), has_channel: a.has_channel || "" };
  form.delay = delayIn(d.delay_seconds);
  form.channel = d.channel || "widget_chat";
  form.sender = { operator_id: d.sender?.operator_id ?? null, bot_name: d.sender?.bot_name || "Bot" };
  form.variants = (d.variants || []).map((v) => ({ name: v.name, weight: text(v.weight), text: v.text || "",
    subject: v.subject || "", form_on: Boolean(v.form), form_field: v.form?.field || "email", form_button: v.form?.button || "Send" }));
  form.control_percent = text(d.control_percent ?? 0);
  const l = d.limits || {};
  form.limits = { frequency: l.frequency || "once", period_hours: text(l.period_hours ?? 24),
    skip_if_live_conversation: l.skip_if_live_conversation !== false };
  if (d.hours) {
    const named = ["site", "contact"].includes(d.hours.timezone);
    form.hours = { on: true, timezone: named ? d.hours.timezone : "zone", zone: named ? "" : d.hours.timezone,
      days: Object.fromEntries(DAYS.map((day) => [day, rangesText(d.hours.days?.[day])])) };
  }
  form.starts_at = instantIn(d.starts_at);
  form.ends_at = instantIn(d.ends_at);
  if (d.goal) {
    form.goal = { on: true, event: d.goal.event || "", where: whereIn(d.goal.where), within_hours: text(d.goal.within_hours ?? 72),
      revenue_property: d.goal.revenue_property || "" };
  }
  return form;
}

// What the form can tell before asking the server: {field, key, params} per problem (the form
// words each key in the operator's language).
export function problems(form) {
  const found = [];
  const weights = form.variants.map((v) => num(v.weight));
  const total = weights.reduce((sum, w) => sum + (w || 0), 0);
  if (weights.some((w) => w === null || !Number.isInteger(w) || w <= 0)) {
    found.push({ field: "variants", key: "weights_positive", params: {} });
  } else if (total !== 100) found.push({ field: "variants", key: "weights_sum", params: { total } });
  const names = form.variants.map((v) => v.name.trim());
  if (new Set(names).size !== names.length || names.some((n) => !n)) {
    found.push({ field: "variants", key: "variant_names", params: {} });
  }
  if (form.hours.on) {
    const bad = DAYS.filter((d) => parseRanges(form.hours.days[d]).some((r) => r.length !== 2
      || !r.every((p) => /^\d{2}:\d{2}$/.test(p))));
    for (const d of bad) found.push({ field: `hours.days.${d}`, key: "hours_format", params: {} });
  }
  return found;
}
