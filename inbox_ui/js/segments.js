// Segments: the list with live member counts; admins build and edit them in a form (with a
// live count), or start from the presets; everyone can open a segment's contacts.

import { get, post, patch, del, request } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { isAdmin } from "./state.js";
import { t } from "./i18n.js";
import { SegmentBuilder } from "./segment_builder.js";
import { showSegment } from "./contacts.js";

// Every sentence this module shows (inbox_ui/i18n).
export const TEXT = {
  get title() { return t("segments.title"); },
  get none() { return t("segments.none"); },
  get add() { return t("segments.add"); },
  get preset() { return t("segments.preset"); },
  get save() { return t("segments.save"); },
  get cancel() { return t("segments.cancel"); },
  get edit() { return t("segments.edit"); },
  get remove() { return t("segments.remove"); },
  get contacts() { return t("segments.contacts"); },
  get export() { return t("segments.export"); },
  get name() { return t("segments.name"); },
  get description() { return t("segments.description"); },
  get members() { return t("segments.members"); },
  confirmDelete: (name) => t("segments.confirm_delete", { name }),
};

export async function behaviourNames() {
  try {
    const items = (await get("/data/names")).items;
    return { events: items.filter((n) => n.kind === "event").map((n) => n.name),
      properties: items.filter((n) => n.kind === "property").map((n) => n.name) };
  } catch { return { events: [], properties: [] }; }
}

export class SegmentsPage {
  constructor(main) {
    this.list = h("tbody");
    this.editor = h("div", { class: "segment-editor" });
    const presets = h("select", { class: "presets", "aria-label": TEXT.preset, hidden: !isAdmin(), onchange: async (e) => {
      const key = e.target.value;
      e.target.value = "";
      if (!key) return;
      try { await post(`/segments/presets/${encodeURIComponent(key)}`); this.load(); } catch (err) { toast(err.message); }
    } }, h("option", { value: "" }, TEXT.preset));
    this.presets = presets;
    main.append(h("div", { class: "segments-page" },
      h("h2", {}, TEXT.title),
      h("div", { class: "toolbar" },
        isAdmin() ? h("button", { type: "button", class: "new-segment", onclick: () => this.edit(null) }, TEXT.add) : null,
        presets),
      this.editor,
      h("table", { class: "segments" }, h("thead", {}, h("tr", {},
        [TEXT.name, TEXT.members, TEXT.description, ""].map((text) => h("th", {}, text)))), this.list)));
    this.load();
    if (isAdmin()) this.loadPresets();
  }

  async loadPresets() {
    try {
      for (const p of (await get("/segments/presets")).items) this.presets.append(h("option", { value: p.key }, p.name));
    } catch (err) { toast(err.message); }
  }

  async load() {
    try {
      this.segments = (await get("/segments")).items;
    } catch (err) { toast(err.message); return; }
    clear(this.list);
    if (!this.segments.length) this.list.append(h("tr", {}, h("td", { colspan: 4, class: "muted" }, TEXT.none)));
    for (const s of this.segments) {
      this.list.append(h("tr", { dataset: { segment: s.id } },
        h("td", { class: "name" }, s.name), h("td", { class: "count" }, String(s.count)), h("td", { class: "muted" }, s.description),
        h("td", {},
          h("button", { type: "button", class: "link", onclick: () => showSegment(s.id) }, TEXT.contacts), " ",
          h("button", { type: "button", class: "link", onclick: () => this.exportCsv(s) }, TEXT.export), " ",
          isAdmin() ? h("button", { type: "button", class: "link edit", onclick: () => this.edit(s) }, TEXT.edit) : null, " ",
          isAdmin() ? h("button", { type: "button", class: "link", onclick: () => this.remove(s) }, TEXT.remove) : null)));
    }
  }

  async edit(segment) {
    const names = await behaviourNames();
    const others = (this.segments || []).filter((s) => !segment || s.id !== segment.id);
    const builder = new SegmentBuilder(segment ? segment.definition : null, { names, segments: others });
    const form = h("form", { class: "segment-form" },
      h("label", {}, `${TEXT.name} `, h("input", { name: "name", required: true, maxlength: 200, value: segment ? segment.name : "" })),
      h("label", {}, `${TEXT.description} `, h("input", { name: "description", maxlength: 1000, value: segment ? segment.description : "" })),
      builder.el,
      h("button", { type: "submit" }, TEXT.save),
      h("button", { type: "button", class: "link", onclick: () => clear(this.editor) }, TEXT.cancel));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { name: form.elements.name.value, description: form.elements.description.value, definition: builder.definition };
      try {
        if (segment) await patch(`/segments/${segment.id}`, body); else await post("/segments", body);
        clear(this.editor);
        this.load();
      } catch (err) { toast(err.message); }
    });
    clear(this.editor).append(form);
  }

  async remove(segment) {
    if (!confirm(TEXT.confirmDelete(segment.name))) return;
    try { await del(`/segments/${segment.id}`); this.load(); } catch (err) { toast(err.message); }
  }

  async exportCsv(segment) {
    try {
      const response = await request("GET", `/segments/${segment.id}/export.csv`, undefined, { raw: true });
      const url = URL.createObjectURL(await response.blob());
      const a = h("a", { href: url, download: `segment-${segment.id}.csv` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (err) { toast(err.message); }
  }
}
