// Admin: outgoing webhooks. Register an endpoint for chosen events (its signing secret is shown
// once), see each one's last status and recent deliveries, send a test, rotate the secret.

import { get, post, patch, del } from "./api.js";
import { append, h, clear, toast } from "./dom.js";
import { fmtTime, t } from "./i18n.js";

// Literal keys, so the catalogue test sees every one.
function eventName(type) {
  return {
    "conversation.created": t("webhooks.event_conversation_created"),
    "message.created": t("webhooks.event_message_created"),
    "conversation.status_changed": t("webhooks.event_status_changed"),
    "contact.created": t("webhooks.event_contact_created"),
    "contact.updated": t("webhooks.event_contact_updated"),
    "contact.merged": t("webhooks.event_contact_merged"),
    "segment.entered": t("webhooks.event_segment_entered"),
    "segment.left": t("webhooks.event_segment_left"),
    "trigger.fired": t("webhooks.event_trigger_fired"),
    "webhook.test": t("webhooks.event_test"),
  }[type] || type;
}

function stateName(state) {
  return {
    pending: t("webhooks.state_pending"), delivered: t("webhooks.state_delivered"),
    failed: t("webhooks.state_failed"), cancelled: t("webhooks.state_cancelled"),
  }[state] || state;
}

function lastStatus(hook) {
  if (!hook.last_attempt_at) return t("webhooks.never_sent");
  const code = hook.last_status_code ? `HTTP ${hook.last_status_code}` : t("webhooks.no_answer");
  return [code, fmtTime(hook.last_attempt_at), hook.last_error || ""].filter(Boolean).join(" · ");
}

export class WebhooksSection {
  constructor() {
    this.rows = h("tbody");
    this.secret = h("div", { class: "secret-once", "aria-live": "polite" });
    this.eventTypes = [];
    this.open = new Set();  // hooks whose recent deliveries are shown; they survive a refresh
    this.refresh = null;    // the timer that follows pending deliveries until they settle
    this.form = h("form", { class: "add-webhook" });
    this.el = h("section", { class: "webhooks-admin" },
      h("h2", {}, t("webhooks.title")),
      h("p", { class: "muted" }, t("webhooks.hint")),
      this.secret,
      h("table", { class: "webhooks" }, h("thead", {}, h("tr", {},
        [t("field.name"), t("webhooks.url"), t("webhooks.events"), t("webhooks.last_status"), ""].map((x) => h("th", {}, x)))),
      this.rows),
      this.form);
    this.load();
  }

  buildForm() {
    clear(this.form).append(
      h("input", { name: "name", placeholder: t("field.name"), "aria-label": t("field.name"), required: true, maxlength: 200 }),
      h("input", { name: "url", type: "url", placeholder: "https://crm.example.com/hooks/chat", "aria-label": t("webhooks.url"), required: true, maxlength: 2000 }),
      h("fieldset", { class: "webhook-events" }, h("legend", {}, t("webhooks.events")),
        this.eventTypes.map((type) => h("label", {}, h("input", { type: "checkbox", name: "events", value: type }), " ", eventName(type)))),
      h("button", { type: "submit" }, t("webhooks.add")));
    this.form.onsubmit = async (e) => {
      e.preventDefault();
      const events = [...this.form.querySelectorAll("input[name=events]:checked")].map((box) => box.value);
      try {
        const hook = await post("/webhooks", { name: this.form.elements.name.value, url: this.form.elements.url.value, events });
        this.form.reset();
        this.showSecret(hook);
        this.load();
      } catch (err) { toast(err.message); }
    };
  }

  showSecret(hook) {
    clear(this.secret).append(h("p", {}, t("webhooks.secret_once", { name: hook.name })), h("code", { class: "secret" }, hook.secret));
  }

  async load() {
    try {
      const list = await get("/webhooks");
      if (this.eventTypes.length === 0) {
        this.eventTypes = list.event_types;
        this.buildForm();
      }
      const rows = list.items.map((hook) => this.row(hook));
      append(clear(this.rows), rows);
      const shown = await Promise.all(list.items.map((hook, i) =>
        this.open.has(hook.id) ? this.fillDeliveries(hook, rows[i][1]) : false));
      this.followPending(shown.some(Boolean) || list.items.some((hook) => this.open.has(hook.id) && hook.waiting));
    } catch (err) { toast(err.message); }
  }

  // While a shown delivery is still pending, look again shortly: the admin who pressed
  // "Send test" sees it turn delivered (or failed, with the answer) without reloading.
  followPending(pending) {
    clearTimeout(this.refresh);
    this.refresh = pending && this.el.isConnected ? setTimeout(() => this.load(), 2000) : null;
  }

  row(hook) {
    const deliveries = h("tr", { class: "webhook-deliveries", hidden: true }, h("td", { colspan: 5 }));
    const act = (label, cls, run) => h("button", { type: "button", class: `link ${cls}`, onclick: async () => {
      try { await run(); } catch (err) { toast(err.message); }
    } }, label);
    const main = h("tr", { class: hook.enabled ? "" : "inactive", dataset: { id: hook.id } },
      h("td", {}, hook.name), h("td", {}, h("code", {}, hook.url)),
      h("td", {}, hook.events.map(eventName).join(", ")),
      h("td", { class: "last-status" }, lastStatus(hook),
        hook.waiting ? h("span", { class: "muted" }, " · ", t("webhooks.waiting", { count: hook.waiting })) : null),
      h("td", {},
        act(t("webhooks.send_test"), "send-test", async () => {
          await post(`/webhooks/${hook.id}/test`); toast(t("webhooks.test_queued")); this.open.add(hook.id); await this.load();
        }),
        act(t("webhooks.show_deliveries"), "show-deliveries", () => this.toggleDeliveries(hook)),
        act(t("webhooks.rotate"), "rotate", async () => { this.showSecret(await post(`/webhooks/${hook.id}/rotate-secret`)); }),
        act(hook.enabled ? t("webhooks.disable") : t("webhooks.enable"), "toggle", async () => {
          await patch(`/webhooks/${hook.id}`, { enabled: !hook.enabled }); this.load();
        }),
        act(t("common.delete"), "delete", async () => { await del(`/webhooks/${hook.id}`); clear(this.secret); this.load(); })));
    return [main, deliveries];
  }

  async toggleDeliveries(hook) {
    if (this.open.has(hook.id)) this.open.delete(hook.id); else this.open.add(hook.id);
    await this.load();
  }

  // Fills a hook's deliveries row; answers whether any shown delivery is still pending.
  async fillDeliveries(hook, row) {
    const items = (await get(`/webhooks/${hook.id}/deliveries?limit=20`)).items;
    const cell = row.firstChild;
    clear(cell).append(items.length === 0 ? h("p", { class: "muted" }, t("webhooks.no_deliveries")) :
      h("table", { class: "deliveries" }, h("thead", {}, h("tr", {},
        [t("webhooks.event"), t("webhooks.state"), t("webhooks.attempts"), t("webhooks.answer"), t("webhooks.created")].map((x) => h("th", {}, x)))),
      h("tbody", {}, items.map((d) => h("tr", { class: `delivery ${d.state}` },
        h("td", {}, eventName(d.event_type)), h("td", {}, stateName(d.state)), h("td", {}, String(d.attempts)),
        h("td", {}, [d.last_status_code ? `HTTP ${d.last_status_code}` : "", d.last_error || ""].filter(Boolean).join(" · ")),
        h("td", {}, fmtTime(d.created_at)))))));
    row.hidden = false;
    return items.some((d) => d.state === "pending");
  }
}
