// Scoring and data: the scoring rules (admins edit, everyone reads) with the recomputation's
// progress, the grade thresholds, every event and property name seen, and (admins) API keys.

import { get, post, patch, del, request } from "./api.js";
import { h, clear, fmtTime, toast } from "./dom.js";
import { isAdmin } from "./state.js";

export const TEXT = {
  scoring: "Lead scoring", preset: "Add the standard rules", addRule: "Add rule", event: "event name", points: "points",
  urlContains: "URL contains (optional)", always: "every time", once: "once per contact", max: "at most N times",
  maxTimes: "N", decay: "expire after days (optional)", remove: "Delete", noRules: "No scoring rules yet.",
  recomputing: (done, total) => `Recomputing scores: ${done} of ${total}`, recomputed: (at) => `Scores recomputed ${fmtTime(at)}.`,
  grading: "Grade (A1…E4)", gradingOn: "Grade contacts", thresholds: "Score for engagement 1, 2, 3", defaultFit: "Fit when no rule matches",
  saveGrading: "Save", data: "Data: event and property names", kind: "Kind", name: "Name", type: "Type", count: "Count",
  lastSeen: "Last seen", keys: "API keys", keyName: "key name", createKey: "Create key", revoke: "Revoke",
  secretOnce: "Copy this key now: it is not shown again.", revoked: "revoked", never: "never", prefix: "Starts with",
  created: "Created", lastUsed: "Last used", ruleWhen: (d) => (d.when.kind === "event"
    ? `event ${d.when.name}${d.when.url_contains ? ` on URLs with “${d.when.url_contains}”` : ""}${d.when.where?.length ? " (with conditions)" : ""}`
    : "card condition"),
  ruleLimit: (d) => ({ always: "every time", once: "once", max: `at most ${d.max_times}×` }[d.limit]) + (d.expires_days ? `, expires after ${d.expires_days} days` : ""),
};

export class BehaviourPage {
  constructor(main) {
    this.rules = h("tbody");
    this.progress = h("p", { class: "muted recompute", "aria-live": "polite" });
    this.names = h("tbody");
    this.keys = h("tbody");
    this.secret = h("div", { class: "secret-once" });
    this.grading = h("form", { class: "grading" });
    main.append(h("div", { class: "behaviour-page" },
      h("h2", {}, TEXT.scoring), this.progress,
      h("table", { class: "rules" }, this.rules),
      isAdmin() ? this.ruleForm() : null,
      isAdmin() ? h("button", { type: "button", class: "install-preset", onclick: () => this.installPreset() }, TEXT.preset) : null,
      h("h2", {}, TEXT.grading), this.grading,
      isAdmin() ? [h("h2", {}, TEXT.keys), this.secret, this.keyForm(), h("table", { class: "api-keys" },
        h("thead", {}, h("tr", {}, [TEXT.name, TEXT.prefix, TEXT.created, TEXT.lastUsed, ""].map((t) => h("th", {}, t)))), this.keys)] : null,
      h("h2", {}, TEXT.data),
      h("table", { class: "data-names" }, h("thead", {}, h("tr", {},
        [TEXT.kind, TEXT.name, TEXT.type, TEXT.count, TEXT.lastSeen].map((t) => h("th", {}, t)))), this.names)));
    this.loadRules();
    this.loadGrading();
    this.loadNames();
    if (isAdmin()) this.loadKeys();
  }

  leave() { clearTimeout(this.poll); }

  ruleForm() {
    const form = h("form", { class: "add-rule" },
      h("input", { name: "event", placeholder: TEXT.event, required: true, maxlength: 200, "aria-label": TEXT.event }),
      h("input", { name: "url", placeholder: TEXT.urlContains, maxlength: 500, "aria-label": TEXT.urlContains }),
      h("input", { name: "points", type: "number", placeholder: TEXT.points, required: true, "aria-label": TEXT.points }),
      h("select", { name: "limit", "aria-label": "How often" }, ["always", "once", "max"].map((l) => h("option", { value: l }, TEXT[l]))),
      h("input", { name: "max", type: "number", min: 1, placeholder: TEXT.maxTimes, "aria-label": TEXT.maxTimes }),
      h("input", { name: "expires", type: "number", min: 1, placeholder: TEXT.decay, "aria-label": TEXT.decay }),
      h("button", { type: "submit" }, TEXT.addRule));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = form.elements;
      const when = { kind: "event", name: f.event.value.trim() };
      if (f.url.value.trim()) when.url_contains = f.url.value.trim();
      const definition = { when, points: Number(f.points.value), limit: f.limit.value };
      if (f.limit.value === "max") definition.max_times = Number(f.max.value);
      if (f.expires.value) definition.expires_days = Number(f.expires.value);
      try {
        await post("/scoring/rules", { name: `${when.name} ${definition.points > 0 ? "+" : ""}${definition.points}`, definition });
        form.reset();
        this.loadRules();
      } catch (err) { toast(err.message); }
    });
    return form;
  }

  async installPreset() {
    try { await post("/scoring/preset"); this.loadRules(); } catch (err) { toast(err.message); }
  }

  async loadRules() {
    try {
      const rules = (await get("/scoring/rules")).items;
      clear(this.rules);
      if (!rules.length) this.rules.append(h("tr", {}, h("td", { class: "muted" }, TEXT.noRules)));
      for (const r of rules) {
        const points = h("input", { type: "number", value: r.definition.points, "aria-label": `Points of ${r.name}`, disabled: !isAdmin(),
          onchange: (e) => this.update(r, { definition: { ...r.definition, points: Number(e.target.value) } }) });
        this.rules.append(h("tr", { dataset: { rule: r.id } }, h("td", {}, r.name), h("td", {}, TEXT.ruleWhen(r.definition)),
          h("td", {}, points), h("td", { class: "muted" }, TEXT.ruleLimit(r.definition)),
          h("td", {}, isAdmin() ? h("button", { type: "button", class: "link", onclick: () => this.remove(r) }, TEXT.remove) : null)));
      }
      this.watchProgress();
    } catch (err) { toast(err.message); }
  }

  async update(rule, body) {
    try { await patch(`/scoring/rules/${rule.id}`, body); this.loadRules(); } catch (err) { toast(err.message); }
  }

  async remove(rule) {
    try { await del(`/scoring/rules/${rule.id}`); this.loadRules(); } catch (err) { toast(err.message); }
  }

  async watchProgress() {
    clearTimeout(this.poll);
    try {
      const p = await get("/scoring/recompute");
      this.progress.textContent = p.running ? TEXT.recomputing(p.done, p.total) : p.finished_at ? TEXT.recomputed(p.finished_at) : "";
      if (p.running) this.poll = setTimeout(() => this.watchProgress(), 1000);
    } catch { /* the page was left or the server is away; the next visit asks again */ }
  }

  async loadGrading() {
    try {
      const g = await get("/scoring/grading");
      const t = g.config.thresholds;
      clear(this.grading).append(
        h("label", {}, h("input", { type: "checkbox", name: "enabled", checked: g.enabled, disabled: !isAdmin() }), ` ${TEXT.gradingOn}`),
        h("label", {}, `${TEXT.thresholds} `, [0, 1, 2].map((i) => h("input", { type: "number", name: `t${i}`, value: t[i], disabled: !isAdmin(),
          "aria-label": `Threshold ${i + 1}` }))),
        h("label", {}, `${TEXT.defaultFit} `, h("select", { name: "fit", disabled: !isAdmin() },
          [..."ABCDE"].map((f) => h("option", { value: f, selected: f === g.config.default_fit }, f)))),
        isAdmin() ? h("button", { type: "submit" }, TEXT.saveGrading) : null);
      this.grading.onsubmit = async (e) => {
        e.preventDefault();
        const f = this.grading.elements;
        const config = { ...g.config, default_fit: f.fit.value, thresholds: [0, 1, 2].map((i) => Number(f[`t${i}`].value)) };
        try { await request("PUT", "/scoring/grading", { enabled: f.enabled.checked, config }); this.watchProgress(); } catch (err) { toast(err.message); }
      };
    } catch (err) { toast(err.message); }
  }

  async loadNames() {
    try {
      const names = (await get("/data/names")).items;
      clear(this.names).append(names.map((n) => h("tr", {}, h("td", {}, n.kind), h("td", {}, n.name), h("td", {}, n.type),
        h("td", {}, String(n.count)), h("td", {}, fmtTime(n.last_seen_at)))));
    } catch (err) { toast(err.message); }
  }

  keyForm() {
    const form = h("form", { class: "add-key" },
      h("input", { name: "name", placeholder: TEXT.keyName, required: true, maxlength: 200, "aria-label": TEXT.keyName }),
      h("button", { type: "submit" }, TEXT.createKey));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const key = await post("/api-keys", { name: form.elements.name.value });
        form.reset();
        clear(this.secret).append(h("p", {}, TEXT.secretOnce), h("code", { class: "secret" }, key.secret));
        this.loadKeys();
      } catch (err) { toast(err.message); }
    });
    return form;
  }

  async loadKeys() {
    try {
      const keys = (await get("/api-keys")).items;
      clear(this.keys).append(keys.map((k) => h("tr", { class: k.revoked_at ? "inactive" : "" },
        h("td", {}, k.name), h("td", {}, h("code", {}, `${k.prefix}…`)), h("td", {}, fmtTime(k.created_at)),
        h("td", {}, k.last_used_at ? fmtTime(k.last_used_at) : TEXT.never),
        h("td", {}, k.revoked_at ? TEXT.revoked : h("button", { type: "button", class: "link", onclick: async () => {
          try { await del(`/api-keys/${k.id}`); clear(this.secret); this.loadKeys(); } catch (err) { toast(err.message); }
        } }, TEXT.revoke)))));
    } catch (err) { toast(err.message); }
  }
}
