// Native tests of a policy (`node --test`): the handlers run as the
// component runs them (headers filtered as the host filters them, the value
// crossing as JSON, the change computed and applied as the host applies
// it), without building the component.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

import * as core from "./core.js";
import { RESOURCE_ACTIONS, toWitName } from "./keys.js";

export { setHostConfig, takeLogs, clearCache } from "./host.js";

const SDK_INDEX = new URL("./index.js", import.meta.url);
const SDK_HOST = new URL("./host.js", import.meta.url);

/**
 * Imports a TypeScript (or JavaScript) policy module, bundled with esbuild
 * as `warden-auth-build` bundles it (`@langchain/langgraph-sdk/auth` and
 * `@warden/auth` are this SDK). Returns the module's exports.
 */
export async function loadPolicy(path, { cwd = process.cwd() } = {}) {
  const esbuild = await import("esbuild");
  const entry = isAbsolute(path) ? path : resolve(cwd, path);
  const dir = await mkdtemp(join(tmpdir(), "warden-auth-test-"));
  const outfile = join(dir, "policy.mjs");
  try {
    await esbuild.build({
      entryPoints: [entry],
      outfile,
      bundle: true,
      format: "esm",
      platform: "neutral",
      mainFields: ["module", "main"],
      conditions: ["worker", "browser"],
      target: "es2022",
      logLevel: "silent",
      plugins: [sdkPlugin({ index: SDK_INDEX.href, host: SDK_HOST.href })],
    });
    return await import(pathToFileURL(outfile).href);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** esbuild plugin: the SDK's modules stay this SDK's (one `HTTPException` class). */
function sdkPlugin({ index, host }) {
  return {
    name: "warden-auth-sdk",
    setup(build) {
      build.onResolve({ filter: /^(@warden\/auth|@langchain\/langgraph-sdk\/auth)$/ }, () => ({
        path: index,
        external: true,
      }));
      build.onResolve({ filter: /^@warden\/auth\/host$/ }, () => ({ path: host, external: true }));
    },
  };
}

function pairs(headersOrQuery) {
  if (!headersOrQuery) return [];
  if (Array.isArray(headersOrQuery)) return headersOrQuery.map(([k, v]) => [String(k), String(v)]);
  if (typeof headersOrQuery.forEach === "function" && !(headersOrQuery.constructor === Object)) {
    const out = [];
    headersOrQuery.forEach((v, k) => out.push([String(k), String(v)]));
    return out;
  }
  const out = [];
  for (const [k, v] of Object.entries(headersOrQuery)) {
    for (const item of Array.isArray(v) ? v : [v]) out.push([k, String(item)]);
  }
  return out;
}

/**
 * The WIT `request` the host would send: names lower case, and only the
 * headers the policy declared with `readsHeaders` (all when it did not).
 */
export function hostRequest(auth, { method = "GET", path = "/", query = [], headers = {} } = {}) {
  const declared = auth?.["~warden"]?.headers;
  let list = pairs(headers).map(([k, v]) => [k.toLowerCase(), v]);
  if (declared) list = list.filter(([k]) => declared.includes(k));
  return { method: method.toUpperCase(), path, query: pairs(query), headers: list };
}

/**
 * Runs `authenticate` on a request (`{method, path, query, headers}`;
 * headers and query as an object or a list of pairs) and returns the user
 * as handlers see it (`identity`, `display_name`, `is_authenticated`,
 * `permissions` and the other fields). An `HTTPException` propagates.
 */
export async function authenticate(auth, request = {}) {
  core.checkAuth(auth, "the policy");
  const user = await core.authenticate(auth, hostRequest(auth, request));
  return core.userView(user);
}

/**
 * Runs the handler that covers `event` (`"threads:create"`) for `user` (as
 * `authenticate` returns it, or a string identity) on `value`, which is not
 * modified. Returns `{decision, filter, change, value}`: `decision` is
 * `"allow"`, `"deny"` or `"filter"`; `filter` the filter in LangGraph's
 * syntax (when `"filter"`); `change` `{kind: "none"}`, `{kind: "stamps",
 * stamps: {key: value}}` or `{kind: "value", value}`; `value` the event's
 * value once the host applied the change. An `HTTPException` propagates.
 */
export async function authorize(auth, user, event, value = {}) {
  core.checkAuth(auth, "the policy");
  const [resource, action] = String(event).split(":");
  if (!RESOURCE_ACTIONS[resource]?.includes(action)) {
    throw new TypeError(`unknown event ${JSON.stringify(event)}: expected "<resource>:<action>", e.g. "threads:create"`);
  }
  const view = core.userView(core.toWitUser(user));
  const json = JSON.stringify(value);
  const verdict = await core.authorize(auth, view, { tag: resource, val: toWitName(action) }, json);
  const decision = verdict.decision.tag;
  const change =
    verdict.change.tag === "none"
      ? { kind: "none" }
      : verdict.change.tag === "stamps"
        ? { kind: "stamps", stamps: Object.fromEntries(verdict.change.val.map(([k, v]) => [k, JSON.parse(v)])) }
        : { kind: "value", value: JSON.parse(verdict.change.val) };
  return {
    decision,
    filter: decision === "filter" ? core.clausesToFilter(verdict.decision.val) : undefined,
    change,
    value: core.applyChange(JSON.parse(json), verdict.change),
    verdict,
  };
}

/** What the component registers: `{handlers, headers}` (WIT shapes). */
export function registration(auth) {
  core.checkAuth(auth, "the policy");
  return core.registration(auth);
}
