// The inbox application: login, the top bar (presence, notifications, language), and the
// page router.

import { auth, get, patch, post, ApiError } from "./api.js";
import { clear, toast } from "./dom.js";
import { InboxSocket } from "./socket.js";
import { state, canWrite, isAdmin } from "./state.js";
import { InboxPage } from "./inbox.js";
import { ContactsPage } from "./contacts.js";
import { ReportsPage } from "./reports.js";
import { AdminPage } from "./admin.js";
import { roleName, setLanguage, storedLanguage, t } from "./i18n.js";
import { SegmentsPage } from "./segments.js";
import { BehaviourPage } from "./behaviour.js";
import { TriggersPage } from "./triggers.js";

const $ = (id) => document.getElementById(id);
let page = null;
let inboxPage = null;

function showLogin(message = "") {
  if (state.socket) state.socket.close();
  state.socket = null;
  $("app").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message;
  $("login-form").elements.email.focus();
}

async function login(event) {
  event.preventDefault();
  const form = event.target;
  try {
    const result = await post("/auth/login", { email: form.elements.email.value, password: form.elements.password.value });
    auth.token = result.token;
    form.reset();
    await start();
  } catch (err) {
    $("login-error").textContent = err.message;
  }
}

async function logout() {
  try {
    if (canWrite()) await post("/me/availability", { availability: "away" });
    await post("/auth/logout");
  } catch (err) { /* the token may already be gone */ }
  auth.token = null;
  // The logged-out session hears nothing more, and its pages ask nothing more.
  state.socket?.close();
  if (inboxPage) inboxPage.unmount();
  inboxPage = null;
  state.me = null;
  location.hash = "#/inbox";
  showLogin();
}

async function start() {
  let me;
  try {
    me = await get("/me");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return showLogin();
    return showLogin(err.message);
  }
  state.me = me;
  try {
    await setLanguage(me.language);
  } catch (err) { console.warn("inbox: the texts could not be loaded", err); }
  state.savedReplies = null;
  if (inboxPage) inboxPage.unmount();
  inboxPage = null; // bound to the previous login's socket
  const team = await get("/operators");
  state.operators = new Map(team.items.map((o) => [o.id, o]));
  document.body.dataset.role = me.role;
  showMe();
  $("availability").value = me.availability;
  $("online-on-login").checked = me.availability_on_login !== "last";
  for (const el of document.querySelectorAll("[data-admin-only]")) el.hidden = !isAdmin();
  for (const el of document.querySelectorAll("[data-writer-only]")) el.hidden = !canWrite();
  $("notify").hidden = !("Notification" in window) || Notification.permission !== "default";
  $("login").hidden = true;
  $("app").hidden = false;
  connect();
  route();
}

function showMe() {
  $("me").textContent = t("top.me", { name: state.me.name, role: roleName(state.me.role) });
  $("language").value = state.me.language || "";
}

// The operator's own choice: saved on their profile, applied at once to every page.
async function changeLanguage(choice) {
  try {
    state.me = await patch("/me", { language: choice || null });
  } catch (err) {
    toast(err.message);
    $("language").value = state.me.language || "";
    return;
  }
  try {
    await setLanguage(state.me.language);
  } catch (err) { toast(err.message); }
  showMe();
  showConnection();
  route();
}

let connection = "offline";
function showConnection() {
  $("connection").textContent = connection === "online" ? t("connection.live") : t("connection.reconnecting");
  $("connection").className = `connection ${connection}`;
}

function connect() {
  const socket = new InboxSocket(auth.token, () => (inboxPage ? inboxPage.cursors() : {}));
  state.socket = socket;
  socket.addEventListener("status", (e) => {
    connection = e.detail;
    showConnection();
  });
  socket.addEventListener("unauthorized", () => { auth.token = null; showLogin(t("login.session_ended")); });
  socket.addEventListener("welcome", (e) => {
    for (const o of e.detail.operators) state.operators.set(o.id, o);
  });
  socket.addEventListener("presence", (e) => {
    const { operator_id: id, availability } = e.detail;
    const op = state.operators.get(id);
    if (op) op.availability = availability;
    if (id === state.me.id) $("availability").value = availability;
  });
  socket.open();
}

function route() {
  const [, name = "inbox", arg, sub] = location.hash.split("/");
  const section = name === "c" ? "inbox" : name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === section);
  if (page && page !== inboxPage) page.leave?.();
  const main = $("page");
  clear(main);
  if (name === "contacts") page = new ContactsPage(main, arg ? Number(arg) : null);
  else if (name === "reports") page = new ReportsPage(main);
  else if (name === "segments") page = new SegmentsPage(main);
  else if (name === "behaviour") page = new BehaviourPage(main);
  else if (name === "triggers") page = new TriggersPage(main, arg, sub);
  else if (name === "admin" && isAdmin()) page = new AdminPage(main);
  else {
    if (!inboxPage) inboxPage = new InboxPage();
    page = inboxPage;
    inboxPage.mount(main, name === "c" && arg ? Number(arg) : null);
    return;
  }
  if (inboxPage) inboxPage.unmount();
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", logout);
$("availability").addEventListener("change", async (e) => {
  try {
    await post("/me/availability", { availability: e.target.value });
  } catch (err) { toast(err.message); }
});
$("language").addEventListener("change", (e) => changeLanguage(e.target.value));
// Logging in makes you online (the widget then offers a chat), or keeps your last state.
$("online-on-login").addEventListener("change", async (e) => {
  try {
    state.me = await patch("/me", { availability_on_login: e.target.checked ? "online" : "last" });
  } catch (err) {
    toast(err.message);
    e.target.checked = !e.target.checked;
  }
});
$("notify").addEventListener("click", async () => {
  await Notification.requestPermission();
  $("notify").hidden = Notification.permission !== "default";
});
window.addEventListener("hashchange", () => { if (state.me) route(); });
auth.onLoggedOut = () => showLogin(t("login.session_ended"));
// Before we know who logs in: their last choice on this browser, else the browser's language.
try {
  await setLanguage(storedLanguage(), { remember: false });
} catch (err) { console.warn("inbox: the texts could not be loaded", err); } // the page's English stays
if (auth.token) start(); else showLogin();
