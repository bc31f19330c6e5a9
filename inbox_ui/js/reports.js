// Reports: conversation volume per channel and day (stacked bars), first response and
// resolution times (median, p90) overall and per operator, charts with their numbers.

import { get, query } from "./api.js";
import { h, s, clear, fmtDuration, toast } from "./dom.js";
import { channelName, fmtDay, fmtNumber, t } from "./i18n.js";

const CHANNEL_COLOUR = { widget: "#3b82f6", telegram: "#0ea5e9", vk: "#6366f1", email: "#f59e0b" };

function isoDay(d) { return d.toISOString().slice(0, 10); }

function volumeChart(volume) {
  const channels = [...new Set(volume.flatMap((d) => Object.keys(d.channels)))].sort();
  const max = Math.max(1, ...volume.map((d) => Object.values(d.channels).reduce((a, b) => a + b, 0)));
  const bar = 24;
  const gap = 6;
  const height = 160;
  const width = volume.length * (bar + gap) + 40;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height + 30}`, class: "chart", role: "img", "aria-label": t("reports.chart") });
  volume.forEach((d, i) => {
    let y = height;
    const x = 30 + i * (bar + gap);
    for (const ch of channels) {
      const n = d.channels[ch] || 0;
      if (!n) continue;
      const hgt = (n / max) * (height - 10);
      y -= hgt;
      svg.append(s("rect", { x, y, width: bar, height: hgt, fill: CHANNEL_COLOUR[ch] || "#888" }, s("title", {}, `${fmtDay(d.day)} ${channelName(ch)}: ${fmtNumber(n)}`)));
    }
    svg.append(s("text", { x: x + bar / 2, y: height + 14, "text-anchor": "middle", "font-size": 9 }, fmtDay(d.day, { short: true })));
  });
  svg.append(s("text", { x: 0, y: 10, "font-size": 10 }, fmtNumber(max)));
  const legend = h("div", { class: "legend" }, channels.map((ch) => h("span", {}, h("i", { style: `background:${CHANNEL_COLOUR[ch] || "#888"}` }), ` ${channelName(ch)}`)));
  return h("div", {}, svg, legend);
}

function timeBars(rows) {
  const max = Math.max(1, ...rows.flatMap((r) => [r.stats.median_seconds || 0, r.stats.p90_seconds || 0]));
  return h("table", { class: "times" },
    h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, t("reports.count")), h("th", {}, t("reports.median")),
      h("th", {}, t("reports.p90")), h("th", {}, ""))),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: { row: r.key } },
      h("th", {}, r.label), h("td", { class: "count" }, fmtNumber(r.stats.count)),
      h("td", { class: "median", dataset: { seconds: r.stats.median_seconds ?? "" } }, fmtDuration(r.stats.median_seconds)),
      h("td", { class: "p90", dataset: { seconds: r.stats.p90_seconds ?? "" } }, fmtDuration(r.stats.p90_seconds)),
      h("td", { class: "bars" },
        h("div", { class: "bar median", style: `width:${((r.stats.median_seconds || 0) / max) * 100}%` }),
        h("div", { class: "bar p90", style: `width:${((r.stats.p90_seconds || 0) / max) * 100}%` }))))));
}

export class ReportsPage {
  constructor(main) {
    const end = new Date();
    const start = new Date(end.getTime() - 13 * 86400e3);
    this.start = h("input", { type: "date", name: "start", value: isoDay(start), "aria-label": t("reports.from_label") });
    this.end = h("input", { type: "date", name: "end", value: isoDay(end), "aria-label": t("reports.to_label") });
    this.body = h("div", { class: "report" });
    const form = h("form", { class: "toolbar" }, t("reports.from"), " ", this.start, " ", t("reports.to"), " ", this.end, " ",
      t("reports.utc"), " ", h("button", { type: "submit" }, t("reports.show")));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.load(); });
    main.append(h("div", { class: "reports-page" }, h("h2", {}, t("reports.title")), form, this.body));
    this.load();
  }

  async load() {
    try {
      const r = await get(`/reports${query({ start: this.start.value, end: this.end.value })}`);
      const volumeTotal = r.volume.reduce((a, d) => a + Object.values(d.channels).reduce((x, y) => x + y, 0), 0);
      clear(this.body).append(
        h("h3", {}, t("reports.volume")), volumeChart(r.volume),
        h("table", { class: "volume" }, h("tbody", {}, r.volume.filter((d) => Object.keys(d.channels).length).map((d) =>
          h("tr", {}, h("th", {}, h("time", { datetime: d.day }, fmtDay(d.day))),
            h("td", {}, Object.entries(d.channels).map(([c, n]) => `${channelName(c)}: ${fmtNumber(n)}`).join(", ")))))),
        h("p", { class: "muted summary" }, [
          t("reports.conversation_days", { count: volumeTotal }), t("reports.cycles", { count: r.cycles }),
          t("reports.unanswered", { count: r.unanswered })].join(" · ")),
        h("h3", {}, t("reports.first_response")),
        timeBars([{ key: "all", label: t("reports.everyone"), stats: r.first_response },
          ...r.operators.map((o) => ({ key: `op-${o.operator_id}`, label: o.name, stats: o.first_response }))]),
        h("h3", {}, t("reports.resolution")),
        timeBars([{ key: "all", label: t("reports.everyone"), stats: r.resolution },
          ...r.operators.map((o) => ({ key: `op-${o.operator_id}`, label: o.name, stats: o.resolution }))]),
        h("p", { class: "muted" }, t("reports.definitions")));
    } catch (err) { toast(err.message); }
  }
}
