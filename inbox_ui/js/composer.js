// The composer: reply on a channel the contact has (their last one by default) or write a
// private note; "/" inserts a saved reply; Enter sends, Shift+Enter is a new line; the
// visitor sees that we are typing.

import { get, post, upload } from "./api.js";
import { h, clear, toast } from "./dom.js";
import { state } from "./state.js";
import { channelName, t } from "./i18n.js";

const channelLabel = (c) => (c === "widget" ? t("channel.web_chat") : channelName(c));
const TYPING_EVERY_MS = 3000;
const TYPING_IDLE_MS = 4000;

let loading = null;

async function savedReplies() {
  if (state.savedReplies) return state.savedReplies;
  loading = loading || get("/saved-replies").then((page) => page.items).finally(() => { loading = null; });
  state.savedReplies = await loading;
  return state.savedReplies;
}

export class Composer {
  constructor(conversation, channels, { onSent, blocked = new Set() } = {}) {
    this.conversation = conversation;
    this.onSent = onSent || (() => {});
    this.note = false;
    this.typingSentAt = 0;
    this.idleTimer = null;
    this.suggestions = [];
    this.picked = 0;
    this.pending = null; // {text, client_msg_id}: a send to retry with the same id

    const available = ["widget", "telegram", "vk", "email"].filter((c) => channels.has(c));
    const preferred = available.includes(conversation.last_inbound_channel) ? conversation.last_inbound_channel : available[0];
    this.channel = h("select", { class: "channel", "aria-label": t("composer.channel") },
      available.map((c) => h("option", { value: c, selected: c === preferred }, channelLabel(c))));
    if (!available.length) this.channel.append(h("option", { value: "" }, t("composer.no_channel")));
    // Told before replying: a reply on a channel the person blocked will fail.
    this.blocked = blocked;
    this.blockedNote = h("div", { class: "blocked-note", role: "status", hidden: true });
    this.channel.addEventListener("change", () => this.showBlocked());
    this.modeReply = h("button", { type: "button", class: "mode active", onclick: () => this.setNote(false) }, t("composer.reply"));
    this.modeNote = h("button", { type: "button", class: "mode", onclick: () => this.setNote(true) }, t("composer.note"));
    this.input = h("textarea", { rows: 3, placeholder: t("composer.placeholder_reply"), "aria-label": t("composer.message") });
    this.popup = h("ul", { class: "suggestions", role: "listbox", hidden: true });
    this.sendButton = h("button", { type: "button", class: "send", onclick: () => this.send() }, t("composer.send"));
    this.files = [];
    this.fileInput = h("input", { type: "file", multiple: true, hidden: true, class: "file-input",
      onchange: () => this.attach([...this.fileInput.files]) });
    this.attachButton = h("button", { type: "button", class: "attach", title: t("composer.attach_files"),
      onclick: () => this.fileInput.click() }, t("composer.attach"));
    this.fileList = h("ul", { class: "pending-files" });
    this.el = h("div", { class: "composer" },
      h("div", { class: "composer-bar" }, this.modeReply, this.modeNote, h("span", { class: "spacer" }),
        h("label", {}, t("composer.via"), " ", this.channel)),
      this.blockedNote, this.popup, this.input, this.fileList,
      h("div", { class: "composer-actions" }, this.fileInput, this.attachButton, h("span", { class: "spacer" }), this.sendButton));
    this.input.addEventListener("keydown", (e) => this.keydown(e));
    this.input.addEventListener("input", () => this.changed());
    this.showBlocked();
  }

  showBlocked() {
    const channel = this.channel.value;
    const blocked = !this.note && this.blocked.has(channel);
    this.blockedNote.hidden = !blocked;
    this.blockedNote.textContent = blocked
      ? t("composer.blocked", { channel: channelLabel(channel) }) : "";
  }

  setNote(note) {
    this.note = note;
    this.el.classList.toggle("note-mode", note);
    this.modeNote.classList.toggle("active", note);
    this.modeReply.classList.toggle("active", !note);
    this.channel.disabled = note;
    this.showBlocked();
    this.attachButton.disabled = note; // notes carry text only
    this.input.placeholder = note ? t("composer.placeholder_note") : t("composer.placeholder_reply");
    this.input.focus();
  }

  focus() { this.input.focus(); }

  async attach(files) {
    this.fileInput.value = "";
    for (const file of files) {
      const item = h("li", { class: "uploading" }, t("composer.uploading", { name: file.name }));
      this.fileList.append(item);
      try {
        const stored = await upload(file);
        this.files.push(stored);
        item.remove();
        this.renderFiles();
      } catch (err) {
        item.remove();
        toast(`${file.name}: ${err.message}`);
      }
    }
  }

  renderFiles() {
    for (const li of [...this.fileList.querySelectorAll("li:not(.uploading)")]) li.remove();
    this.files.forEach((f, i) => this.fileList.append(h("li", { class: "file" }, f.name,
      h("button", { type: "button", class: "link", title: t("common.remove", { name: f.name }), onclick: () => {
        this.files.splice(i, 1);
        this.renderFiles();
      } }, "×"))));
  }

  keydown(e) {
    if (!this.popup.hidden) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        this.picked = (this.picked + (e.key === "ArrowDown" ? 1 : -1) + this.suggestions.length) % this.suggestions.length;
        this.renderSuggestions();
        return;
      }
      if (e.key === "Enter" || e.key === "Tab") {
        e.preventDefault();
        this.insert(this.suggestions[this.picked]);
        return;
      }
      if (e.key === "Escape") {
        this.popup.hidden = true;
        return;
      }
    }
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      this.send();
    }
  }

  async changed() {
    const text = this.input.value;
    const match = /^\/([\w.-]*)$/.exec(text);
    if (match) {
      const needle = match[1].toLowerCase();
      let replies;
      try {
        replies = await savedReplies();
      } catch (err) {
        toast(err.message);
        return;
      }
      if (this.input.value !== text) return; // typed on (or picked one) meanwhile
      this.suggestions = replies.filter((r) => r.shortcut.includes(needle) || r.text.toLowerCase().includes(needle)).slice(0, 8);
      this.picked = 0;
      this.renderSuggestions();
    } else {
      this.popup.hidden = true;
    }
    if (!this.note && text.trim()) this.typing(true);
  }

  renderSuggestions() {
    clear(this.popup);
    this.popup.hidden = !this.suggestions.length;
    this.suggestions.forEach((r, i) => {
      this.popup.append(h("li", {
        role: "option", class: i === this.picked ? "picked" : "", "aria-selected": i === this.picked ? "true" : "false",
        onmousedown: (e) => { e.preventDefault(); this.insert(r); },
      }, h("b", {}, `/${r.shortcut}`), " ", h("span", {}, r.text)));
    });
  }

  insert(reply) {
    if (!reply) return;
    this.input.value = reply.text;
    this.popup.hidden = true;
    this.input.focus();
  }

  typing(isTyping) {
    const now = Date.now();
    clearTimeout(this.idleTimer);
    if (isTyping) {
      if (now - this.typingSentAt > TYPING_EVERY_MS) {
        this.typingSentAt = now;
        state.socket?.send({ type: "typing", conversation_id: this.conversation.id, is_typing: true });
      }
      this.idleTimer = setTimeout(() => this.typing(false), TYPING_IDLE_MS);
    } else if (this.typingSentAt) {
      this.typingSentAt = 0;
      state.socket?.send({ type: "typing", conversation_id: this.conversation.id, is_typing: false });
    }
  }

  async send() {
    const text = this.input.value;
    const files = this.note ? [] : this.files.map((f) => f.id);
    if (!text.trim() && !files.length) return;
    // The same id for a retry of the same message: the server stores it once.
    const key = JSON.stringify([text, this.note, files]);
    if (!this.pending || this.pending.key !== key) {
      this.pending = { key, client_msg_id: crypto.randomUUID() };
    }
    const body = { text, client_msg_id: this.pending.client_msg_id };
    if (!this.note && this.channel.value) body.channel = this.channel.value;
    if (files.length) body.attachment_ids = files;
    this.sendButton.disabled = true;
    try {
      const path = `/conversations/${this.conversation.id}/${this.note ? "notes" : "messages"}`;
      const result = await post(path, body);
      this.pending = null;
      this.input.value = "";
      if (!this.note) {
        this.files = [];
        this.renderFiles();
      }
      this.typing(false);
      this.onSent(result.message);
    } catch (err) {
      toast(err.message);
    } finally {
      this.sendButton.disabled = false;
      this.input.focus();
    }
  }
}
