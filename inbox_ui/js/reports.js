// Reports: conversation volume per channel and day (stacked bars), first response and
// resolution times (median, p90) overall and per operator, charts with their numbers.

import { get, query } from "./api.js";
import { h, s, clear, fmtDuration, toast } from "./dom.js";

const CHANNEL_COLOUR = { widget: "#3b82f6", telegram: "#0ea5e9", vk: "#6366f1", email: "#f59e0b" };

function isoDay(d) { return d.toISOString().slice(0, 10); }

function volumeChart(volume) {
  const channels = [...new Set(volume.flatMap((d) => Object.keys(d.channels)))].sort();
  const max = Math.max(1, ...volume.map((d) => Object.values(d.channels).reduce((a, b) => a + b, 0)));
  const bar = 24;
  const gap = 6;
  const height = 160;
  const width = volume.length * (bar + gap) + 40;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height + 30}`, class: "chart", role: "img", "aria-label": "Conversations per day by channel" });
  volume.forEach((d, i) => {
    let y = height;
    const x = 30 + i * (bar + gap);
    for (const ch of channels) {
      const n = d.channels[ch] || 0;
      if (!n) continue;
      const hgt = (n / max) * (height - 10);
      y -= hgt;
      svg.append(s("rect", { x, y, width: bar, height: hgt, fill: CHANNEL_COLOUR[ch] || "#888" }, s("title", {}, `${d.day} ${ch}: ${n}`)));
    }
    svg.append(s("text", { x: x + bar / 2, y: height + 14, "text-anchor": "middle", "font-size": 9 }, d.day.slice(5)));
  });
  svg.append(s("text", { x: 0, y: 10, "font-size": 10 }, String(max)));
  const legend = h("div", { class: "legend" }, channels.map((ch) => h("span", {}, h("i", { style: `background:${CHANNEL_COLOUR[ch] || "#888"}` }), ` ${ch}`)));
  return h("div", {}, svg, legend);
}

function timeBars(rows) {
  const max = Math.max(1, ...rows.flatMap((r) => [r.stats.median_seconds || 0, r.stats.p90_seconds || 0]));
  return h("table", { class: "times" },
    h("thead", {}, h("tr", {}, h("th", {}, ""), h("th", {}, "count"), h("th", {}, "median"), h("th", {}, "p90"), h("th", {}, ""))),
    h("tbody", {}, rows.map((r) => h("tr", { dataset: { row: r.key } },
      h("th", {}, r.label), h("td", { class: "count" }, String(r.stats.count)),
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
    this.start = h("input", { type: "date", name: "start", value: isoDay(start), "aria-label": "From" });
    this.end = h("input", { type: "date", name: "end", value: isoDay(end), "aria-label": "To" });
    this.body = h("div", { class: "report" });
    const form = h("form", { class: "toolbar" }, "From ", this.start, " to ", this.end, " (UTC) ", h("button", { type: "submit" }, "Show"));
    form.addEventListener("submit", (e) => { e.preventDefault(); this.load(); });
    main.append(h("div", { class: "reports-page" }, h("h2", {}, "Reports"), form, this.body));
    this.load();
  }

  async load() {
    try {
      const r = await get(`/reports${query({ start: this.start.value, end: this.end.value })}`);
      const volumeTotal = r.volume.reduce((a, d) => a + Object.values(d.channels).reduce((x, y) => x + y, 0), 0);
      clear(this.body).append(
        h("h3", {}, "Conversations by channel and day"), volumeChart(r.volume),
        h("table", { class: "volume" }, h("tbody", {}, r.volume.filter((d) => Object.keys(d.channels).length).map((d) =>
          h("tr", {}, h("th", {}, d.day), h("td", {}, Object.entries(d.channels).map(([c, n]) => `${c}: ${n}`).join(", ")))))),
        h("p", { class: "muted" }, `${volumeTotal} conversation-days · ${r.cycles} cycles started · ${r.unanswered} not answered yet`),
        h("h3", {}, "First response time"),
        timeBars([{ key: "all", label: "Everyone", stats: r.first_response },
          ...r.operators.map((o) => ({ key: `op-${o.operator_id}`, label: o.name, stats: o.first_response }))]),
        h("h3", {}, "Resolution time"),
        timeBars([{ key: "all", label: "Everyone", stats: r.resolution },
          ...r.operators.map((o) => ({ key: `op-${o.operator_id}`, label: o.name, stats: o.resolution }))]),
        h("p", { class: "muted" }, "A cycle starts with the contact's first message (or the first after a close); first response is the first operator reply in it; resolution is the close. p90: 90% of cycles were at or under this."));
    } catch (err) { toast(err.message); }
  }
}
