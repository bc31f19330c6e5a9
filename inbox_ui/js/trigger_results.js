// A trigger's results: per variant and the control group what happened to the contacts it
// matched, what the message changed (difference and lift with their 95 % intervals, or "not
// enough data yet"), and a chart per day of sent and goals reached per group.
// The trigger list (triggers.js) links here: renderTriggerResults(container, triggerId).

import { get, query } from "./api.js";
import { h, s, clear, toast } from "./dom.js";
import { fmtDay, fmtNumber, language, t } from "./i18n.js";

const COLOURS = ["#3b82f6", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444"];
const CONTROL_COLOUR = "#9ca3af";
const RANGES = [7, 30, 90];

function signed(value, digits) {
  return new Intl.NumberFormat(language(), { signDisplay: "exceptZero", minimumFractionDigits: digits, maximumFractionDigits: digits })
    .format(value);
}

function percent(fraction) {
  if (fraction === null || fraction === undefined) return t("trigger_results.none");
  return new Intl.NumberFormat(language(), { style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(fraction);
}

// 0.032 -> "+3.2 pp"; the interval's bounds the same way.
const pp = (fraction) => t("trigger_results.pp", { value: signed(fraction * 100, 1) });
// 0.25 -> "+25 %"
const liftPercent = (fraction) => t("trigger_results.lift_value", { value: signed(fraction * 100, 0) });

function differenceText(d) {
  return t("trigger_results.with_ci", { value: pp(d.estimate), low: pp(d.low), high: pp(d.high) });
}

function liftText(l) {
  if (l.estimate === null) {
    return l.low === null ? t("trigger_results.none") : t("trigger_results.lift_no_control_goals", { low: liftPercent(l.low) });
  }
  if (l.high === null) return t("trigger_results.with_ci_open", { value: liftPercent(l.estimate), low: liftPercent(l.low) });
  return t("trigger_results.with_ci", { value: liftPercent(l.estimate), low: liftPercent(l.low), high: liftPercent(l.high) });
}

function verdict(d) {
  if (d.low > 0) return h("strong", { class: "verdict up" }, t("trigger_results.verdict_up"));
  if (d.high < 0) return h("strong", { class: "verdict down" }, t("trigger_results.verdict_down"));
  return h("span", { class: "verdict unclear" }, t("trigger_results.verdict_unclear"));
}

function groupName(arm) {
  return arm.variant === "control" ? t("trigger_results.control") : t("trigger_results.variant", { name: arm.variant });
}

function table(r) {
  const heads = [t("trigger_results.group"), t("trigger_results.matched"), t("trigger_results.sent"),
    t("trigger_results.delivered"), t("trigger_results.read"), t("trigger_results.clicked"), t("trigger_results.replied"),
    t("trigger_results.unsubscribed"), t("trigger_results.goal"), t("trigger_results.conversion"), t("trigger_results.revenue")];
  const row = (arm) => h("tr", { dataset: { variant: arm.variant } },
    h("th", {}, groupName(arm)),
    ...["matched", "sent", "delivered", "read", "clicked", "replied", "unsubscribed", "goal"].map((k) =>
      h("td", { class: k }, arm.variant === "control" && k !== "matched" && k !== "goal" ? t("trigger_results.none") : fmtNumber(arm[k]))),
    h("td", { class: "conversion" }, percent(arm.conversion)),
    h("td", { class: "revenue" }, new Intl.NumberFormat(language(), { maximumFractionDigits: 2 }).format(arm.revenue)));
  return h("table", { class: "trigger-results" },
    h("thead", {}, h("tr", {}, heads.map((text) => h("th", {}, text)))),
    h("tbody", {}, r.variants.map(row), row(r.control)));
}

function comparison(r) {
  if (!r.comparison.length) return null;
  return h("ul", { class: "comparison" }, r.comparison.map((c) => {
    const title = t("trigger_results.versus_control", { name: c.variant });
    if (!c.enough_data) {
      return h("li", { dataset: { variant: c.variant }, class: "not-enough" }, h("b", {}, title), " ",
        h("span", { class: "not-enough-data" }, t("trigger_results.not_enough", { count: r.min_per_group, goals: r.min_goals_per_group })));
    }
    return h("li", { dataset: { variant: c.variant } }, h("b", {}, title), " ", verdict(c.difference),
      h("div", { class: "difference" }, t("trigger_results.difference"), " ", differenceText(c.difference)),
      h("div", { class: "lift" }, t("trigger_results.lift"), " ", liftText(c.lift)));
  }));
}

// Every day of the window, each group two bars side by side-ish: how many were sent (held out,
// for the control) and, drawn over it, how many of those reached the goal.
function chart(r) {
  const groups = [...r.variants.map((a, i) => ({ name: a.variant, colour: COLOURS[i % COLOURS.length] })),
    { name: "control", colour: CONTROL_COLOUR }];
  const byKey = new Map(r.series.map((d) => [`${d.day}|${d.variant}`, d]));
  const days = [];
  for (let d = new Date(`${r.since}T00:00:00Z`); days.length < r.days; d = new Date(d.getTime() + 86400e3)) {
    days.push(d.toISOString().slice(0, 10));
  }
  const exposed = (d, g) => (d ? (g === "control" ? d.matched : d.sent) : 0);
  const max = Math.max(1, ...r.series.map((d) => exposed(d, d.variant)));
  const bar = Math.max(3, Math.min(12, Math.floor(600 / (days.length * groups.length))));
  const gap = 4;
  const slot = groups.length * bar + gap;
  const height = 160;
  const width = 30 + days.length * slot + 10;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height + 30}`, class: "chart trigger-chart", role: "img", "aria-label": t("trigger_results.chart") });
  const labelEvery = Math.ceil(days.length / 15);
  days.forEach((day, i) => {
    const x0 = 30 + i * slot;
    groups.forEach((g, j) => {
      const d = byKey.get(`${day}|${g.name}`);
      const n = exposed(d, g.name);
      const goal = d ? d.goal : 0;
      if (!n && !goal) return;
      const x = x0 + j * bar;
      const hn = (n / max) * (height - 10);
      const hg = (goal / max) * (height - 10);
      const label = g.name === "control" ? t("trigger_results.control") : t("trigger_results.variant", { name: g.name });
      svg.append(s("rect", { x, y: height - hn, width: bar - 1, height: hn, fill: g.colour, "fill-opacity": 0.35, class: "sent" },
        s("title", {}, t("trigger_results.bar_sent", { day: fmtDay(day), group: label, count: n }))));
      svg.append(s("rect", { x, y: height - hg, width: bar - 1, height: hg, fill: g.colour, class: "goal" },
        s("title", {}, t("trigger_results.bar_goal", { day: fmtDay(day), group: label, count: goal }))));
    });
    if (i % labelEvery === 0) {
      svg.append(s("text", { x: x0 + (groups.length * bar) / 2, y: height + 14, "text-anchor": "middle", "font-size": 9 }, fmtDay(day, { short: true })));
    }
  });
  svg.append(s("text", { x: 0, y: 10, "font-size": 10 }, fmtNumber(max)));
  const legend = h("div", { class: "legend" },
    groups.map((g) => h("span", {}, h("i", { style: `background:${g.colour}` }), " ",
      g.name === "control" ? t("trigger_results.control") : t("trigger_results.variant", { name: g.name }))),
    h("span", { class: "muted" }, t("trigger_results.chart_key")));
  return h("div", {}, svg, legend);
}

export function renderTriggerResults(container, triggerId) {
  const body = h("div", { class: "trigger-results-body" });
  const range = h("select", { name: "days", "aria-label": t("trigger_results.range") },
    RANGES.map((n) => h("option", { value: n, selected: n === 30 }, t("trigger_results.last_days", { count: n }))));
  const title = h("h2", {}, t("trigger_results.title"));
  container.append(h("div", { class: "trigger-results-view" }, title, h("div", { class: "toolbar" }, range), body));
  let asked = 0; // only the latest answer is shown when the period changes quickly
  async function load() {
    const mine = ++asked;
    let r;
    try {
      r = await get(`/triggers/${triggerId}/results${query({ days: range.value })}`);
    } catch (err) { toast(err.message); return; }
    if (mine !== asked || !container.isConnected) return;
    title.textContent = t("trigger_results.title_of", { name: r.name });
    clear(body).append(
      table(r),
      h("h3", {}, t("trigger_results.effect")),
      comparison(r),
      h("h3", {}, t("trigger_results.over_time")),
      chart(r),
      h("p", { class: "muted" }, t("trigger_results.how", { count: r.min_per_group, goals: r.min_goals_per_group })));
  }
  range.addEventListener("change", load);
  load();
  return { leave() {}, reload: load };
}
