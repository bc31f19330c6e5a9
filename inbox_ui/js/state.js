// What every page shares: who is logged in, the team, the socket.

import { t } from "./i18n.js";

export const state = {
  me: null,
  operators: new Map(),
  socket: null,
  savedReplies: null,
};

export const canWrite = () => state.me && state.me.role !== "sales";
export const isAdmin = () => state.me && state.me.role === "admin";
export const operatorName = (id) => (id && state.operators.get(id)?.name) || (id ? `#${id}` : t("common.nobody"));
