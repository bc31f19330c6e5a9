// Scoring and data: the scoring rules (admins edit, everyone reads) with the recomputation's
// progress, the grade thresholds, every event and property name seen, and (admins) API keys.

import { get, post, patch, del, request } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { fmtNumber, fmtTime, t } from "./i18n.js";
import { isAdmin } from "./state.js";

export const TEXT = {
  get scoring() { return t("scoring.title"); },
  get preset() { return t("scoring.preset"); },
  get addRule() { return t("scoring.add_rule"); },
  get event() { return t("scoring.event"); },
  get points() { return t("scoring.points"); },
  get urlContains() { return t("scoring.url_contains"); },
  get always() { return t("scoring.always"); },
  get once() { return t("scoring.once"); },
  get max() { return t("scoring.max"); },
  get maxTimes() { return t("scoring.max_times"); },
  get decay() { return t("scoring.decay"); },
  get remove() { return t("scoring.remove"); },
  get noRules() { return t("scoring.no_rules"); },
  get grading() { return t("scoring.grading"); },
  get gradingOn() { return t("scoring.grading_on"); },
  get thresholds() { return t("scoring.thresholds"); },
  get defaultFit() { return t("scoring.default_fit"); },
  get saveGrading() { return t("scoring.save_grading"); },
  get data() { return t("scoring.data"); },
  get kind() { return t("scoring.kind"); },
  get name() { return t("scoring.name"); },
  get type() { return t("scoring.type"); },
  get count() { return t("scoring.count"); },
  get lastSeen() { return t("scoring.last_seen"); },
  get keys() { return t("scoring.keys"); },
  get keyName() { return t("scoring.key_name"); },
  get createKey() { return t("scoring.create_key"); },
  get revoke() { return t("scoring.revoke"); },
  get secretOnce() { return t("scoring.secret_once"); },
  get revoked() { return t("scoring.revoked"); },
  get never() { return t("scoring.never"); },
  get prefix() { return t("scoring.prefix"); },
  get created() { return t("scoring.created"); },
  get lastUsed() { return t("scoring.last_used"); },
  get howOften() { return t("scoring.how_often"); },
  recomputing: (done, total) => t("scoring.recomputing", { done: fmtNumber(done), total: fmtNumber(total) }),
  recomputed: (at) => t("scoring.recomputed", { time: fmtTime(at) }),
  ruleWhen: (d) => (d.when.kind === "event"
    ? t("scoring.when_event", { name: d.when.name }) + (d.when.url_contains ? t("scoring.when_url", { url: d.when.url_contains }) : "")
      + (d.when.where?.length ? t("scoring.when_where") : "")
    : t("scoring.when_card")),
  ruleLimit: (d) => ({ always: t("scoring.limit_always"), once: t("scoring.limit_once"), max: t("scoring.limit_max", { n: d.max_times }) }[d.limit])
    + (d.expires_days ? t("scoring.expires", { count: d.expires_days }) : ""),
  pointsOf: (name) => t("scoring.points_of", { name }),
  threshold: (n) => t("scoring.threshold", { n }),
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
        h("thead", {}, h("tr", {}, [TEXT.name, TEXT.prefix, TEXT.created, TEXT.lastUsed, ""].map((text) => h("th", {}, text)))), this.keys)] : null,
      h("h2", {}, TEXT.data),
      h("table", { class: "data-names" }, h("thead", {}, h("tr", {},
        [TEXT.kind, TEXT.name, TEXT.type, TEXT.count, TEXT.lastSeen].map((text) => h("th", {}, text)))), this.names)));
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
      h("select", { name: "limit", "aria-label": TEXT.howOften }, ["always", "once", "max"].map((l) => h("option", { value: l }, TEXT[l]))),
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
        const points = h("input", { type: "number", value: r.definition.points, "aria-label": TEXT.pointsOf(r.name), disabled: !isAdmin(),
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
      const thresholds = g.config.thresholds;
      clear(this.grading).append(
        h("label", {}, h("input", { type: "checkbox", name: "enabled", checked: g.enabled, disabled: !isAdmin() }), ` ${TEXT.gradingOn}`),
        h("label", {}, `${TEXT.thresholds} `, [0, 1, 2].map((i) => h("input", { type: "number", name: `t${i}`, value: thresholds[i], disabled: !isAdmin(),
          "aria-label": TEXT.threshold(i + 1) }))),
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
        h("td", {}, fmtNumber(n.count)), h("td", {}, fmtTime(n.last_seen_at)))));
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
