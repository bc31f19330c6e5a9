// One conversation's thread: every channel interleaved, notes and system lines set apart,
// older history loaded by scrolling up.

import { authorizedUrl, get, query } from "./api.js";
import { h, clear, fmtTime, safeUrl, toast } from "./dom.js";

const CHANNEL_LABEL = { widget: "Web", telegram: "Telegram", vk: "VK", email: "Email", internal: "" };
const STATE_LABEL = { pending: "sending…", sent: "sent", delivered: "delivered", read: "read", failed: "failed" };

function fmtSize(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
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
    const label = `${a.name || "file"}${a.size ? ` (${fmtSize(a.size)})` : ""}`;
    const isImage = typeof a.content_type === "string" && a.content_type.startsWith("image/") && url;
    const own = url && url.startsWith(OWN_FILES);
    let preview = null;
    if (isImage && own) {
      preview = h("img", { alt: a.name || "image", class: "preview" });
      authorizedUrl(url).then((local) => { preview.src = local; }, () => { preview.remove(); });
    } else if (isImage) {
      preview = h("img", { src: url, alt: a.name || "image", loading: "lazy", class: "preview", referrerpolicy: "no-referrer" });
    }
    let link;
    if (!url) link = h("span", {}, label);
    else if (own) link = ownFileLink(a, url, label);
    else link = h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, label);
    return h("li", {}, preview, link);
  }));
}

export function messageView(m) {
  if (m.kind === "system") {
    return h("div", { class: "msg system", dataset: { seq: m.seq, id: m.id } },
      h("span", { class: "text" }, m.text), " ", h("time", { datetime: m.created_at }, fmtTime(m.created_at)));
  }
  const side = m.direction === "inbound" ? "in" : "out";
  const state = m.direction === "outbound"
    ? h("span", { class: `state ${m.delivery_state}`, title: m.delivery_error || "" },
      STATE_LABEL[m.delivery_state] || m.delivery_state,
      m.delivery_state === "failed" && m.delivery_error ? `: ${m.delivery_error}` : "")
    : null;
  return h("div", { class: `msg ${m.kind === "note" ? "note" : side} ${m.kind}`, dataset: { seq: m.seq, id: m.id } },
    h("div", { class: "meta" },
      m.kind === "note" ? h("span", { class: "badge note" }, "Private note") : null,
      m.channel !== "internal" ? h("span", { class: `badge ch-${m.channel}` }, CHANNEL_LABEL[m.channel] || m.channel) : null,
      m.kind === "automatic" ? h("span", { class: "badge auto" }, "Automatic") : null,
      h("span", { class: "author" }, m.author.name || (m.author.type === "contact" ? "Contact" : m.author.type)),
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
    this.list = h("div", { class: "messages", role: "log", "aria-label": "Conversation" });
    this.older = h("button", { type: "button", class: "older", hidden: true, onclick: () => this.loadOlder() },
      "Load earlier messages");
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
    this.typing.textContent = isTyping ? `${name || "The contact"} is typing…` : "";
    clearTimeout(this.typingTimer);
    if (isTyping) this.typingTimer = setTimeout(() => { this.typing.textContent = ""; }, 6000);
  }
}
