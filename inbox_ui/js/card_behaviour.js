// On the contact card: the lead score with its breakdown by rule, the grade, and the segments
// the contact is in.

import { get } from "./api.js";
import { h, clear } from "./dom.js";
import { fmtNumber, fmtTime, t } from "./i18n.js";

export const TEXT = {
  get title() { return t("behaviour.title"); },
  get score() { return t("behaviour.score"); },
  get grade() { return t("behaviour.grade"); },
  get noSegments() { return t("behaviour.no_segments"); },
  get segments() { return t("behaviour.segments"); },
  times: (count) => t("behaviour.times", { count }),
  since: (at) => t("behaviour.since", { time: fmtTime(at) }),
};

export class BehaviourSummary {
  constructor(contactId) {
    this.el = h("section", { class: "behaviour-summary", "aria-label": TEXT.title });
    this.load(contactId);
  }

  async load(contactId) {
    try {
      const b = await get(`/contacts/${contactId}/behaviour`);
      clear(this.el).append(
        h("h3", {}, TEXT.title),
        h("p", { class: "score" }, `${TEXT.score}: `, h("b", { class: "score-value" }, fmtNumber(b.score)),
          b.grade ? [" · ", `${TEXT.grade}: `, h("b", { class: "grade" }, b.grade)] : null),
        b.breakdown.length ? h("table", { class: "facts score-breakdown" }, b.breakdown.map((r) => h("tr", {},
          h("th", {}, r.name), h("td", {}, `${r.points > 0 ? "+" : ""}${fmtNumber(r.points)}`), h("td", { class: "muted" }, TEXT.times(r.times))))) : null,
        h("div", { class: "contact-segments" }, b.segments.length
          ? b.segments.map((s) => h("span", { class: "tag segment", title: TEXT.since(s.entered_at) }, s.name))
          : h("span", { class: "muted" }, TEXT.noSegments)));
    } catch (err) {
      clear(this.el).append(h("p", { class: "error" }, err.message));
    }
  }
}
