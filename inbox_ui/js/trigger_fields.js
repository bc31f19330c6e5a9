// The trigger form's building blocks: a labelled field that can show the server's complaint
// about it, inputs bound to one key of the form state, and event-property condition rows.

import { h, clear } from "./dom.js";
import { t } from "./i18n.js";
import { WHEN_TYPES, WHERE_OPS } from "./trigger_definition.js";

export const OP_LABEL = {
  get eq() { return t("builder.op.eq"); },
  get ne() { return t("builder.op.ne"); },
  get contains() { return t("builder.op.contains"); },
  get gt() { return t("builder.op.gt"); },
  get gte() { return t("builder.op.gte"); },
  get lt() { return t("builder.op.lt"); },
  get lte() { return t("builder.op.lte"); },
  get is_set() { return t("builder.op.is_set"); },
  get not_set() { return t("builder.op.not_set"); },
};

// `path` names the field as the server does ("when.count", "variants.0.weight"), so a 422
// lands next to what it is about.
export function field(path, label, ...controls) {
  return h("label", { class: "field", dataset: { field: path } },
    h("span", { class: "label" }, label), ...controls, h("span", { class: "field-error", role: "alert" }));
}

export function input(obj, key, { type = "text", label = key, onChange = () => {}, ...attrs } = {}) {
  return h("input", { type, name: key, value: obj[key] ?? "", "aria-label": label, ...attrs,
    oninput: (e) => { obj[key] = e.target.value; onChange(e.target.value); } });
}

export function textarea(obj, key, { label = key, onChange = () => {}, ...attrs } = {}) {
  const el = h("textarea", { name: key, "aria-label": label, rows: 3, ...attrs,
    oninput: (e) => { obj[key] = e.target.value; onChange(e.target.value); } });
  el.value = obj[key] ?? "";
  return el;
}

// options: [[value, label], ...]; values are compared as text, `cast` turns the choice back.
export function select(obj, key, options, { label = key, onChange = () => {}, cast = (v) => v, ...attrs } = {}) {
  return h("select", { name: key, "aria-label": label, ...attrs,
    onchange: (e) => { obj[key] = cast(e.target.value); onChange(obj[key]); } },
  options.map(([value, text]) => h("option", { value, selected: String(value) === String(obj[key] ?? "") }, text)));
}

export function check(obj, key, label, { onChange = () => {} } = {}) {
  return h("label", { class: "check", dataset: { field: key } },
    h("input", { type: "checkbox", name: key, checked: obj[key],
      onchange: (e) => { obj[key] = e.target.checked; onChange(e.target.checked); } }), ` ${label}`);
}

// Conditions on the event's properties ("url contains /pricing"): rows the operator adds.
export function whereRows(rows, path, propertyList) {
  const box = h("div", { class: "where-rows", dataset: { field: path } });
  const render = () => {
    clear(box).append(h("span", { class: "label" }, t("triggers.where")));
    rows.forEach((row, i) => {
      const value = input(row, "value", { label: t("builder.value"), placeholder: t("builder.value"), class: "where-value",
        hidden: ["is_set", "not_set"].includes(row.op) });
      box.append(h("div", { class: "where-row", dataset: { field: `${path}.${i}` } },
        input(row, "key", { label: t("builder.key"), placeholder: t("builder.key"), list: propertyList, class: "where-key" }),
        select(row, "op", WHERE_OPS.map((o) => [o, OP_LABEL[o]]), { label: t("builder.operator"), class: "where-op",
          onChange: (op) => { value.hidden = ["is_set", "not_set"].includes(op); } }),
        value,
        h("button", { type: "button", class: "link remove", onclick: () => { rows.splice(i, 1); render(); } }, t("builder.remove"))));
    });
    box.append(h("button", { type: "button", class: "link add-where", onclick: () => {
      rows.push({ key: "", op: "eq", value: "" }); render();
    } }, t("triggers.add_where")), h("span", { class: "field-error", role: "alert" }));
  };
  render();
  return box;
}

// Server (or form) complaints, each shown at the field whose path is the longest prefix of its
// location; what matches no field is shown at the form's general slot.
export function showErrors(root, errors) {
  for (const el of root.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of root.querySelectorAll(".has-error")) el.classList.remove("has-error");
  for (const { loc, message } of errors) {
    const target = fieldFor(root, loc) || root.querySelector("[data-field='']");
    const slot = target.querySelector(":scope > .field-error") || target.querySelector(".field-error");
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    target.classList.add("has-error");
  }
}

function fieldFor(root, loc) {
  // pydantic names the chosen kind of a union inside the path ("when.event.count"): try without.
  const tagged = loc[0] === "when" && loc.length > 2 && WHEN_TYPES.includes(loc[1]);
  const paths = tagged ? [[loc[0], ...loc.slice(2)], loc] : [loc];
  for (const parts of paths) {
    for (let n = parts.length; n > 0; n--) {
      const el = root.querySelector(`[data-field="${CSS.escape(parts.slice(0, n).join("."))}"]`);
      if (el) return el;
    }
  }
  return null;
}
