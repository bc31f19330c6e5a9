/* Site chat widget: loader, connection, tracking and launcher. One global: window.ChatWidget.
 * The chat panel itself (widget/panel.js) is loaded only when the visitor opens the chat.
 * Embed: <script src="https://chat.example.com/widget.js" data-site="KEY" async></script>
 * API: docs/widget.md. Protocol: docs/protocol.md (widget socket). */
(() => {
  "use strict";
  if (window.ChatWidget && window.ChatWidget.version) return; // loaded twice: keep the first

  const script = document.currentScript || document.querySelector('script[src*="widget.js"][data-site]');
  const BASE = new URL(script.src, location.href);
  const ORIGIN = BASE.origin;
  const SITE = script.dataset.site || "";
  const KEY = `chatw:${SITE}:`;
  const SESSION_IDLE_MS = 30 * 60 * 1000;
  const PERMANENT_ERRORS = new Set(["empty_text", "text_too_long", "invalid_text", "attachment_not_found",
    "too_many_attachments", "invalid_frame"]);

  const TEXTS = {
    en: {
      launcher: "Open chat", title: "Chat with us", subtitle: "We usually reply in a few minutes",
      placeholder: "Write a message…", send: "Send", close: "Close chat", attach: "Attach a file",
      offline: "No one is online right now. Leave your email and we will answer there.",
      email_prompt: "Your email", email_saved: "Thanks! We will answer at", new_message: "New message",
      continue_in: "Continue in", sending: "Sending…", sent: "Sent", delivered: "Delivered", read: "Read",
      typing: "is typing…", failed: "Not sent", reply: "Reply", dismiss: "Dismiss", you: "You",
      save: "Save", upload_failed: "The file could not be sent",
    },
    ru: {
      launcher: "Открыть чат", title: "Напишите нам", subtitle: "Обычно отвечаем за несколько минут",
      placeholder: "Напишите сообщение…", send: "Отправить", close: "Закрыть чат", attach: "Прикрепить файл",
      offline: "Сейчас никого нет в сети. Оставьте email — мы ответим на него.",
      email_prompt: "Ваш email", email_saved: "Спасибо! Ответим на", new_message: "Новое сообщение",
      continue_in: "Продолжить в", sending: "Отправляется…", sent: "Отправлено", delivered: "Доставлено",
      read: "Прочитано", typing: "печатает…", failed: "Не отправлено", reply: "Ответить", dismiss: "Скрыть",
      you: "Вы", save: "Сохранить", upload_failed: "Не удалось отправить файл",
    },
  };

  // ---------------------------------------------------------------- small helpers
  const store = {
    get(k) { try { return localStorage.getItem(KEY + k); } catch { return null; } },
    set(k, v) { try { localStorage.setItem(KEY + k, v); } catch { /* private mode: this tab only */ } },
    del(k) { try { localStorage.removeItem(KEY + k); } catch { /* ignore */ } },
  };
  const uid = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
  const listeners = {};
  const emit = (event, data) => (listeners[event] || []).forEach((fn) => { try { fn(data); } catch (e) { console.error(e); } });

  function device() {
    const ua = navigator.userAgent;
    const browser = /Edg\//.test(ua) ? "Edge" : /OPR\//.test(ua) ? "Opera" : /YaBrowser/.test(ua) ? "Yandex"
      : /Firefox\//.test(ua) ? "Firefox" : /Chrome\//.test(ua) ? "Chrome" : /Safari\//.test(ua) ? "Safari" : "Other";
    const os = /Android/.test(ua) ? "Android" : /iPhone|iPad|iPod/.test(ua) ? "iOS" : /Windows/.test(ua) ? "Windows"
      : /Mac OS X/.test(ua) ? "macOS" : /Linux/.test(ua) ? "Linux" : "Other";
    let timezone = "";
    try { timezone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch { /* old browser */ }
    return { language: navigator.language || "", browser, os, timezone, screen: `${screen.width}x${screen.height}` };
  }

  // ---------------------------------------------------------------- state
  const state = {
    token: store.get("token"),
    visitorId: null,
    conversationId: null,
    epoch: null,
    lastSeq: 0,
    readSeq: 0, // how far the visitor has read operator messages (their numbering)
    operatorReadSeq: 0,
    operatorsOnline: false,
    messages: new Map(), // seq -> message view
    outbox: [], // {client_msg_id, text, attachment_ids, attachments, created_at, state}
    typing: null, // {name, until}
    open: false,
    emailSaved: null,
    lang: "en",
    texts: TEXTS.en,
    config: null,
    connected: false,
  };
  let ws = null;
  let attempt = 0;
  let retryTimer = null;
  let stopped = false;
  let pending = []; // frames to send once welcomed (track, identify)
  const waiting = new Map(); // "identify" / "contact.email" -> {resolve, reject}
  let panel = null;
  let panelLoading = null;
  let lastAutomatic = null; // proactive message awaiting a reply
  const reported = new Set();
  const tabs = "BroadcastChannel" in window ? new BroadcastChannel(KEY + "tabs") : null;

  try { state.outbox = JSON.parse(sessionStorage.getItem(KEY + "outbox") || "[]"); } catch { state.outbox = []; }
  const saveOutbox = () => { try { sessionStorage.setItem(KEY + "outbox", JSON.stringify(state.outbox)); } catch { /* ignore */ } };

  function pickLanguage() {
    const wanted = script.dataset.lang || (state.config && state.config.language !== "auto" ? state.config.language : "")
      || (navigator.language || "en");
    state.lang = wanted.toLowerCase().startsWith("ru") ? "ru" : "en";
    const site = (state.config && state.config.texts && state.config.texts[state.lang]) || {};
    state.texts = { ...TEXTS[state.lang], ...site };
  }
  const t = (key) => state.texts[key] || TEXTS.en[key] || key;

  // ---------------------------------------------------------------- socket
  function wsUrl() {
    const u = new URL("/ws/widget", ORIGIN);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    return u.href;
  }

  function send(frame) {
    if (ws && ws.readyState === WebSocket.OPEN && state.connected) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function sendOrQueue(frame) { if (!send(frame)) pending.push(frame); }

  async function connect() {
    if (stopped || (ws && ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(retryTimer);
    // The first visit of several tabs at once must create one visitor: one tab says hello
    // while the others wait for its token.
    if (!state.token && navigator.locks) {
      await navigator.locks.request(KEY + "hello", () => {
        state.token = store.get("token");
        if (state.token) return null;
        return new Promise((resolve) => { open(resolve); setTimeout(resolve, 10000); });
      });
      if (ws && ws.readyState <= WebSocket.OPEN) return;
    }
    open(() => {});
  }

  function open(welcomed) {
    state.connected = false;
    const sock = new WebSocket(wsUrl());
    ws = sock;
    sock.onopen = () => {
      sock.send(JSON.stringify({
        type: "hello", token: state.token || null, last_seq: state.lastSeq, epoch: state.epoch,
        page: { url: location.href.slice(0, 2000), title: document.title.slice(0, 500), referrer: document.referrer.slice(0, 2000) },
      }));
    };
    sock.onmessage = (e) => {
      if (ws !== sock) return; // a socket we have let go of (shutdown)
      let frame;
      try { frame = JSON.parse(e.data); } catch { return; }
      if (frame.type === "welcome") welcomed();
      receive(frame);
    };
    sock.onclose = (e) => {
      if (ws !== sock) return;
      state.connected = false;
      ws = null;
      welcomed();
      changed();
      // The token was revoked (shutdown() in another tab got there before its message did):
      // forget this visitor here too, and join whoever the tabs are now.
      if (e.code === 4401 && !stopped) { reset(false); return; }
      if (stopped || e.code === 1008) return; // refused by policy (origin): retrying would not help
      const delay = Math.min(8000, 500 * 2 ** attempt++) * (0.5 + Math.random() / 2);
      retryTimer = setTimeout(connect, delay);
    };
  }

  function receive(f) {
    switch (f.type) {
      case "welcome": {
        attempt = 0;
        state.connected = true;
        state.token = f.token;
        store.set("token", f.token);
        state.visitorId = f.visitor_id;
        const c = f.conversation;
        state.conversationId = c.id;
        if (state.epoch !== null && c.epoch !== state.epoch) clearThread();
        state.epoch = c.epoch;
        state.readSeq = Math.max(state.readSeq, c.contact_read_seq);
        state.operatorReadSeq = Math.max(state.operatorReadSeq, c.operator_read_seq);
        state.operatorsOnline = f.operators_online;
        // Sent in order on a fresh socket; the server stores each client_msg_id once.
        for (const m of state.outbox) if (m.state !== "failed") sendMessage(m);
        const queued = pending; pending = [];
        queued.forEach(send);
        emit("ready", { visitor_id: f.visitor_id });
        break;
      }
      case "token": state.token = f.token; store.set("token", f.token); break; // renewed before it ages out
      case "message": addMessage(f.message); break;
      case "message.updated": {
        const old = state.messages.get(f.message.seq);
        if (old) state.messages.set(f.message.seq, f.message);
        break;
      }
      case "ack": {
        const m = state.outbox.find((o) => o.client_msg_id === f.client_msg_id);
        if (m) { m.state = "sent"; m.seq = f.seq; }
        if (!state.conversationId) { state.conversationId = -1; track("chat_started", {}); }
        dropSettled();
        break;
      }
      case "typing": state.typing = f.is_typing ? { name: f.author.name, until: Date.now() + 6000 } : null; break;
      case "receipt": if (f.reader === "operator") state.operatorReadSeq = Math.max(state.operatorReadSeq, f.seq); break;
      case "presence": state.operatorsOnline = f.operators_online; break;
      case "reset": clearThread(); state.epoch = f.epoch; break;
      case "identified": settle("identify", null, f); break;
      case "contact.email.saved": state.emailSaved = f.email; settle("contact.email", null, f); break;
      case "error": {
        const m = state.outbox.find((o) => o.client_msg_id === f.ref);
        if (m && PERMANENT_ERRORS.has(f.code)) { m.state = "failed"; m.error = f.message; saveOutbox(); }
        if (waiting.has(f.ref)) settle(f.ref, f);
        if (f.code === "epoch_changed") clearThread();
        break;
      }
      default: break;
    }
    changed();
  }

  function settle(ref, error, value) {
    const w = waiting.get(ref);
    if (!w) return;
    waiting.delete(ref);
    if (error) w.reject(Object.assign(new Error(error.message), { code: error.code })); else w.resolve(value);
  }

  function request(ref, frame) {
    return new Promise((resolve, reject) => {
      const old = waiting.get(ref);
      if (old) old.reject(new Error("superseded"));
      waiting.set(ref, { resolve, reject });
      sendOrQueue(frame);
    });
  }

  function clearThread() {
    state.messages.clear();
    state.lastSeq = 0;
    state.readSeq = 0;
    state.operatorReadSeq = 0;
  }

  function addMessage(m) {
    if (m.seq <= state.lastSeq && state.messages.has(m.seq)) return; // already shown
    state.messages.set(m.seq, m);
    state.lastSeq = Math.max(state.lastSeq, m.seq);
    if (m.direction === "inbound") {
      lastAutomatic = null;
      const i = state.outbox.findIndex((o) => o.client_msg_id === m.client_msg_id);
      if (i >= 0) state.outbox.splice(i, 1);
      saveOutbox();
      return;
    }
    state.typing = null;
    deliveredUpTo(m.seq);
    if (m.kind === "automatic") proactive(m);
    if (m.seq > state.readSeq) {
      if (state.open && document.visibilityState === "visible") markRead();
      else notify(m);
    }
    emit("message", m);
  }

  // One receipt for a burst of messages (a resume may bring many at once).
  let delivered = 0;
  function deliveredUpTo(seq) {
    if (delivered === 0) setTimeout(() => { send({ type: "receipt", state: "delivered", seq: delivered }); delivered = 0; }, 0);
    delivered = Math.max(delivered, seq);
  }

  function dropSettled() {
    state.outbox = state.outbox.filter((o) => o.state !== "sent" || !state.messages.has(o.seq));
    saveOutbox();
  }

  // ---------------------------------------------------------------- messages out
  function sendMessage(m) {
    send({ type: "message.send", client_msg_id: m.client_msg_id, text: m.text, attachment_ids: m.attachment_ids });
  }

  function write(text, attachments = []) {
    const m = {
      client_msg_id: uid(), text, attachment_ids: attachments.map((a) => a.id), attachments,
      created_at: new Date().toISOString(), state: "sending",
    };
    state.outbox.push(m);
    saveOutbox();
    touchSession();
    stopTyping();
    if (lastAutomatic) { report("replied", lastAutomatic); lastAutomatic = null; }
    sendMessage(m); // offline: stays in the outbox and goes out after the next welcome
    changed();
  }

  function retry(clientMsgId) {
    const m = state.outbox.find((o) => o.client_msg_id === clientMsgId);
    if (m) { m.state = "sending"; sendMessage(m); changed(); }
  }

  let typingSent = 0;
  let typingStop = null;
  function typing() {
    const now = Date.now();
    if (now - typingSent > 3000 && send({ type: "typing", is_typing: true })) typingSent = now;
    clearTimeout(typingStop);
    typingStop = setTimeout(stopTyping, 4000);
  }
  function stopTyping() { // idle for a while, or the message was sent
    clearTimeout(typingStop);
    if (typingSent) { typingSent = 0; send({ type: "typing", is_typing: false }); }
  }

  function markRead() {
    let top = 0;
    for (const m of state.messages.values()) if (m.direction === "outbound" && m.seq > top) top = m.seq;
    if (top <= state.readSeq) return;
    state.readSeq = top;
    send({ type: "receipt", state: "read", seq: top });
    if (tabs) tabs.postMessage({ type: "read", seq: top });
    for (const m of state.messages.values()) if (m.kind === "automatic") report("read", m.id);
    restoreTitle();
    changed();
  }

  function unread() {
    let n = 0;
    for (const m of state.messages.values()) if (m.direction === "outbound" && m.seq > state.readSeq) n++;
    return n;
  }

  async function authFetch(path, init = {}) {
    const headers = { ...(init.headers || {}), Authorization: `Visitor ${state.token}` };
    return fetch(new URL(path, ORIGIN), { ...init, headers });
  }

  async function upload(file) {
    const r = await authFetch(`/api/v1/widget/attachments?name=${encodeURIComponent(file.name || "file")}`, {
      method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" },
    });
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw Object.assign(new Error((body.error && body.error.message) || t("upload_failed")), { code: body.error && body.error.code });
    return body;
  }

  async function channelLinks() {
    try {
      const r = await authFetch("/api/v1/widget/channel-links");
      if (!r.ok) return [];
      const body = await r.json();
      return Array.isArray(body.links) ? body.links.filter((l) => /^https:\/\//.test(l.url)) : [];
    } catch { return []; }
  }

  // ---------------------------------------------------------------- proactive messages
  function report(what, messageId) {
    const k = what + messageId;
    if (reported.has(k)) return;
    reported.add(k);
    track(`triggered_message_${what}`, { message_id: messageId });
  }

  function proactive(m) {
    report("delivered", m.id);
    lastAutomatic = m.id;
    if (m.seq <= state.readSeq || state.open) return;
    if (m.display === "card") showCard(m);
    else openChat();
  }

  // ---------------------------------------------------------------- tracking
  function touchSession() {
    const now = Date.now();
    const last = Number(store.get("seen") || 0);
    store.set("seen", String(now));
    if (now - last > SESSION_IDLE_MS) track("session_started", device());
  }

  function track(name, properties = {}, url = location.href) {
    sendOrQueue({ type: "track", name: String(name).slice(0, 200), properties, url: url.slice(0, 2000) });
  }

  // Events at page exit: the socket may close before they leave; a beacon outlives the page.
  function beacon(frames) {
    if (!state.token || !navigator.sendBeacon || !frames.length) return false;
    const events = frames.map(({ name, properties, url }) => ({ name, properties, url }));
    return navigator.sendBeacon(new URL("/api/v1/beacon", ORIGIN), JSON.stringify({ token: state.token, events }));
  }
  window.addEventListener("pagehide", () => {
    const tracks = pending.filter((f) => f.type === "track");
    if (beacon(tracks)) pending = pending.filter((f) => f.type !== "track");
  });

  // Exit intent (for triggers): on a desktop, the pointer leaves the page toward the top of the
  // window (tabs, address bar). Once per page view.
  let exitSent = null;
  document.addEventListener("mouseout", (e) => {
    if (e.relatedTarget || e.clientY > 0 || exitSent === location.href) return;
    if (!matchMedia("(pointer: fine)").matches) return;
    exitSent = location.href;
    track("exit_intent");
  });

  let lastPage = null;
  function pageViewed() {
    if (location.href === lastPage) return;
    lastPage = location.href;
    touchSession();
    track("page_viewed", { title: document.title.slice(0, 500), referrer: document.referrer.slice(0, 2000), ...device() });
    const q = new URLSearchParams(location.search);
    const utm = {};
    for (const k of ["source", "medium", "campaign", "content", "term"]) if (q.get("utm_" + k)) utm[k] = q.get("utm_" + k).slice(0, 200);
    if (Object.keys(utm).length) track("utm_detected", utm);
  }

  // Single-page apps change the URL with the history API: each change is a page view.
  for (const method of ["pushState", "replaceState"]) {
    const original = history[method];
    history[method] = function (...args) {
      const result = original.apply(this, args);
      setTimeout(pageViewed, 0); // after the app has had a chance to set the title
      return result;
    };
  }
  addEventListener("popstate", () => setTimeout(pageViewed, 0));

  // ---------------------------------------------------------------- tabs
  if (tabs) {
    tabs.onmessage = (e) => {
      const d = e.data || {};
      if (d.type === "read" && d.seq > state.readSeq) { state.readSeq = d.seq; restoreTitle(); changed(); }
      if (d.type === "shutdown") reset(false);
    };
  }

  // ---------------------------------------------------------------- launcher, card, notification
  const host = document.createElement("div");
  host.setAttribute("data-chat-widget", "");
  const root = host.attachShadow({ mode: "open" });
  root.innerHTML = `<style>
:host{all:initial}
*{box-sizing:border-box}
.launcher{position:fixed;right:20px;bottom:20px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;
background:var(--c);color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483000;display:flex;align-items:center;justify-content:center}
.launcher:focus-visible{outline:3px solid #111;outline-offset:3px}
.launcher svg{width:28px;height:28px;fill:currentColor}
.badge{position:absolute;top:-4px;right:-4px;min-width:22px;height:22px;padding:0 6px;border-radius:11px;background:#dc2626;color:#fff;
font:700 12px/22px system-ui,sans-serif;text-align:center}
.badge[hidden]{display:none}
.card{position:fixed;right:20px;bottom:88px;width:300px;max-width:calc(100vw - 40px);background:#fff;color:#111;border-radius:12px;
box-shadow:0 8px 28px rgba(0,0,0,.25);padding:14px;font:14px/1.4 system-ui,sans-serif;z-index:2147483000}
.card p{margin:0 0 10px;white-space:pre-wrap;overflow-wrap:anywhere}
.card b{display:block;margin-bottom:4px}
.card button{font:inherit;border:0;border-radius:6px;padding:6px 12px;cursor:pointer;margin-right:6px}
.card .primary{background:var(--c);color:#fff}
.card button:focus-visible{outline:2px solid #111}
</style><button class="launcher" type="button" part="launcher"><svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg><span class="badge" hidden></span></button><div class="slot"></div>`;
  const launcher = root.querySelector(".launcher");
  const badge = root.querySelector(".badge");
  const slot = root.querySelector(".slot");
  launcher.addEventListener("click", () => (state.open ? closeChat() : openChat()));

  let card = null;
  function showCard(m) {
    hideCard();
    card = document.createElement("div");
    card.className = "card";
    card.setAttribute("role", "dialog");
    card.setAttribute("aria-label", t("new_message"));
    const who = document.createElement("b");
    who.textContent = (m.author && m.author.name) || "";
    const text = document.createElement("p");
    text.textContent = m.text;
    const reply = document.createElement("button");
    reply.className = "primary";
    reply.textContent = t("reply");
    reply.addEventListener("click", () => { report("clicked", m.id); hideCard(); openChat(); });
    const dismiss = document.createElement("button");
    dismiss.textContent = t("dismiss");
    dismiss.addEventListener("click", () => { hideCard(); markRead(); });
    card.append(who, text, reply, dismiss);
    root.insertBefore(card, slot);
    report("read", m.id);
  }
  function hideCard() { if (card) { card.remove(); card = null; } }

  let baseTitle = document.title;
  let titleTimer = null;
  let audio = null;
  function notify(m) {
    if (!titleTimer) {
      baseTitle = document.title;
      let on = false;
      titleTimer = setInterval(() => { on = !on; document.title = on ? `💬 ${t("new_message")}` : baseTitle; }, 1200);
      document.title = `💬 ${t("new_message")}`;
    }
    try { // a short beep; browsers allow it once the visitor has interacted with the page
      audio = audio || new AudioContext();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      gain.gain.value = 0.05;
      osc.frequency.value = 880;
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.12);
    } catch { /* no sound available */ }
    emit("notification", m);
  }
  function restoreTitle() {
    if (titleTimer) { clearInterval(titleTimer); titleTimer = null; document.title = baseTitle; }
  }

  // ---------------------------------------------------------------- open / close and the panel
  function loadPanel() {
    panelLoading = panelLoading || import(new URL("widget/panel.js", ORIGIN + "/").href).then((mod) => {
      panel = mod.mount(slot, ctx);
      return panel;
    });
    return panelLoading;
  }

  async function openChat() {
    if (state.open) return;
    state.open = true;
    hideCard();
    launcher.setAttribute("aria-expanded", "true");
    await loadPanel();
    if (!state.open) return;
    panel.show();
    markRead();
    for (const m of state.messages.values()) if (m.kind === "automatic" && m.seq > state.readSeq) report("read", m.id);
    changed();
    emit("open");
  }

  function closeChat() {
    if (!state.open) return;
    state.open = false;
    launcher.setAttribute("aria-expanded", "false");
    if (panel) panel.hide();
    launcher.focus();
    changed();
    emit("close");
  }

  document.addEventListener("visibilitychange", () => { if (state.open && document.visibilityState === "visible") markRead(); });

  let scheduled = false;
  function changed() {
    if (scheduled) return;
    scheduled = true;
    queueMicrotask(() => {
      scheduled = false;
      const n = unread();
      badge.hidden = n === 0;
      badge.textContent = n > 9 ? "9+" : String(n);
      launcher.setAttribute("aria-label", n ? `${t("launcher")} (${n})` : t("launcher"));
      if (state.typing && state.typing.until < Date.now()) state.typing = null;
      if (panel) panel.update();
      emit("unread", n);
    });
  }
  setInterval(() => { if (state.typing) changed(); }, 1000);

  const ctx = {
    state, t, write, retry, typing, markRead, upload, channelLinks, authFetch, origin: ORIGIN,
    close: closeChat, leaveEmail: (email) => request("contact.email", { type: "contact.email", email }),
    clicked: (m) => { if (m.kind === "automatic") report("clicked", m.id); },
  };

  // ---------------------------------------------------------------- shutdown (logout)
  function reset(announce) {
    stopped = true;
    // The server forgets the logged-out person's token too, so no copy of it reads the thread.
    if (announce && state.token) {
      fetch(new URL("/api/v1/widget/token/revoke", ORIGIN), {
        method: "POST", keepalive: true, headers: { Authorization: `Visitor ${state.token}` },
      }).catch(() => {});
    }
    if (ws) { const old = ws; ws = null; old.close(1000); }
    clearTimeout(retryTimer);
    // Only the tab where shutdown() was called forgets the token: by the time the others hear
    // of it, it may already hold the new anonymous visitor's, which they should share.
    if (announce) { store.del("token"); store.del("seen"); }
    try { sessionStorage.removeItem(KEY + "outbox"); } catch { /* ignore */ }
    if (announce && tabs) tabs.postMessage({ type: "shutdown" });
    // Never the token this tab held: it may have been written back by this tab's own socket
    // after the logout, and reusing it would show the logged-out person's thread.
    const shared = announce ? null : store.get("token");
    Object.assign(state, { token: shared && shared !== state.token ? shared : null, visitorId: null, conversationId: null, epoch: null, outbox: [], typing: null, emailSaved: null });
    clearThread();
    pending = [];
    lastAutomatic = null;
    reported.clear();
    hideCard();
    closeChat();
    restoreTitle();
    stopped = false;
    lastPage = null;
    pageViewed();
    connect(); // a new anonymous visitor from here on
    changed();
  }

  // ---------------------------------------------------------------- public API
  const api = {
    version: "1",
    // operations: [{op: "increment", key: "logins", value: 1}, ...] (see docs/protocol.md)
    identify(traits = {}, userHash, operations) {
      const { user_id, email, name, phone, ...properties } = traits;
      const frame = { type: "identify", properties };
      if (Array.isArray(operations)) frame.operations = operations;
      if (user_id != null) frame.user_id = String(user_id);
      if (email != null) frame.email = String(email);
      if (name != null) frame.name = String(name);
      if (phone != null) frame.phone = String(phone);
      if (userHash) frame.user_hash = String(userHash);
      return request("identify", frame);
    },
    track(name, props = {}, options = {}) {
      touchSession();
      // { beacon: true } for an event sent as the page goes away (a click on an outbound link).
      if (options.beacon && beacon([{ name: String(name).slice(0, 200), properties: props, url: location.href.slice(0, 2000) }])) return;
      track(name, props);
    },
    open: () => openChat(),
    close: () => closeChat(),
    on(event, fn) {
      (listeners[event] = listeners[event] || []).push(fn);
      return () => { listeners[event] = listeners[event].filter((f) => f !== fn); };
    },
    shutdown() { reset(true); },
    unread: () => unread(),
  };

  async function boot() {
    try {
      const r = await fetch(new URL(`/api/v1/widget/config?site=${encodeURIComponent(SITE)}`, ORIGIN));
      if (!r.ok) { console.warn("chat widget: unknown site key", SITE); return; }
      state.config = await r.json();
    } catch { state.config = null; } // the server is down: start with defaults and keep retrying the socket
    pickLanguage();
    host.style.setProperty("--c", (state.config && state.config.color) || "#2563eb");
    launcher.setAttribute("aria-label", t("launcher"));
    launcher.setAttribute("aria-expanded", "false");
    (document.body || document.documentElement).appendChild(host);
    pageViewed();
    connect();
    addEventListener("online", () => { attempt = 0; connect(); });
  }

  const queued = Array.isArray(window.ChatWidget) ? window.ChatWidget : [];
  window.ChatWidget = api;
  queued.forEach(([method, ...args]) => { if (typeof api[method] === "function") api[method](...args); });
  boot();
})();
