// The inbox page: the conversation list (filters, search, live), the thread with its
// composer and actions, and the contact card beside it.

import { get, post, query } from "./api.js";
import { h, clear, fmtTime, toast, contactName } from "./dom.js";
import { state, canWrite, operatorName } from "./state.js";
import { Thread } from "./thread.js";
import { Composer } from "./composer.js";
import { ContactCard } from "./card.js";
import { notify } from "./notify.js";
import { channelName, fmtNumber, statusName, t } from "./i18n.js";

// The list's preview line: the first non-empty line, cut like the server cuts it.
const PREVIEW_LENGTH = 140;
// Past this a waiting contact is highlighted in the list.
const WAITING_ALERT_MINUTES = 5;
// The tabs that count conversations with unread messages (GET /conversations/unread).
const COUNTED_TABS = ["open", "mine", "unassigned"];

export function previewText(text) {
  const first = (text || "").split(/\r?\n/).map((l) => l.trim()).find(Boolean) || "";
  return first.length <= PREVIEW_LENGTH ? first : `${first.slice(0, PREVIEW_LENGTH - 1).trimEnd()}…`;
}

function previewOf(m) {
  return {
    seq: m.seq, text: previewText(m.text), kind: m.kind, direction: m.direction, author: m.author,
    created_at: m.created_at, attachments: (m.attachments || []).length,
  };
}

function waitingText(since) {
  const minutes = Math.floor((Date.now() - new Date(since).getTime()) / 60000);
  if (minutes < 1) return t("inbox.waiting_now");
  if (minutes < 60) return t("inbox.waiting_minutes", { count: minutes });
  if (minutes < 60 * 24) return t("inbox.waiting_hours", { count: Math.floor(minutes / 60) });
  return t("inbox.waiting_days", { count: Math.floor(minutes / 60 / 24) });
}

function waitingLong(since) {
  return Date.now() - new Date(since).getTime() >= WAITING_ALERT_MINUTES * 60000;
}

function previewLine(c) {
  const m = c.last_message;
  if (!m) return null;
  let who = null;
  if (m.kind === "note") who = h("span", { class: "note-mark" }, t("preview.note"));
  else if (m.author.type === "operator" && m.author.id === state.me.id) who = h("span", { class: "author" }, t("preview.you"));
  else if (m.direction !== "inbound" && m.author.name) who = h("span", { class: "author" }, t("preview.author", { name: m.author.name }));
  const files = m.attachments ? h("span", { class: "files" }, t("preview.files", { count: m.attachments })) : null;
  return h("div", { class: `preview ${m.kind}` }, who, who ? " " : null, h("span", { class: "text" }, m.text),
    files && m.text ? " " : null, files);
}

const TABS = [
  ["open", () => t("tab.open"), { status: "open" }],
  ["mine", () => t("tab.mine"), { status: "open", assignee: "me" }],
  ["unassigned", () => t("tab.unassigned"), { status: "open", assignee: "none" }],
  ["snoozed", () => t("tab.snoozed"), { status: "snoozed" }],
  ["closed", () => t("tab.closed"), { status: "closed" }],
];

export class InboxPage {
  constructor() {
    this.conversations = new Map();
    this.tab = "open";
    this.channel = "";
    this.tag = "";
    this.search = "";
    this.currentId = null;
    this.thread = null;
    this.mounted = false;
    this.refetchTimer = null;
    const sock = state.socket;
    sock.addEventListener("message", (e) => this.onMessage(e.detail.message, false));
    sock.addEventListener("message.updated", (e) => this.onMessage(e.detail.message, true));
    sock.addEventListener("conversation.updated", (e) => this.onConversation(e.detail.conversation));
    sock.addEventListener("conversation.removed", (e) => this.onRemoved(e.detail));
    sock.addEventListener("reset", (e) => { if (e.detail.conversation_id === this.currentId) this.thread?.load(); });
    sock.addEventListener("typing", (e) => {
      const f = e.detail;
      if (f.conversation_id === this.currentId && f.author.type === "contact") this.thread?.showTyping(null, f.is_typing);
    });
    sock.addEventListener("receipt", (e) => this.onReceipt(e.detail));
    sock.addEventListener("welcome", () => { if (this.mounted) this.reloadList(); });
    this.unreadTabs = null;
    this.countsTimer = null;
    // Waiting times are relative: written again every minute, without drawing the list again.
    setInterval(() => this.tickWaiting(), 60000);
    document.addEventListener("keydown", (e) => this.shortcut(e));
  }

  cursors() {
    if (!this.thread || !this.thread.epoch) return {};
    return { [this.thread.id]: { seq: this.thread.lastSeq, epoch: this.thread.epoch } };
  }

  mount(main, conversationId) {
    this.mounted = true;
    this.listBox = h("ul", { class: "conversations", "aria-label": t("inbox.conversations") });
    this.listCount = h("p", { class: "list-count muted", "aria-live": "polite" });
    this.threadPane = h("section", { class: "thread-pane" }, h("p", { class: "muted empty" }, t("inbox.pick")));
    this.cardPane = h("div", { class: "card-pane" });
    const tabs = h("div", { class: "tabs", role: "tablist" }, TABS.map(([key, label]) => h("button", {
      type: "button", role: "tab", class: key === this.tab ? "active" : "", dataset: { tab: key },
      onclick: (e) => { this.tab = key; for (const b of tabs.children) b.classList.toggle("active", b === e.currentTarget); this.reloadList(); },
    }, h("span", { class: "tab-label" }, label()),
    COUNTED_TABS.includes(key) ? h("span", { class: "tab-count", hidden: true }) : null)));
    this.tabsBox = tabs;
    const searchBox = h("input", { type: "search", placeholder: t("inbox.search_placeholder"), value: this.search, "aria-label": t("inbox.search") });
    searchBox.addEventListener("input", () => { this.search = searchBox.value.trim(); this.debouncedReload(); });
    const channel = h("select", { "aria-label": t("inbox.channel"), onchange: (e) => { this.channel = e.target.value; this.reloadList(); } },
      [["", t("inbox.all_channels")], ...["widget", "telegram", "vk", "email"].map((c) => [c, channelName(c)])]
        .map(([v, l]) => h("option", { value: v, selected: v === this.channel }, l)));
    const tag = h("input", { type: "text", placeholder: t("inbox.tag_placeholder"), value: this.tag, "aria-label": t("inbox.tag"), size: 8 });
    tag.addEventListener("change", () => { this.tag = tag.value.trim(); this.reloadList(); });
    main.append(h("div", { class: "inbox" },
      h("section", { class: "list-pane" }, tabs, h("div", { class: "filters" }, searchBox, channel, tag), this.listCount, this.listBox),
      this.threadPane, this.cardPane));
    this.reloadList();
    if (conversationId) this.open(conversationId);
  }

  unmount() {
    this.mounted = false;
    document.title = t("app.title");
    this.currentId = null;
    this.thread = null;
  }

  debouncedReload() {
    clearTimeout(this.refetchTimer);
    this.refetchTimer = setTimeout(() => this.reloadList(), 250);
  }

  params() {
    const base = TABS.find(([key]) => key === this.tab)[2];
    return { ...base, channel: this.channel, tag: this.tag, q: this.search, limit: 100 };
  }

  // How many open conversations have unread messages, per tab, and in the window's title.
  async loadUnreadCounts() {
    if (!this.mounted) return;
    try {
      this.unreadTabs = await get("/conversations/unread");
    } catch (err) { return; } // the list itself reports errors; the counts wait for the next news
    this.renderUnreadCounts();
  }

  debouncedUnreadCounts() {
    clearTimeout(this.countsTimer);
    this.countsTimer = setTimeout(() => this.loadUnreadCounts(), 1000);
  }

  renderUnreadCounts() {
    if (!this.mounted || !this.unreadTabs) return;
    for (const button of this.tabsBox.children) {
      const badge = button.querySelector(".tab-count");
      if (!badge) continue;
      const count = this.unreadTabs[button.dataset.tab] || 0;
      badge.hidden = count === 0;
      badge.textContent = fmtNumber(count);
      badge.title = t("tab.unread_count", { count });
    }
    const total = this.unreadTabs.open || 0;
    document.title = total ? `(${fmtNumber(total)}) ${t("app.title")}` : t("app.title");
  }

  tickWaiting() {
    if (!this.mounted) return;
    for (const el of this.listBox.querySelectorAll(".waiting[data-since]")) {
      el.textContent = waitingText(el.dataset.since);
      el.classList.toggle("long", waitingLong(el.dataset.since));
    }
  }

  async reloadList() {
    if (!this.mounted) return;
    this.loadUnreadCounts();
    // News that arrives while the page is on its way may be newer than the page: keep it, and
    // ask once more afterwards so nothing the page missed stays missing.
    const heard = new Map();
    this.heardDuringFetch = heard;
    try {
      const page = await get(`/conversations${query(this.params())}`);
      this.conversations = new Map(page.items.map((c) => [c.id, c]));
      for (const [id, c] of heard) if (c && this.matches(c) && !this.search && !this.channel) this.conversations.set(id, c);
      this.nextCursor = page.next_cursor;
      this.renderList();
    } catch (err) { toast(err.message); }
    if (this.heardDuringFetch === heard) this.heardDuringFetch = null;
    if (heard.size) this.debouncedReload();
  }

  matches(c) {
    const p = this.params();
    if (p.status && c.status !== p.status) return false;
    if (p.assignee === "me" && c.assignee_id !== state.me.id) return false;
    if (p.assignee === "none" && c.assignee_id !== null) return false;
    if (p.tag && !c.tags.includes(p.tag)) return false;
    return true;
  }

  renderList() {
    const items = [...this.conversations.values()].sort((a, b) =>
      b.last_activity_at.localeCompare(a.last_activity_at) || b.id - a.id);
    clear(this.listBox);
    for (const c of items) {
      this.listBox.append(h("li", {
        class: `conversation${c.unread ? " unread" : ""}${c.id === this.currentId ? " current" : ""}`,
        dataset: { id: c.id }, tabindex: 0,
        onclick: () => { location.hash = `#/c/${c.id}`; },
        onkeydown: (e) => { if (e.key === "Enter") location.hash = `#/c/${c.id}`; },
      },
      h("div", { class: "who" }, c.unread ? h("span", { class: "dot", title: t("inbox.unread") }, "●") : null, " ",
        h("span", { class: "name" }, contactName(c.contact)),
        c.unread && c.unread_count ? h("span", { class: "unread-count", title: t("inbox.unread_count", { count: c.unread_count }) },
          fmtNumber(c.unread_count)) : null),
      previewLine(c),
      h("div", { class: "muted" },
        c.last_inbound_channel ? h("span", { class: `badge ch-${c.last_inbound_channel}` }, channelName(c.last_inbound_channel)) : null,
        " ", h("time", { datetime: c.last_activity_at }, fmtTime(c.last_activity_at)),
        ` · ${c.assignee_id ? operatorName(c.assignee_id) : t("inbox.unassigned")}`,
        c.status !== "open" ? ` · ${statusName(c.status)}` : "",
        c.waiting_since && c.status === "open" ? [" · ", h("span", {
          class: `waiting${waitingLong(c.waiting_since) ? " long" : ""}`, dataset: { since: c.waiting_since },
        }, waitingText(c.waiting_since))] : null),
      c.tags.length ? h("div", { class: "tags" }, c.tags.map((t) => h("span", { class: "tag" }, t))) : null));
    }
    if (!items.length) this.listBox.append(h("li", { class: "muted empty" }, t("inbox.empty")));
    const count = { count: items.length };
    this.listCount.textContent = this.nextCursor ? t("inbox.count_more", count) : t("inbox.count", count);
    if (this.nextCursor) {
      this.listBox.append(h("li", { class: "more" }, h("button", { type: "button", onclick: () => this.loadMore() }, t("common.load_more"))));
    }
  }

  async loadMore() {
    try {
      const page = await get(`/conversations${query({ ...this.params(), cursor: this.nextCursor })}`);
      for (const c of page.items) this.conversations.set(c.id, c);
      this.nextCursor = page.next_cursor;
      this.renderList();
    } catch (err) { toast(err.message); }
  }

  async open(id) {
    this.currentId = id;
    let conv = this.conversations.get(id);
    try {
      if (!conv) conv = await get(`/conversations/${id}`);
    } catch (err) {
      toast(err.message);
      return;
    }
    this.current = conv;
    this.renderList();
    this.thread = new Thread(id, { onLoaded: () => this.markRead() });
    this.thread.epoch = conv.epoch;
    this.card = new ContactCard(conv.contact.id, { onChanged: () => this.refreshCurrent() });
    clear(this.cardPane).append(this.card.el);
    this.actions = h("div", { class: "actions" });
    this.composerBox = h("div", { class: "composer-box" });
    clear(this.threadPane).append(
      h("header", { class: "thread-head" }, h("h2", {}, contactName(conv.contact)), this.actions),
      this.thread.el, this.composerBox);
    this.renderActions();
    try {
      await this.thread.load();
    } catch (err) { toast(err.message); }
    await this.card.ready;
    if (this.currentId !== id) return;
    if (canWrite()) {
      this.composer = new Composer(conv, this.card.channels(), { onSent: (m) => this.thread.add(m),
        blocked: this.card.blockedChannels() });
      this.composerBox.append(this.composer.el);
    } else {
      this.composer = null;
      this.composerBox.append(h("p", { class: "read-only muted" }, t("inbox.read_only")));
    }
  }

  async refreshCurrent() {
    if (!this.currentId) return;
    try {
      this.onConversation(await get(`/conversations/${this.currentId}`));
    } catch (err) { toast(err.message); }
  }

  renderActions() {
    const c = this.current;
    clear(this.actions);
    const status = h("span", { class: `status ${c.status}` }, c.status === "snoozed"
      ? t("inbox.snoozed_until", { time: fmtTime(c.snoozed_until) }) : statusName(c.status));
    if (!canWrite()) {
      this.actions.append(status, ` · ${c.assignee_id ? operatorName(c.assignee_id) : t("inbox.unassigned")}`);
      return;
    }
    const assignees = [...state.operators.values()].filter((o) => o.is_active && o.role !== "sales");
    const assign = h("select", { class: "assign", "aria-label": t("inbox.assignee"), onchange: (e) => this.assign(e.target.value ? Number(e.target.value) : null) },
      h("option", { value: "" }, t("tab.unassigned")),
      assignees.map((o) => h("option", { value: o.id, selected: o.id === c.assignee_id }, o.id === state.me.id ? t("inbox.me", { name: o.name }) : o.name)));
    const snoozeAt = h("input", { type: "datetime-local", "aria-label": t("inbox.snooze_until") });
    const tags = h("input", { class: "tags-input", value: c.tags.join(", "), placeholder: t("inbox.tags_placeholder"), "aria-label": t("inbox.tags") });
    tags.addEventListener("change", () => this.act("tags", { tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean) }));
    this.actions.append(
      status, assign,
      c.status === "closed" || c.status === "snoozed"
        ? h("button", { type: "button", class: "reopen", onclick: () => this.act("status", { status: "open" }) }, t("inbox.reopen"))
        : h("button", { type: "button", class: "close", onclick: () => this.act("status", { status: "closed" }) }, t("inbox.close")),
      h("span", { class: "snooze" }, snoozeAt, h("button", { type: "button", onclick: () => {
        if (!snoozeAt.value) return toast(t("inbox.pick_snooze_time"));
        this.act("status", { status: "snoozed", snoozed_until: new Date(snoozeAt.value).toISOString() });
      } }, t("inbox.snooze")), h("button", { type: "button", onclick: () => {
        this.act("status", { status: "snoozed", snoozed_until: new Date(Date.now() + 3600e3).toISOString() });
      } }, t("inbox.snooze_hour"))),
      tags);
  }

  assign(operatorId) { return this.act("assign", { assignee_id: operatorId }); }

  async act(what, body) {
    try {
      const conv = await post(`/conversations/${this.currentId}/${what}`, body);
      this.onConversation(conv);
    } catch (err) { toast(err.message); }
  }

  markRead() {
    if (!canWrite() || !this.thread || document.hidden) return;
    const c = this.conversations.get(this.currentId) || this.current;
    const seq = this.thread.lastSeq;
    if (c && seq > c.operator_read_seq && c.unread !== false) {
      state.socket?.send({ type: "read", conversation_id: this.currentId, seq });
      c.unread = false;
      c.operator_read_seq = seq;
      c.unread_count = 0;
      this.renderList();
      this.debouncedUnreadCounts();
    }
  }

  onMessage(m, updated) {
    this.heardDuringFetch?.set(m.conversation_id, null); // asked again once the page is in
    if (this.thread && m.conversation_id === this.currentId) {
      this.thread.add(m);
      if (m.direction === "inbound") this.thread.showTyping(null, false);
    }
    const c = this.conversations.get(m.conversation_id);
    if (!updated && m.direction === "inbound") {
      notify(m, c);
    }
    if (!this.mounted) return;
    if (c) {
      if (!updated) {
        c.last_activity_at = m.created_at;
        this.applyMessage(c, m);
        if (m.direction === "inbound") {
          c.unread = true;
          c.last_inbound_channel = m.channel;
          c.last_inbound_seq = m.seq;
        }
      } else if (c.last_message && c.last_message.seq === m.seq) {
        c.last_message = previewOf(m); // an edited message
      }
      this.renderList();
      if (m.conversation_id === this.currentId && m.direction === "inbound") this.markRead();
    } else if (!updated) {
      this.debouncedReload(); // a conversation this list does not hold yet: ask which belong here
    }
    if (!updated && m.direction === "inbound") this.debouncedUnreadCounts();
  }

  // The list's summary after a new message. The conversation's view describes the thread up
  // to its last_seq, so a message it already counted changes nothing.
  applyMessage(c, m) {
    if (m.seq <= c.last_seq) return;
    c.last_seq = m.seq;
    if (m.kind !== "system") c.last_message = previewOf(m);
    if (m.direction === "inbound") {
      if (m.seq > c.operator_read_seq) c.unread_count = (c.unread_count || 0) + 1;
      if (!c.waiting_since) c.waiting_since = m.created_at;
    } else if (m.direction === "outbound" && m.kind === "text" && m.author.type === "operator") {
      c.waiting_since = null; // answered
    }
  }

  onConversation(conv) {
    this.heardDuringFetch?.set(conv.id, conv);
    const held = this.conversations.get(conv.id);
    if (held && held.last_seq > conv.last_seq) {
      // News older than messages this list has applied since: keep what they told.
      for (const key of ["last_seq", "last_message", "unread_count", "waiting_since", "unread", "last_inbound_seq",
        "last_inbound_channel", "last_activity_at", "operator_read_seq"]) conv[key] = held[key];
    }
    this.debouncedUnreadCounts();
    if (conv.id === this.currentId) {
      this.current = conv;
      if (this.actions) this.renderActions();
    }
    if (!this.mounted) return;
    // Search and channel are decided by the server: a newcomer under them means asking again.
    if (this.matches(conv) && ((!this.search && !this.channel) || this.conversations.has(conv.id))) {
      this.conversations.set(conv.id, conv);
    } else {
      this.conversations.delete(conv.id);
      if (this.matches(conv)) this.debouncedReload();
    }
    this.renderList();
  }

  onReceipt(frame) {
    if (frame.reader === "operator") {
      // Another operator read it: the team's unread state is shared.
      const c = this.conversations.get(frame.conversation_id);
      if (c && frame.seq > c.operator_read_seq) {
        c.operator_read_seq = frame.seq;
        c.unread = c.last_inbound_seq > frame.seq;
        if (!c.unread) c.unread_count = 0;
        else this.refreshOne(c.id); // read part way: the server knows how many are left
        if (this.mounted) this.renderList();
      }
      this.debouncedUnreadCounts();
    } else if (this.thread && frame.conversation_id === this.currentId) {
      this.thread.contactReached(frame.state, frame.seq);
    }
  }

  async refreshOne(id) {
    try {
      this.onConversation(await get(`/conversations/${id}`));
    } catch (err) { /* gone meanwhile: conversation.removed says so */ }
  }

  onRemoved(frame) {
    this.conversations.delete(frame.conversation_id);
    if (this.mounted) this.renderList();
    if (frame.conversation_id === this.currentId && frame.merged_into_conversation_id) {
      location.hash = `#/c/${frame.merged_into_conversation_id}`;
    }
  }

  shortcut(e) {
    if (!this.mounted || e.ctrlKey || e.metaKey || e.altKey) return;
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
    if (e.key === "Escape" && typing) { document.activeElement.blur(); return; }
    if (typing) return;
    const ids = [...this.listBox.querySelectorAll("li[data-id]")].map((li) => Number(li.dataset.id));
    const at = ids.indexOf(this.currentId);
    const go = (id) => { if (id) location.hash = `#/c/${id}`; };
    const actions = {
      j: () => go(ids[Math.min(ids.length - 1, at + 1)]),
      k: () => go(ids[Math.max(0, at - 1)]),
      r: () => { this.composer?.setNote(false); },
      n: () => { this.composer?.setNote(true); },
      a: () => { if (this.currentId && canWrite()) this.assign(state.me.id); },
      c: () => { if (this.currentId && canWrite()) this.act("status", { status: this.current.status === "open" ? "closed" : "open" }); },
      "/": () => { document.querySelector(".list-pane input[type=search]")?.focus(); },
    };
    const run = actions[e.key];
    if (run) { e.preventDefault(); run(); }
  }
}
