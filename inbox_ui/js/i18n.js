// The inbox in the operator's language: one JSON catalogue per language (inbox_ui/i18n/),
// plural forms by the browser's Intl.PluralRules, dates, numbers and durations by Intl.
// Nothing here builds markup: t() returns plain text for text nodes and attributes.

export const LANGUAGES = ["en", "ru"];
const STORED = "inbox.language"; // the last choice, so the login page speaks it too

let lang = "en";
let texts = {};
let english = {}; // what a key missing from a catalogue falls back to (a test keeps them whole)
const catalogues = new Map();

function formatsFor(code) {
  return {
    plural: new Intl.PluralRules(code),
    number: new Intl.NumberFormat(code),
    time: new Intl.DateTimeFormat(code, { hour: "2-digit", minute: "2-digit" }),
    dateTime: new Intl.DateTimeFormat(code, { dateStyle: "short", timeStyle: "short" }),
    day: new Intl.DateTimeFormat(code, { day: "numeric", month: "long", timeZone: "UTC" }),
    dayShort: new Intl.DateTimeFormat(code, { day: "2-digit", month: "2-digit", timeZone: "UTC" }),
    relative: new Intl.RelativeTimeFormat(code, { numeric: "auto" }),
  };
}
let formats = formatsFor(lang);

export function browserLanguage() {
  for (const wanted of navigator.languages || [navigator.language || "en"]) {
    const code = String(wanted).toLowerCase().slice(0, 2);
    if (LANGUAGES.includes(code)) return code;
  }
  return "en";
}

function catalogue(code) {
  if (!catalogues.has(code)) {
    catalogues.set(code, fetch(`i18n/${code}.json`).then((r) => {
      if (!r.ok) throw new Error(`no catalogue for ${code}`);
      return r.json();
    }).catch((err) => { catalogues.delete(code); throw err; }));
  }
  return catalogues.get(code);
}

// `choice` is the operator's setting: "en", "ru", or null to follow the browser.
export async function setLanguage(choice, { remember = true } = {}) {
  if (remember) {
    if (choice) localStorage.setItem(STORED, choice);
    else localStorage.removeItem(STORED);
  }
  const code = LANGUAGES.includes(choice) ? choice : browserLanguage();
  [english, texts] = await Promise.all([catalogue("en"), catalogue(code)]);
  lang = code;
  formats = formatsFor(code);
  document.documentElement.lang = code;
  translatePage(document);
}

export const storedLanguage = () => localStorage.getItem(STORED);
export const language = () => lang;
export const hasText = (key) => key in texts || key in english;

// t("inbox.count", {count: 2}) -> "2 диалога": `count` picks the plural form and is written
// as a number of the language; other {params} are put in as they are.
export function t(key, params = {}) {
  let entry = texts[key] ?? english[key];
  if (entry === undefined) {
    console.warn(`inbox: no text for ${key}`);
    return key;
  }
  if (typeof entry === "object") entry = entry[formats.plural.select(params.count ?? 0)] ?? entry.other;
  return entry.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in params)) return whole;
    return name === "count" ? fmtNumber(params.count) : String(params[name]);
  });
}

// Text in index.html: data-i18n sets the text, data-i18n-<attribute> sets that attribute.
export function translatePage(root) {
  for (const el of root.querySelectorAll("*")) {
    for (const { name, value } of [...el.attributes]) {
      if (name === "data-i18n") el.textContent = t(value);
      else if (name.startsWith("data-i18n-")) el.setAttribute(name.slice(10), t(value));
    }
  }
  document.title = t("app.title");
}

export function fmtNumber(n) {
  return typeof n === "number" ? formats.number.format(n) : String(n);
}

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toDateString() === new Date().toDateString() ? formats.time.format(d) : formats.dateTime.format(d);
}

// A report day ("2022-05-10", UTC): "10 мая" / "May 10"; short: "10.05" / "05/10".
export function fmtDay(isoDay, { short = false } = {}) {
  const d = new Date(`${isoDay}T00:00:00Z`);
  return (short ? formats.dayShort : formats.day).format(d);
}

// "3 days ago" / "3 дня назад"
export function fmtAgo(iso) {
  if (!iso) return "";
  const seconds = (new Date(iso).getTime() - Date.now()) / 1000;
  const steps = [[60, "second"], [3600, "minute"], [86400, "hour"], [86400 * 30, "day"], [86400 * 365, "month"]];
  let unit = "year";
  let size = 86400 * 365;
  let previous = 1;
  for (const [limit, name] of steps) {
    if (Math.abs(seconds) < limit) { unit = name; size = previous; break; }
    previous = limit;
  }
  return formats.relative.format(Math.round(seconds / size), unit);
}

function unit(name, value) {
  return new Intl.NumberFormat(lang, { style: "unit", unit: name, unitDisplay: "narrow", maximumFractionDigits: 0 }).format(value);
}

// 390 -> "6m 30s" / "6 мин 30 с"
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return unit("second", Math.round(seconds));
  if (seconds < 3600) return `${unit("minute", Math.floor(seconds / 60))} ${unit("second", Math.round(seconds % 60))}`;
  return `${unit("hour", Math.floor(seconds / 3600))} ${unit("minute", Math.round((seconds % 3600) / 60))}`;
}

export function fmtSize(bytes) {
  const one = (n) => new Intl.NumberFormat(lang, { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(n);
  if (bytes < 1024) return t("size.bytes", { n: fmtNumber(bytes) });
  if (bytes < 1024 * 1024) return t("size.kb", { n: one(bytes / 1024) });
  return t("size.mb", { n: one(bytes / 1024 / 1024) });
}

// The words for values the server sends as codes.
export function channelName(channel) {
  return {
    widget: t("channel.widget"), telegram: t("channel.telegram"), vk: t("channel.vk"), email: t("channel.email"),
  }[channel] || channel;
}

export function statusName(status) {
  return { open: t("status.open"), snoozed: t("status.snoozed"), closed: t("status.closed") }[status] || status;
}

export function roleName(role) {
  return { admin: t("role.admin"), operator: t("role.operator"), sales: t("role.sales") }[role] || role;
}

export function availabilityName(availability) {
  return { online: t("availability.online"), away: t("availability.away") }[availability] || availability;
}

export function deliveryName(state) {
  return {
    pending: t("delivery.pending"), sent: t("delivery.sent"), delivered: t("delivery.delivered"),
    read: t("delivery.read"), failed: t("delivery.failed"),
  }[state] || state;
}
