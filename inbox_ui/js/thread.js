// One conversation's thread: every channel interleaved, notes and system lines set apart,
// older history loaded by scrolling up.

import { authorizedUrl, get, query } from "./api.js";
import { h, clear, fmtTime, safeUrl, toast } from "./dom.js";
import { channelName, deliveryName, fmtSize, t } from "./i18n.js";

// System lines are stored as English sentences (docs/architecture.md#inbox-languages); the
// ones the server writes are recognised here and told in the operator's language.
const SYSTEM_LINES = [
  [/^(.+) assigned the conversation to (.+)$/, (m) => t("system.assigned", { actor: m[1], assignee: m[2] })],
  [/^(.+) unassigned the conversation$/, (m) => t("system.unassigned", { actor: m[1] })],
  [/^Snooze ended: the conversation is open again$/, () => t("system.snooze_ended")],
  [/^(.+) reopened the conversation$/, (m) => t("system.reopened", { actor: m[1] })],
  [/^(.+) closed the conversation$/, (m) => t("system.closed", { actor: m[1] })],
  [/^(.+) snoozed the conversation until (\d{4}-\d\d-\d\d \d\d:\d\d) UTC$/,
    (m) => t("system.snoozed", { actor: m[1], time: fmtTime(`${m[2].replace(" ", "T")}:00Z`) })],
  [/^Merged contact #(\d+) into this one by (.+?): (.*)$/s, (m) => t("system.merged_by", { id: m[1], actor: m[2], reason: m[3] })],
  [/^Merged contact #(\d+) into this one automatically: (.*)$/s, (m) => t("system.merged_auto", { id: m[1], reason: m[2] })],
  [/^The contact continued on (Telegram|VK|email)$/, (m) => t("system.continued", { channel: channelName(m[1].toLowerCase()) })],
];

export function systemText(text) {
  for (const [pattern, say] of SYSTEM_LINES) {
    const match = pattern.exec(text);
    if (match) return say(match);
  }
  return text;
}

const OWN_FILES = "/api/v1/attachments/";

function ownFileLink(a, url, label) {
  return h("a", { href: "#", class: "file", onclick: async (e) => {
    e.preventDefault();
    try {
      const local = await authorizedUrl(url);
      const save = h("a", { href: local, download: a.name || "file" });
      document.body.append(save);
      save.click();
      save.remove();
    } catch (err) { toast(err.message); }
  } }, label);
}

function attachmentsView(list) {
  if (!list || !list.length) return null;
  return h("ul", { class: "attachments" }, list.map((a) => {
    const url = safeUrl(a.url);
    const label = `${a.name || t("thread.file")}${a.size ? ` (${fmtSize(a.size)})` : ""}`;
    const isImage = typeof a.content_type === "string" && a.content_type.startsWith("image/") && url;
    const own = url && url.startsWith(OWN_FILES);
    let preview = null;
    if (isImage && own) {
      preview = h("img", { alt: a.name || t("thread.image"), class: "preview" });
      authorizedUrl(url).then((local) => { preview.src = local; }, () => { preview.remove(); });
    } else if (isImage) {
      preview = h("img", { src: url, alt: a.name || t("thread.image"), loading: "lazy", class: "preview", referrerpolicy: "no-referrer" });
    }
    let link;
    if (!url) link = h("span", {}, label);
    else if (own) link = ownFileLink(a, url, label);
    else link = h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label);
    return h("li", {}, preview, link);
  }));
}

function authorName(type) {
  return { contact: t("author.contact"), operator: t("author.operator"), bot: t("author.bot"), system: t("author.system") }[type] || type;
}

export function messageView(m) {
  if (m.kind === "system") {
    return h("div", { class: "msg system", dataset: { seq: m.seq, id: m.id } },
      h("span", { class: "text" }, systemText(m.text)), " ", h("time", { datetime: m.created_at }, fmtTime(m.created_at)));
  }
  const side = m.direction === "inbound" ? "in" : "out";
  const state = m.direction === "outbound"
    ? h("span", { class: `state ${m.delivery_state}`, title: m.delivery_error || "" },
      deliveryName(m.delivery_state),
      m.delivery_state === "failed" && m.delivery_error ? `: ${m.delivery_error}` : "")
    : null;
  return h("div", { class: `msg ${m.kind === "note" ? "note" : side} ${m.kind}`, dataset: { seq: m.seq, id: m.id } },
    h("div", { class: "meta" },
      m.kind === "note" ? h("span", { class: "badge note" }, t("thread.note")) : null,
      m.channel !== "internal" ? h("span", { class: `badge ch-${m.channel}` }, channelName(m.channel)) : null,
      m.kind === "automatic" ? h("span", { class: "badge auto" }, t("thread.automatic")) : null,
      h("span", { class: "author" }, m.author.name || authorName(m.author.type)),
      h("time", { datetime: m.created_at }, fmtTime(m.created_at))),
    m.text ? h("div", { class: "text" }, m.text) : null,
    attachmentsView(m.attachments),
    state);
}

export class Thread {
  constructor(conversationId, { onLoaded } = {}) {
    this.id = conversationId;
    this.messages = new Map(); // seq -> message
    this.epoch = null;
    this.nextBefore = null;
    this.loading = false;
    this.onLoaded = onLoaded || (() => {});
    this.list = h("div", { class: "messages", role: "log", "aria-label": t("thread.conversation") });
    this.older = h("button", { type: "button", class: "older", hidden: true, onclick: () => this.loadOlder() },
      t("thread.older"));
    this.typing = h("div", { class: "typing", "aria-live": "polite" });
    this.el = h("div", { class: "thread-scroll" }, this.older, this.list, this.typing);
    this.el.addEventListener("scroll", () => {
      if (this.el.scrollTop < 40 && this.nextBefore) this.loadOlder();
    });
  }

  get lastSeq() {
    let max = 0;
    for (const seq of this.messages.keys()) max = Math.max(max, seq);
    return max;
  }

  async load() {
    this.messages.clear();
    clear(this.list);
    const page = await get(`/conversations/${this.id}/messages${query({ limit: 50 })}`);
    for (const m of page.items) this.messages.set(m.seq, m);
    this.nextBefore = page.next_before_seq;
    this.render();
    this.el.scrollTop = this.el.scrollHeight;
    this.onLoaded();
  }

  async loadOlder() {
    if (this.loading || !this.nextBefore) return;
    this.loading = true;
    try {
      const height = this.el.scrollHeight;
      const page = await get(`/conversations/${this.id}/messages${query({ before_seq: this.nextBefore, limit: 50 })}`);
      for (const m of page.items) this.messages.set(m.seq, m);
      this.nextBefore = page.next_before_seq;
      this.render();
      this.el.scrollTop = this.el.scrollHeight - height; // keep the reader where they were
    } catch (err) {
      toast(err.message);
    } finally {
      this.loading = false;
    }
  }

  render() {
    const ordered = [...this.messages.values()].sort((a, b) => a.seq - b.seq);
    clear(this.list);
    for (const m of ordered) this.list.append(messageView(m));
    this.older.hidden = !this.nextBefore;
  }

  add(m) {
    if (m.conversation_id !== this.id) return;
    const known = this.messages.get(m.seq);
    if (known && known.id === m.id && known.updated_at === m.updated_at) return;
    const atBottom = this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 80;
    this.messages.set(m.seq, m);
    const view = messageView(m);
    const existing = this.list.querySelector(`[data-id="${m.id}"]`);
    if (existing) existing.replaceWith(view);
    else if (m.seq > this.lastSeqShown()) this.list.append(view);
    else this.render();
    if (atBottom) this.el.scrollTop = this.el.scrollHeight;
  }

  lastSeqShown() {
    const last = this.list.lastElementChild;
    return last ? Number(last.dataset.seq) : 0;
  }

  // The visitor's widget showed or read our messages up to `seq` (receipts cover the widget only).
  contactReached(state, seq) {
    const rank = { pending: 0, sent: 0, delivered: 1, read: 2 };
    for (const m of this.messages.values()) {
      if (m.seq <= seq && m.direction === "outbound" && m.channel === "widget" && m.kind !== "note"
          && m.delivery_state in rank && rank[m.delivery_state] < rank[state]) {
        this.add({ ...m, delivery_state: state, updated_at: new Date().toISOString() });
      }
    }
  }

  showTyping(name, isTyping) {
    this.typing.textContent = isTyping ? t("thread.typing", { name: name || t("thread.the_contact") }) : "";
    clearTimeout(this.typingTimer);
    if (isTyping) this.typingTimer = setTimeout(() => { this.typing.textContent = ""; }, 6000);
  }
}
