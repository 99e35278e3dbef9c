// `@warden/auth/host` in Node (native tests): settings from
// `setHostConfig`, a log that keeps its records, an in-memory cache. In the
// component the same functions call the host (see host.component.js).

const state = {
  config: new Map(),
  secrets: new Map(),
  cache: new Map(),
  logs: [],
};

/** Whether this is the native stand-in (true here, false in the component). */
export const native = true;

/** `config.<key>` of the plugin's configuration section, if set. */
export function config(key) {
  return state.config.get(key);
}

/** The secret `secrets.<name>`, if declared. */
export function secret(name) {
  return state.secrets.get(name);
}

/** A structured record in the host's log. */
export function log(level, message, fields = {}) {
  state.logs.push({ level, message: String(message), fields: { ...fields } });
}

/** Values kept between calls (bytes; strings are stored as UTF-8). */
export const cache = {
  get(key) {
    const entry = state.cache.get(key);
    if (!entry) return undefined;
    if (entry.expires <= Date.now()) {
      state.cache.delete(key);
      return undefined;
    }
    return entry.value.slice();
  },
  set(key, value, ttlSeconds) {
    const bytes = typeof value === "string" ? new TextEncoder().encode(value) : Uint8Array.from(value);
    state.cache.set(key, { value: bytes, expires: Date.now() + Math.max(1, Math.floor(ttlSeconds)) * 1000 });
    return true;
  },
  delete(key) {
    state.cache.delete(key);
  },
};

/** Test helper: sets the configuration and secrets `config`/`secret` read. */
export function setHostConfig({ config = {}, secrets = {} } = {}) {
  state.config = new Map(Object.entries(config));
  state.secrets = new Map(Object.entries(secrets));
}

/** Test helper: the log records written so far (and clears them). */
export function takeLogs() {
  return state.logs.splice(0);
}

/** Test helper: empties the cache. */
export function clearCache() {
  state.cache.clear();
}
