// The REST client: bearer token from the login, JSON in and out, errors as ApiError whose
// message is in the operator's language when the catalogue knows the error's code.

import { hasText, t } from "./i18n.js";

const TOKEN_KEY = "inbox.token";

export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details; // [{loc, msg}] of a 422: which field, and why
  }
}

export const auth = {
  get token() { return localStorage.getItem(TOKEN_KEY); },
  set token(value) {
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  },
  onLoggedOut: () => {},
};

export async function request(method, path, body, { raw = false } = {}) {
  const headers = {};
  if (auth.token) headers.authorization = `Bearer ${auth.token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "network", t("error.network"));
  }
  if (response.status === 401 && path !== "/auth/login") {
    auth.token = null;
    auth.onLoggedOut();
  }
  if (!response.ok) {
    let code = "http_error";
    let message = t("error.http", { status: response.status });
    let details = [];
    try {
      const data = await response.json();
      code = data.error?.code || code;
      message = data.error?.message || message;
      details = data.error?.details || [];
      const detail = details[0];
      if (detail) message += `: ${detail.loc.join(".")} ${detail.msg}`;
    } catch { /* not JSON */ }
    throw new ApiError(response.status, code, errorText(code, message), details);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

// The server explains in English; the operator reads their own language where we know the code.
// Validation details (which field, why) stay as the server wrote them.
function errorText(code, serverMessage) {
  if (!hasText(`error.${code}`)) return serverMessage;
  const detail = serverMessage.indexOf(": ");
  const text = t(`error.${code}`);
  return code.startsWith("invalid_body") || code.startsWith("invalid_query")
    ? text + (detail >= 0 ? serverMessage.slice(detail) : "") : text;
}

export const get = (path) => request("GET", path);
export const post = (path, body = {}) => request("POST", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const text = q.toString();
  return text ? `?${text}` : "";
}

// Files go up as the raw body (the server reads no multipart); the answer is the attachment
// {id, name, content_type, size, url} to send with a reply.
export async function upload(file) {
  const response = await fetch(`/api/v1/attachments${query({ name: file.name || "file" })}`, {
    method: "POST",
    headers: { authorization: `Bearer ${auth.token}`, "content-type": file.type || "application/octet-stream" },
    body: file,
  });
  if (!response.ok) {
    let code = "upload_failed";
    let message = t("error.upload_failed", { status: response.status });
    try {
      const error = (await response.json()).error;
      code = error?.code || code;
      message = error?.message || message;
    } catch { /* not JSON */ }
    throw new ApiError(response.status, code, errorText(code, message));
  }
  return response.json();
}

// Our own attachment downloads need the login token, which a plain <a>/<img> cannot send:
// fetch the file and hand the page a local object URL instead.
const blobUrls = new Map();
export async function authorizedUrl(url) {
  if (!blobUrls.has(url)) {
    blobUrls.set(url, (async () => {
      const response = await fetch(url, { headers: { authorization: `Bearer ${auth.token}` } });
      if (!response.ok) throw new ApiError(response.status, "download_failed", t("error.download_failed", { status: response.status }));
      return URL.createObjectURL(await response.blob());
    })());
  }
  try {
    return await blobUrls.get(url);
  } catch (err) {
    blobUrls.delete(url);
    throw err;
  }
}
