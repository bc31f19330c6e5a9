// Admin: the channels (Telegram bots, VK communities, mailboxes): their state, and guided
// forms to connect, edit, pause and remove them. The server checks credentials on save and
// answers what is wrong; secrets are never shown, and a secret left empty keeps the stored one.

import { get, post, patch, del } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { channelName, fmtAgo, fmtNumber, fmtTime, t } from "./i18n.js";

const REFRESH_MS = 3000;
const KINDS = ["telegram", "vk", "email"];
// Settings that are secrets: the form leaves them empty, and empty means "keep".
const SECRETS = new Set(["token", "secret", "smtp_password", "imap_password"]);
const NUMBERS = new Set(["group_id", "smtp_port", "imap_port", "listen_port"]);

// The input a refusal is about, so the message stands next to it.
const ERROR_FIELD = {
  token_refused: "token", wrong_community: "group_id", longpoll_disabled: "mode",
  smtp_login_refused: "smtp_password", smtp_unreachable: "smtp_host", smtp_tls_failed: "smtp_security",
  smtp_refused: "smtp_host", imap_login_refused: "imap_password", imap_unreachable: "imap_host",
  imap_folder_missing: "imap_folder", ca_file_unreadable: "ca_file", service_unreachable: "api_base",
};

function checkHint(code) {
  return {
    token_refused: t("channels.check.token_refused"),
    wrong_community: t("channels.check.wrong_community"),
    longpoll_disabled: t("channels.check.longpoll_disabled"),
    service_unreachable: t("channels.check.service_unreachable"),
    smtp_login_refused: t("channels.check.login_refused"),
    imap_login_refused: t("channels.check.login_refused"),
    smtp_unreachable: t("channels.check.host_unreachable"),
    imap_unreachable: t("channels.check.host_unreachable"),
    smtp_tls_failed: t("channels.check.tls_failed"),
    imap_folder_missing: t("channels.check.folder_missing"),
  }[code] || t("channels.check.refused");
}

function stateName(state) {
  return { connected: t("channels.state.connected"), paused: t("channels.state.paused"),
    failing: t("channels.state.failing") }[state] || state;
}

// What each kind asks for: [field, label, input attributes, help]. `when` shows a field only
// in one mode; `advanced` folds it away.
function fieldsFor(kind) {
  if (kind === "telegram") {
    return [
      { name: "token", label: t("channels.tg.token"), help: t("channels.tg.token_help"), attrs: { autocomplete: "off" } },
      { name: "mode", label: t("channels.mode"), options: [["polling", t("channels.tg.polling")], ["webhook", t("channels.tg.webhook")]],
        help: t("channels.tg.mode_help") },
      { name: "public_url", label: t("channels.public_url"), help: t("channels.public_url_help"), when: ["mode", "webhook"],
        attrs: { type: "url", placeholder: "https://chat.example.com", required: true } },
      { name: "api_base", label: t("channels.tg.api_base"), help: t("channels.tg.api_base_help"), advanced: true, attrs: { type: "url" } },
    ];
  }
  if (kind === "vk") {
    return [
      { name: "token", label: t("channels.vk.token"), help: t("channels.vk.token_help"), attrs: { autocomplete: "off" } },
      { name: "group_id", label: t("channels.vk.group_id"), help: t("channels.vk.group_id_help"), attrs: { type: "number", min: 1 } },
      { name: "mode", label: t("channels.mode"), options: [["longpoll", t("channels.vk.longpoll")], ["callback", t("channels.vk.callback")]],
        help: t("channels.vk.mode_help") },
      { name: "confirmation", label: t("channels.vk.confirmation"), help: t("channels.vk.confirmation_help"), when: ["mode", "callback"],
        attrs: { required: true } },
      { name: "secret", label: t("channels.vk.secret"), help: t("channels.vk.secret_help"), when: ["mode", "callback"] },
    ];
  }
  return [
    { name: "address", label: t("channels.mail.address"), attrs: { type: "email", placeholder: "support@example.com" } },
    { name: "display_name", label: t("channels.mail.display_name"), attrs: { placeholder: t("channels.mail.display_name_example") } },
    { name: "smtp_host", label: t("channels.mail.smtp_host"), help: t("channels.mail.smtp_help"), attrs: { placeholder: "smtp.example.com" } },
    { name: "smtp_port", label: t("channels.mail.port"), attrs: { type: "number", min: 1, max: 65535, value: 587 } },
    { name: "smtp_security", label: t("channels.mail.security"), options: [["starttls", "STARTTLS"], ["ssl", "SSL/TLS"], ["none", t("channels.mail.none")]] },
    { name: "smtp_username", label: t("channels.mail.username") },
    { name: "smtp_password", label: t("channels.mail.password"), help: t("channels.mail.password_help") },
    { name: "imap_host", label: t("channels.mail.imap_host"), help: t("channels.mail.imap_help"), attrs: { placeholder: "imap.example.com" } },
    { name: "imap_port", label: t("channels.mail.port"), attrs: { type: "number", min: 1, max: 65535, value: 993 } },
    { name: "imap_security", label: t("channels.mail.security"), options: [["ssl", "SSL/TLS"], ["none", t("channels.mail.none")]] },
    { name: "imap_username", label: t("channels.mail.username") },
    { name: "imap_password", label: t("channels.mail.password") },
    { name: "imap_folder", label: t("channels.mail.folder"), advanced: true, attrs: { placeholder: "INBOX" } },
    { name: "ca_file", label: t("channels.mail.ca_file"), help: t("channels.mail.ca_file_help"), advanced: true },
    { name: "listen_port", label: t("channels.mail.listen_port"), help: t("channels.mail.listen_help"), advanced: true,
      attrs: { type: "number", min: 1, max: 65535 } },
  ];
}

function guideFor(kind) {
  return { telegram: t("channels.tg.guide"), vk: t("channels.vk.guide"), email: t("channels.mail.guide") }[kind];
}

export class ChannelsSection {
  constructor() {
    this.list = h("tbody");
    this.formBox = h("div", { class: "channel-form-box" });
    this.el = h("section", { class: "channels-admin" },
      h("h2", {}, t("channels.title")),
      h("table", { class: "channels" }, h("thead", {}, h("tr", {},
        [t("field.name"), t("channels.kind"), t("channels.state"), t("channels.last_update"), t("channels.queue"), ""]
          .map((label) => h("th", {}, label)))), this.list),
      h("p", { class: "channel-add" }, KINDS.map((kind) => h("button", { type: "button", dataset: { kind },
        onclick: () => this.openForm(kind, null) }, { telegram: t("channels.add_telegram"), vk: t("channels.add_vk"),
        email: t("channels.add_email") }[kind]))),
      this.formBox);
    this.load();
    // The state changes by itself (updates arrive, polls fail): keep it fresh while shown.
    this.timer = setInterval(() => {
      if (!this.el.isConnected) clearInterval(this.timer);
      else this.load();
    }, REFRESH_MS);
  }

  async load() {
    try {
      this.render((await get("/channels")).items);
    } catch (err) {
      clear(this.list).append(h("tr", {}, h("td", { colspan: 6, class: "error" }, err.message)));
    }
  }

  render(items) {
    clear(this.list);
    if (!items.length) this.list.append(h("tr", {}, h("td", { colspan: 6, class: "muted" }, t("channels.none"))));
    for (const c of items) {
      const error = c.last_error ? h("div", { class: "error channel-error" }, c.last_error,
        c.last_error_at ? ` (${fmtTime(c.last_error_at)})` : "") : null;
      this.list.append(h("tr", { class: `channel ${c.state}`, dataset: { id: c.id, kind: c.channel } },
        h("td", {}, c.name, c.channel === "telegram" && c.config.bot_username ? h("div", { class: "muted" }, `@${c.config.bot_username}`) : null,
          c.config.mode === "callback" ? h("div", { class: "muted" }, t("channels.webhook_address"), " ",
            h("code", {}, `${location.origin}${c.webhook_path}`)) : null),
        h("td", {}, channelName(c.channel)),
        h("td", { class: "channel-state" }, h("span", { class: `badge state-${c.state}` }, stateName(c.state)), error),
        h("td", { class: "last-update", title: c.last_update_at ? fmtTime(c.last_update_at) : "" },
          c.last_update_at ? fmtAgo(c.last_update_at) : t("channels.never")),
        h("td", { class: "queue" }, fmtNumber(c.queue_length)),
        h("td", { class: "actions" },
          h("button", { type: "button", onclick: () => this.openForm(c.channel, c) }, t("channels.edit")),
          h("button", { type: "button", onclick: () => this.change(c.id, { enabled: !c.enabled }) },
            c.enabled ? t("channels.pause") : t("channels.resume")),
          h("button", { type: "button", onclick: () => this.remove(c) }, t("channels.remove")))));
    }
  }

  async change(id, body) {
    try { await patch(`/channels/${id}`, body); } catch (err) { toast(err.message); }
    this.load();
  }

  async remove(c) {
    if (!confirm(t("channels.remove_confirm", { name: c.name }))) return;
    try {
      const answer = await del(`/channels/${c.id}`);
      if (answer.failed_replies) toast(t("channels.removed_failed", { count: answer.failed_replies }));
    } catch (err) { toast(err.message); }
    if (this.editing === c.id) clear(this.formBox);
    this.load();
  }

  openForm(kind, instance) {
    this.editing = instance ? instance.id : null;
    const config = instance ? instance.config : {};
    const fields = fieldsFor(kind);
    const problem = h("p", { class: "error check-error", role: "alert", hidden: true });
    const inputs = new Map();
    const row = (f) => {
      let input;
      if (f.options) {
        input = h("select", { name: f.name }, f.options.map(([value, label]) =>
          h("option", { value, selected: (config[f.name] ?? f.options[0][0]) === value }, label)));
      } else {
        const secret = SECRETS.has(f.name);
        input = h("input", { name: f.name, type: secret ? "password" : "text", ...(f.attrs || {}) });
        if (secret && instance && config[f.name]) input.placeholder = t("channels.secret_kept", { hint: config[f.name] });
        else if (config[f.name] !== undefined && config[f.name] !== null && !secret) input.value = String(config[f.name]);
        if (secret && !instance && (f.name === "token" || f.name === "secret")) input.required = true;
      }
      inputs.set(f.name, input);
      const label = h("label", { class: "field", dataset: { field: f.name } }, h("span", {}, f.label), input,
        f.help ? h("small", { class: "muted help" }, f.help) : null);
      if (f.when) label.dataset.when = f.when.join("=");
      return label;
    };
    const form = h("form", { class: `channel-form ${kind}` },
      h("h3", {}, instance ? t("channels.edit_title", { name: instance.name }) : { telegram: t("channels.add_telegram"),
        vk: t("channels.add_vk"), email: t("channels.add_email") }[kind]),
      h("p", { class: "guide" }, guideFor(kind)),
      h("label", { class: "field" }, h("span", {}, t("field.name")),
        h("input", { name: "name", required: true, maxlength: 200, value: instance ? instance.name : "",
          placeholder: t("channels.name_example") })),
      fields.filter((f) => !f.advanced).map(row),
      fields.some((f) => f.advanced) ? h("details", {}, h("summary", {}, t("channels.advanced")), fields.filter((f) => f.advanced).map(row)) : null,
      instance && kind !== "email" ? h("p", { class: "muted" }, t("channels.webhook_address"), " ",
        h("code", {}, `${location.origin}${instance.webhook_path}`)) : null,
      problem,
      h("p", {}, h("button", { type: "submit" }, t("channels.check_save")), " ",
        h("button", { type: "button", onclick: () => { clear(this.formBox); this.editing = null; } }, t("channels.cancel"))));
    const showWhen = () => {
      for (const label of form.querySelectorAll("[data-when]")) {
        const [name, value] = label.dataset.when.split("=");
        label.hidden = inputs.get(name).value !== value;
        // A field of the other mode is neither asked for nor sent.
        label.querySelector("input").disabled = label.hidden;
      }
    };
    form.addEventListener("change", showWhen);
    showWhen();
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const submit = form.querySelector("button[type=submit]");
      const body = {};
      for (const f of fields) {
        const input = inputs.get(f.name);
        if (input.closest("[data-when]")?.hidden) continue;
        const value = input.value.trim();
        if (value === "" && (SECRETS.has(f.name) || instance)) {
          if (instance && !SECRETS.has(f.name) && config[f.name]) body[f.name] = NUMBERS.has(f.name) ? null : "";
          continue; // an empty secret keeps the stored one
        }
        if (value !== "") body[f.name] = NUMBERS.has(f.name) ? Number(value) : value;
      }
      problem.hidden = true;
      for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
      submit.disabled = true;
      submit.textContent = t("channels.checking");
      try {
        if (instance) await patch(`/channels/${instance.id}`, { name: form.elements.name.value, config: body });
        else await post("/channels", { channel: kind, name: form.elements.name.value, config: body });
        clear(this.formBox);
        this.editing = null;
        toast(t("channels.saved"), "ok");
        this.load();
      } catch (err) {
        clear(problem).append(h("strong", {}, checkHint(err.code)), " ", err.message);
        problem.hidden = false;
        const field = inputs.get(ERROR_FIELD[err.code]);
        if (field) {
          field.setAttribute("aria-invalid", "true");
          field.closest("label").after(problem);
          field.closest("details")?.setAttribute("open", "");
        }
      } finally {
        submit.disabled = false;
        submit.textContent = t("channels.check_save");
      }
    });
    clear(this.formBox).append(form);
    form.elements.name.focus();
  }
}
