// `@warden/auth/host` inside the component: the host's imports of the
// world `auth-plugin` (`warden-auth-build` aliases the module to this file).

import { log as hostLog } from "warden:common/log@0.1.0";
import { get as configGet, secret as configSecret } from "warden:common/config@0.1.0";
import * as hostCache from "warden:auth/cache@0.2.0";

export const native = false;

export function config(key) {
  return configGet(key);
}

export function secret(name) {
  return configSecret(name);
}

export function log(level, message, fields = {}) {
  hostLog(level, String(message), Object.entries(fields).map(([k, v]) => [k, String(v)]));
}

export const cache = {
  get(key) {
    return hostCache.get(key);
  },
  set(key, value, ttlSeconds) {
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : value;
    try {
      hostCache.set(key, bytes, Math.max(1, Math.floor(ttlSeconds)));
      return true;
    } catch {
      return false; // too large
    }
  },
  delete(key) {
    hostCache.delete(key);
  },
};
