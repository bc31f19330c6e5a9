// The chat panel, loaded when the visitor first opens the chat. Everything people wrote is
// put on the page as text (textContent); links are built as elements, never parsed as HTML.

const CSS = `
.panel{position:fixed;right:20px;bottom:88px;width:370px;height:min(600px,calc(100vh - 110px));display:flex;flex-direction:column;
background:#fff;color:#111;border-radius:14px;box-shadow:0 10px 36px rgba(0,0,0,.28);overflow:hidden;z-index:2147483001;
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;text-align:left}
.panel[hidden]{display:none}
header{display:flex;align-items:center;gap:10px;padding:12px 14px;background:var(--c);color:#fff}
header .who{flex:1;min-width:0}
header b{display:block;font-size:15px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
header small{opacity:.85}
.avatar{flex:none;width:34px;height:34px;border-radius:50%;background:rgba(255,255,255,.25);display:flex;align-items:center;justify-content:center;font-weight:700}
button{font:inherit;cursor:pointer}
button:focus-visible,a:focus-visible,textarea:focus-visible,input:focus-visible,label:focus-within{outline:2px solid #111;outline-offset:2px}
.x{background:none;border:0;color:#fff;font-size:22px;line-height:1;padding:4px 8px;border-radius:6px}
.notice{padding:10px 14px;background:#fef3c7;color:#78350f;font-size:13px}
.notice form{display:flex;gap:6px;margin-top:6px}
.notice input{flex:1;min-width:0;padding:6px 8px;border:1px solid #d6b656;border-radius:6px;font:inherit}
.notice button,.links a{border:0;border-radius:6px;padding:6px 10px;background:var(--c);color:#fff;text-decoration:none;font-size:13px}
.links{display:flex;gap:6px;flex-wrap:wrap;padding:8px 14px;border-bottom:1px solid #eee}
.links[hidden],.notice[hidden]{display:none}
.log{flex:1;overflow-y:auto;padding:12px 14px;display:flex;flex-direction:column;gap:8px;background:#f8fafc}
.msg{max-width:82%;padding:8px 11px;border-radius:12px;background:#fff;border:1px solid #e5e7eb;align-self:flex-start;white-space:pre-wrap;overflow-wrap:anywhere}
.msg.mine{align-self:flex-end;background:var(--c);color:#fff;border-color:transparent}
.msg.mine a{color:#fff}
.msg .by{display:block;font-size:12px;font-weight:600;color:#475569;margin-bottom:2px}
.msg .meta{display:block;font-size:11px;opacity:.75;margin-top:3px;text-align:right}
.msg img{display:block;max-width:100%;max-height:220px;border-radius:8px;margin-top:4px}
.msg .file{display:block;margin-top:4px}
.msg.failed{background:#fee2e2;color:#7f1d1d}
.msg .retry{background:none;border:0;color:inherit;text-decoration:underline;padding:0 0 0 6px;font-size:11px}
.typing{min-height:20px;padding:0 14px;font-size:12px;color:#64748b;background:#f8fafc}
form.compose{display:flex;align-items:flex-end;gap:6px;padding:10px;border-top:1px solid #e5e7eb}
textarea{flex:1;resize:none;border:1px solid #cbd5e1;border-radius:8px;padding:8px;font:inherit;max-height:120px;min-height:38px}
.attach{display:flex;align-items:center;justify-content:center;width:38px;height:38px;border-radius:8px;border:1px solid #cbd5e1;background:#fff;cursor:pointer;font-size:18px}
.attach input{position:absolute;width:1px;height:1px;opacity:0}
.send{height:38px;border:0;border-radius:8px;padding:0 14px;background:var(--c);color:#fff}
.err{color:#b91c1c;font-size:12px;padding:0 14px}
@media (max-width:480px){.panel{inset:0;width:100%;height:100%;border-radius:0;right:0;bottom:0}}
`;

const LINK = /(https?:\/\/[^\s<>"']+|www\.[^\s<>"']+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)/g;

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

// Plain text with web and mail addresses turned into safe links (http, https, mailto only).
export function linkify(text) {
  const out = document.createDocumentFragment();
  let at = 0;
  for (const match of text.matchAll(LINK)) {
    let raw = match[0];
    const trail = raw.match(/[.,!?;:)\]]+$/);
    if (trail) raw = raw.slice(0, -trail[0].length);
    out.append(text.slice(at, match.index));
    let href = raw.includes("@") && !raw.includes("/") ? `mailto:${raw}` : raw.startsWith("www.") ? `https://${raw}` : raw;
    try {
      const u = new URL(href);
      if (!["http:", "https:", "mailto:"].includes(u.protocol)) href = null;
    } catch { href = null; }
    out.append(href ? el("a", { href, target: "_blank", rel: "noopener noreferrer nofollow", text: raw }) : raw);
    at = match.index + raw.length;
  }
  out.append(text.slice(at));
  return out;
}

const initials = (name) => (name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
const size = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${Math.round(n / 1024)} KB` : `${(n / 1048576).toFixed(1)} MB`);

export function mount(slot, ctx) {
  const { state, t } = ctx;
  const blobs = new Map(); // attachment url -> object URL, fetched with the visitor's token

  async function blobUrl(url) {
    if (!blobs.has(url)) {
      blobs.set(url, ctx.authFetch(url).then((r) => (r.ok ? r.blob() : Promise.reject(new Error(r.statusText))))
        .then((b) => URL.createObjectURL(b)));
    }
    return blobs.get(url);
  }

  const avatar = el("div", { class: "avatar", "aria-hidden": "true" });
  const title = el("b", { text: t("title") });
  const subtitle = el("small", { text: t("subtitle") });
  const closeBtn = el("button", { class: "x", type: "button", "aria-label": t("close"), text: "×", onclick: () => ctx.close() });
  const emailInput = el("input", { type: "email", required: "", placeholder: "name@example.com", "aria-label": t("email_prompt"), autocomplete: "email" });
  const emailForm = el("form", {
    onsubmit: async (e) => {
      e.preventDefault();
      try { await ctx.leaveEmail(emailInput.value); error.textContent = ""; } catch (err) { error.textContent = err.message; }
      update();
    },
  }, emailInput, el("button", { type: "submit", text: t("save") }));
  const offlineText = el("span", { text: t("offline") });
  const notice = el("div", { class: "notice", role: "status" }, offlineText, emailForm);
  const links = el("div", { class: "links", hidden: "" });
  const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": t("title"), tabindex: "0" });
  const typingLine = el("div", { class: "typing", "aria-live": "polite" });
  const error = el("div", { class: "err", role: "alert" });
  const input = el("textarea", { rows: "1", placeholder: t("placeholder"), "aria-label": t("placeholder"), maxlength: "10000" });
  const file = el("input", { type: "file", multiple: "", "aria-label": t("attach") });
  const attach = el("label", { class: "attach", title: t("attach") }, el("span", { "aria-hidden": "true", text: "📎" }), file);
  const sendBtn = el("button", { class: "send", type: "submit", text: t("send") });
  const form = el("form", { class: "compose" }, attach, input, sendBtn);
  const panel = el("div", { class: "panel", role: "dialog", "aria-label": t("title"), hidden: "" },
    el("header", {}, avatar, el("div", { class: "who" }, title, subtitle), closeBtn), notice, links, log, typingLine, error, form);
  const style = el("style", { text: CSS });
  slot.append(style, panel);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    ctx.write(text);
    input.focus();
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
  });
  input.addEventListener("input", () => ctx.typing());
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape") ctx.close(); });
  file.addEventListener("change", async () => {
    const files = [...file.files].slice(0, 10);
    file.value = "";
    error.textContent = "";
    try {
      const uploaded = [];
      for (const f of files) uploaded.push(await ctx.upload(f));
      if (uploaded.length) ctx.write(input.value, uploaded);
      input.value = "";
    } catch (err) { error.textContent = `${t("upload_failed")}: ${err.message}`; }
  });

  const nodes = new Map(); // key -> {node, sig}

  function stateOf(m) {
    if (m.state === "sending" || m.state === "failed") return m.state;
    if (m.seq && m.seq <= state.operatorReadSeq) return "read";
    return m.delivery_state === "delivered" || m.delivery_state === "read" ? "delivered" : "sent";
  }

  function render(m, mine) {
    const s = mine ? stateOf(m) : "";
    const node = el("div", { class: `msg${mine ? " mine" : ""}${s === "failed" ? " failed" : ""}`, "data-seq": m.seq || "" });
    if (!mine) node.append(el("span", { class: "by", text: (m.author && m.author.name) || "" }));
    if (m.text) {
      const body = el("span", { class: "text" });
      body.append(linkify(m.text));
      body.addEventListener("click", (e) => { if (e.target.closest("a")) ctx.clicked(m); });
      node.append(body);
    }
    for (const a of m.attachments || []) {
      if (/^image\//.test(a.content_type)) {
        const img = el("img", { alt: a.name });
        blobUrl(a.url).then((u) => { img.src = u; }, () => { img.alt = `${a.name} (${t("upload_failed")})`; });
        node.append(img);
      } else {
        const link = el("a", { class: "file", href: "#", text: `📄 ${a.name} (${size(a.size)})` });
        link.addEventListener("click", async (e) => {
          e.preventDefault();
          const u = await blobUrl(a.url);
          el("a", { href: u, download: a.name }).click();
        });
        node.append(link);
      }
    }
    const meta = el("span", { class: "meta", text: time(m.created_at) + (mine ? ` · ${t(s)}` : "") });
    if (s === "failed") meta.append(el("button", { class: "retry", type: "button", text: "↻", "aria-label": t("send"), onclick: () => ctx.retry(m.client_msg_id) }));
    node.append(meta);
    return node;
  }

  let linksLoaded = false;
  async function loadLinks() {
    if (linksLoaded || !state.token) return;
    linksLoaded = true;
    const found = await ctx.channelLinks();
    links.replaceChildren(...found.map((l) => el("a", { href: l.url, target: "_blank", rel: "noopener noreferrer", "data-channel": l.channel,
      text: `${t("continue_in")} ${l.channel === "vk" ? "VK" : l.channel === "telegram" ? "Telegram" : l.channel}` })));
    links.hidden = found.length === 0;
  }

  function update() {
    const items = [...state.messages.values()].sort((a, b) => a.seq - b.seq)
      .map((m) => ({ key: `s${m.seq}`, m, mine: m.direction === "inbound" }));
    for (const o of state.outbox) if (!o.seq || !state.messages.has(o.seq)) items.push({ key: `c${o.client_msg_id}`, m: o, mine: true });
    const keep = new Set();
    const stick = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    let prev = null;
    for (const { key, m, mine } of items) {
      keep.add(key);
      const sig = `${m.id}|${stateOf(m)}|${m.seq <= state.operatorReadSeq}`;
      let entry = nodes.get(key);
      if (!entry || entry.sig !== sig) {
        const node = render(m, mine);
        if (entry) entry.node.replaceWith(node);
        entry = { node, sig };
        nodes.set(key, entry);
      }
      const want = prev ? prev.nextSibling : log.firstChild;
      if (want !== entry.node) log.insertBefore(entry.node, want);
      prev = entry.node;
    }
    for (const [key, entry] of nodes) if (!keep.has(key)) { entry.node.remove(); nodes.delete(key); }
    if (stick) log.scrollTop = log.scrollHeight;

    const operator = [...state.messages.values()].reverse().find((m) => m.direction === "outbound" && m.author && m.author.name);
    title.textContent = operator ? operator.author.name : t("title");
    avatar.textContent = initials(operator ? operator.author.name : t("title"));
    typingLine.textContent = state.typing ? `${state.typing.name || ""} ${t("typing")}` : "";
    notice.hidden = state.operatorsOnline && !state.emailSaved;
    if (state.emailSaved) {
      offlineText.textContent = `${t("email_saved")} ${state.emailSaved}`;
      emailForm.hidden = true;
    }
  }

  return {
    show() { panel.hidden = false; update(); loadLinks(); input.focus(); log.scrollTop = log.scrollHeight; },
    hide() { panel.hidden = true; },
    update,
  };
}
