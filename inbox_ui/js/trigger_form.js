// The trigger editor (admins): when it fires, for whom, how and what it sends, how often, when,
// and what counts as success. The form state becomes the stored definition through
// trigger_definition.js; the server's 422s appear next to the field they are about.

import { post, patch, ApiError } from "./api.js";
import { h, clear } from "./dom.js";
import { t } from "./i18n.js";
import { state } from "./state.js";
import { SegmentBuilder } from "./segment_builder.js";
import { CHANNELS, DAYS, FREQUENCIES, REACH, UNITS, WHEN_FIELDS, WHEN_TYPES, fromDefinition, newForm, problems,
  toDefinition } from "./trigger_definition.js";
import { check, field, input, select, showErrors, whereRows } from "./trigger_fields.js";
import { VariantsEditor } from "./trigger_variants.js";
import { TriggerTools } from "./trigger_tools.js";

const WHEN_LABEL = {
  get event() { return t("triggers.when.event"); },
  get segment_entered() { return t("triggers.when.segment_entered"); },
  get segment_left() { return t("triggers.when.segment_left"); },
  get page_time() { return t("triggers.when.page_time"); },
  get exit_intent() { return t("triggers.when.exit_intent"); },
  get property_changed() { return t("triggers.when.property_changed"); },
  get inactivity() { return t("triggers.when.inactivity"); },
  get date_property() { return t("triggers.when.date_property"); },
  get emails_not_opened() { return t("triggers.when.emails_not_opened"); },
};
export const CHANNEL_LABEL = {
  get widget_chat() { return t("triggers.channel.widget_chat"); },
  get widget_popup() { return t("triggers.channel.widget_popup"); },
  get lead_form() { return t("triggers.channel.lead_form"); },
  get email() { return t("channel.email"); },
  get telegram() { return t("channel.telegram"); },
  get vk() { return t("channel.vk"); },
  get widget() { return t("channel.widget"); },
  get best_available() { return t("triggers.channel.best_available"); },
};
const UNIT_LABEL = {
  get seconds() { return t("triggers.unit.seconds"); },
  get minutes() { return t("builder.minutes"); },
  get hours() { return t("builder.hours"); },
  get days() { return t("builder.days"); },
};
const FREQUENCY_LABEL = {
  get once() { return t("triggers.frequency.once"); },
  get once_per_period() { return t("triggers.frequency.once_per_period"); },
  get every_time() { return t("triggers.frequency.every_time"); },
};
const DAY_LABEL = {
  get mon() { return t("triggers.day.mon"); }, get tue() { return t("triggers.day.tue"); },
  get wed() { return t("triggers.day.wed"); }, get thu() { return t("triggers.day.thu"); },
  get fri() { return t("triggers.day.fri"); }, get sat() { return t("triggers.day.sat"); },
  get sun() { return t("triggers.day.sun"); },
};
export const PROBLEM = {
  weights_positive: () => t("triggers.weights_positive"),
  weights_sum: ({ total }) => t("triggers.weights_sum", { total }),
  variant_names: () => t("triggers.variant_names"),
  hours_format: () => t("triggers.hours_format"),
};
const FIELD_LABEL = {
  get event() { return t("triggers.field.event"); },
  get count() { return t("triggers.field.count"); },
  get within_minutes() { return t("triggers.field.within_minutes"); },
  get segment_id() { return t("triggers.field.segment_id"); },
  get url_contains() { return t("triggers.field.url_contains"); },
  get seconds() { return t("triggers.field.seconds"); },
  get property() { return t("triggers.field.property"); },
  get days() { return t("triggers.field.days"); },
  get offset_days() { return t("triggers.field.offset_days"); },
  get annual() { return t("triggers.field.annual"); },
  get where() { return t("triggers.where"); },
};
const zones = () => (Intl.supportedValuesOf ? Intl.supportedValuesOf("timeZone") : []);

export class TriggerForm {
  // trigger: as the API returns it (null for a new one); names: {events, properties}; segments: [{id, name}].
  constructor(trigger, { names, segments, onSaved, onCancel }) {
    this.trigger = trigger;
    this.form = trigger ? fromDefinition(trigger) : newForm();
    this.names = names;
    this.segments = segments;
    this.onSaved = onSaved;
    const f = this.form;
    this.whenBox = h("div", { class: "when-fields" });
    this.senderBox = h("span", { class: "sender-fields" });
    this.periodBox = h("span", {});
    this.hoursBox = h("div", { class: "hours-fields" });
    this.goalBox = h("div", { class: "goal-fields" });
    this.variants = new VariantsEditor(f, { onChange: () => this.el && this.checkLocally() });
    const builder = new SegmentBuilder(f.audience.filter, { names, segments,
      onChange: (definition) => { f.audience.filter = definition; } });
    this.el = h("form", { class: "trigger-form", novalidate: true },
      h("div", { class: "form-error", dataset: { field: "" } }, h("span", { class: "field-error", role: "alert" })),
      field("name", t("triggers.name"), input(f, "name", { label: t("triggers.name"), maxlength: 200, class: "trigger-name" })),
      check(f, "enabled", t("triggers.enabled")),
      h("fieldset", { class: "when" }, h("legend", {}, t("triggers.section.when")),
        field("when.type", t("triggers.when_type"), select(f.when, "type", WHEN_TYPES.map((w) => [w, WHEN_LABEL[w]]),
          { label: t("triggers.when_type"), class: "when-type", onChange: () => this.renderWhen() })),
        this.whenBox),
      h("fieldset", { class: "audience", dataset: { field: "audience" } }, h("legend", {}, t("triggers.section.audience")),
        h("div", { dataset: { field: "audience.filter" } }, builder.el, h("span", { class: "field-error", role: "alert" })),
        check(f.audience, "online_now", t("triggers.online_now")),
        field("audience.has_channel", t("triggers.has_channel"), select(f.audience, "has_channel",
          [["", t("triggers.any_channel")], ...REACH.map((c) => [c, CHANNEL_LABEL[c]])], { label: t("triggers.has_channel") }))),
      h("fieldset", { class: "delivery" }, h("legend", {}, t("triggers.section.delivery")),
        field("delay_seconds", t("triggers.delay"),
          input(f.delay, "amount", { type: "number", min: 0, label: t("triggers.delay"), class: "delay-amount" }),
          select(f.delay, "unit", Object.keys(UNITS).map((u) => [u, UNIT_LABEL[u]]), { label: t("triggers.delay_unit"), class: "delay-unit" })),
        field("channel", t("triggers.channel"), select(f, "channel", CHANNELS.map((c) => [c, CHANNEL_LABEL[c]]),
          { label: t("triggers.channel"), class: "channel", onChange: () => this.variants.render() })),
        field("sender", t("triggers.sender"), select(f.sender, "operator_id",
          [["", t("triggers.bot")], ...[...state.operators.values()].filter((o) => o.is_active !== false && o.role !== "sales")
            .map((o) => [o.id, o.name])],
          { label: t("triggers.sender"), class: "sender", cast: (v) => (v ? Number(v) : null), onChange: () => this.renderSender() }),
        this.senderBox)),
      h("fieldset", { class: "variants" }, h("legend", {}, t("triggers.section.message")), this.variants.el,
        field("control_percent", t("triggers.control"), input(f, "control_percent", { type: "number", min: 0, max: 90,
          label: t("triggers.control"), class: "control-percent" }))),
      h("fieldset", { class: "limits" }, h("legend", {}, t("triggers.section.limits")),
        field("limits.frequency", t("triggers.frequency"), select(f.limits, "frequency", FREQUENCIES.map((q) => [q, FREQUENCY_LABEL[q]]),
          { label: t("triggers.frequency"), class: "frequency", onChange: () => this.renderPeriod() }), this.periodBox),
        check(f.limits, "skip_if_live_conversation", t("triggers.skip_live")),
        check(f.hours, "on", t("triggers.hours_on"), { onChange: () => this.renderHours() }),
        this.hoursBox,
        field("starts_at", t("triggers.starts_at"), input(f, "starts_at", { type: "datetime-local", label: t("triggers.starts_at") })),
        field("ends_at", t("triggers.ends_at"), input(f, "ends_at", { type: "datetime-local", label: t("triggers.ends_at") }))),
      h("fieldset", { class: "goal" }, h("legend", {}, t("triggers.section.goal")),
        check(f.goal, "on", t("triggers.goal_on"), { onChange: () => this.renderGoal() }), this.goalBox),
      h("div", { class: "actions" },
        h("button", { type: "submit", class: "save" }, t("common.save")),
        h("button", { type: "button", class: "link", onclick: onCancel }, t("segments.cancel"))),
      new TriggerTools(trigger, () => toDefinition(this.form)).el,
      h("datalist", { id: "trigger-event-names" }, names.events.map((n) => h("option", { value: n }))),
      h("datalist", { id: "trigger-property-names" }, names.properties.map((n) => h("option", { value: n }))),
      h("datalist", { id: "trigger-zones" }, zones().map((z) => h("option", { value: z }))));
    this.el.addEventListener("submit", (e) => { e.preventDefault(); this.save(); });
    this.el.addEventListener("input", () => this.checkLocally());
    this.renderWhen();
    this.renderSender();
    this.renderPeriod();
    this.renderHours();
    this.renderGoal();
  }

  renderWhen() {
    const w = this.form.when;
    const parts = WHEN_FIELDS[w.type].map((key) => {
      const path = `when.${key}`;
      const label = FIELD_LABEL[key];
      if (key === "where") return whereRows(w.where, path, "trigger-property-names");
      if (key === "annual") return check(w, "annual", label);
      if (key === "segment_id") {
        return field(path, label, select(w, "segment_id", [["", "—"], ...this.segments.map((s) => [s.id, s.name])],
          { label, class: "when-segment", cast: (v) => (v ? Number(v) : null) }));
      }
      const numeric = !["event", "url_contains", "property"].includes(key);
      const list = key === "event" ? "trigger-event-names" : key === "property" ? "trigger-property-names" : null;
      return field(path, label, input(w, key, { label, type: numeric ? "number" : "text", list, class: `when-${key}` }));
    });
    clear(this.whenBox).append(...parts);
  }

  renderSender() {
    const s = this.form.sender;
    clear(this.senderBox);
    if (!s.operator_id) this.senderBox.append(input(s, "bot_name", { label: t("triggers.bot_name"), placeholder: t("triggers.bot_name"), class: "bot-name", maxlength: 100 }));
  }

  renderPeriod() {
    const l = this.form.limits;
    clear(this.periodBox);
    if (l.frequency === "once_per_period") {
      this.periodBox.append(field("limits.period_hours", t("triggers.period_hours"),
        input(l, "period_hours", { type: "number", min: 1, label: t("triggers.period_hours"), class: "period-hours" })));
    }
  }

  renderHours() {
    const hrs = this.form.hours;
    clear(this.hoursBox);
    if (!hrs.on) return;
    const zone = h("span", {});
    const showZone = () => clear(zone).append(hrs.timezone === "zone"
      ? input(hrs, "zone", { label: t("triggers.zone"), placeholder: "Europe/Berlin", list: "trigger-zones", class: "zone" }) : "");
    this.hoursBox.append(
      field("hours.timezone", t("triggers.timezone"), select(hrs, "timezone",
        [["site", t("triggers.tz.site")], ["contact", t("triggers.tz.contact")], ["zone", t("triggers.tz.zone")]],
        { label: t("triggers.timezone"), class: "timezone", onChange: showZone }), zone),
      h("p", { class: "muted" }, t("triggers.hours_hint")),
      ...DAYS.map((d) => field(`hours.days.${d}`, DAY_LABEL[d],
        input(hrs.days, d, { label: DAY_LABEL[d], placeholder: "09:00-18:00", class: `day-${d}` }))));
    showZone();
  }

  renderGoal() {
    const g = this.form.goal;
    clear(this.goalBox);
    if (!g.on) return;
    this.goalBox.append(
      field("goal.event", t("triggers.goal_event"), input(g, "event", { label: t("triggers.goal_event"), list: "trigger-event-names", class: "goal-event" })),
      whereRows(g.where, "goal.where", "trigger-property-names"),
      field("goal.within_hours", t("triggers.goal_within"), input(g, "within_hours", { type: "number", min: 1, label: t("triggers.goal_within"), class: "goal-within" })),
      field("goal.revenue_property", t("triggers.revenue_property"), input(g, "revenue_property",
        { label: t("triggers.revenue_property"), list: "trigger-property-names", class: "revenue-property" })));
  }

  // Shown as the operator types; the same checks block saving.
  checkLocally() {
    const found = problems(this.form).map((p) => ({ loc: p.field.split("."), message: PROBLEM[p.key](p.params) }));
    showErrors(this.el, found);
    return found.length === 0;
  }

  async save() {
    if (!this.checkLocally()) return;
    const body = toDefinition(this.form);
    try {
      const saved = this.trigger ? await patch(`/triggers/${this.trigger.id}`, body) : await post("/triggers", body);
      this.onSaved(saved);
    } catch (err) {
      const details = err instanceof ApiError && err.details?.length ? err.details : null;
      showErrors(this.el, details ? details.map((d) => ({ loc: d.loc.filter((p) => p !== "body"), message: d.msg }))
        : [{ loc: err.field ? String(err.field).split(".") : [], message: err.message }]);
    }
  }
}
