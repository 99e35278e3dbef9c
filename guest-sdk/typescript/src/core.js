// What the component does with each call of `warden:auth/handlers@0.2.0`,
// on the WIT shapes of the JS bindings (records with camelCase fields,
// variants as `{tag, val}`, enums as kebab-case strings). No import of the
// WIT: the glue (in the component) and the test helpers (in Node) both run
// this.

import { fromWitName, parseEventKey, resolveHandler } from "./keys.js";

/** A programming error in the policy: the component traps on it (fail closed). */
export class PolicyError extends Error {
  constructor(message) {
    super(message);
    this.name = "PolicyError";
  }
}

/** The handlers LangGraph.js keeps in an `Auth` (ours or `@langchain/langgraph-sdk/auth`'s). */
export function handlerCache(auth, where = "the module") {
  const cache = auth?.["~handlerCache"];
  if (!cache || typeof cache !== "object") {
    throw new PolicyError(
      `${where} does not export an Auth: export const auth = new Auth().authenticate(...) ` +
        `(Auth from "@warden/auth" or "@langchain/langgraph-sdk/auth")`,
    );
  }
  return cache;
}

/**
 * Checks an `Auth` once, when the module loads: an authenticate callback,
 * and handler keys that exist.
 */
export function checkAuth(auth, where) {
  const cache = handlerCache(auth, where);
  if (typeof cache.authenticate !== "function") {
    throw new PolicyError(`the Auth of ${where} has no authenticate callback: call auth.authenticate(async (request) => ...)`);
  }
  for (const key of Object.keys(cache.callbacks ?? {})) parseEventKey(key);
  return cache;
}

/** `register`: the handler keys and the headers `authenticate` reads. */
export function registration(auth) {
  const cache = handlerCache(auth);
  const headers = auth["~warden"]?.headers;
  return {
    handlers: Object.keys(cache.callbacks ?? {}).map(parseEventKey),
    headers: headers ? [...headers] : undefined,
  };
}

// ---------------------------------------------------------------- requests

/** The fetch `Request` `authenticate` receives, from the WIT `request`. */
export function toFetchRequest(request) {
  const query = request.query.length ? `?${new URLSearchParams(request.query)}` : "";
  const path = request.path.startsWith("/") ? request.path : `/${request.path}`;
  let host = "localhost";
  for (const [name, value] of request.headers) {
    if (name === "host") {
      host = value;
      break;
    }
  }
  let url = `http://${host}${path}${query}`;
  try {
    new URL(url);
  } catch {
    url = `http://localhost${path}${query}`;
  }
  if (typeof Request === "function" && typeof Headers === "function") {
    const headers = new Headers();
    for (const [name, value] of request.headers) {
      try {
        headers.append(name, value);
      } catch {
        // A value fetch refuses (a control character): left out.
      }
    }
    try {
      return new Request(url, { method: request.method, headers });
    } catch {
      // A method fetch refuses (CONNECT, TRACE): the plain object below.
    }
  }
  return plainRequest(request, url);
}

function plainRequest(request, url) {
  const get = (name) => {
    const wanted = String(name).toLowerCase();
    const values = request.headers.filter(([n]) => n === wanted).map(([, v]) => v);
    return values.length ? values.join(", ") : null;
  };
  return {
    method: request.method,
    url,
    headers: {
      get,
      has: (name) => get(name) !== null,
      forEach(fn) {
        for (const [n, v] of request.headers) fn(v, n, this);
      },
      *entries() {
        yield* request.headers.map(([n, v]) => [n, v]);
      },
      [Symbol.iterator]() {
        return this.entries();
      },
    },
  };
}

// ------------------------------------------------------------------- users

const CORE_USER_FIELDS = ["identity", "display_name", "is_authenticated", "permissions"];

/**
 * What `authenticate` returned, as the WIT `user`: LangGraph.js's rules (a
 * string is the identity; an object needs a string `identity`;
 * `permissions` must be an array, else none).
 */
export function toWitUser(response) {
  if (typeof response === "string") {
    return {
      identity: response,
      displayName: undefined,
      isAuthenticated: true,
      permissions: [],
      extra: "{}",
      privateFields: [],
    };
  }
  if (response === null || typeof response !== "object" || typeof response.identity !== "string") {
    throw new PolicyError(
      "Invalid auth response received. Make sure to either return a `string` or an object with `identity` property.",
    );
  }
  const extra = {};
  for (const [key, value] of Object.entries(response)) {
    if (!CORE_USER_FIELDS.includes(key)) extra[key] = value;
  }
  const permissions = Array.isArray(response.permissions) ? response.permissions.map(String) : [];
  return {
    identity: response.identity,
    displayName: typeof response.display_name === "string" ? response.display_name : undefined,
    isAuthenticated: response.is_authenticated === undefined ? true : Boolean(response.is_authenticated),
    permissions,
    extra: JSON.stringify(extra),
    privateFields: [],
  };
}

/** The user handlers see (LangGraph.js's `ctx.user`), from the WIT `user`. */
export function userView(user) {
  let extra = {};
  try {
    const parsed = JSON.parse(user.extra);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) extra = parsed;
  } catch {
    // The host sends valid JSON; anything else counts as no extra fields.
  }
  return {
    ...extra,
    identity: user.identity,
    display_name: user.displayName ?? user.identity,
    is_authenticated: user.isAuthenticated,
    permissions: [...user.permissions],
  };
}

/** `authenticate`: the WIT user; throws what the callback throws. */
export async function authenticate(auth, request) {
  const cache = handlerCache(auth);
  const response = await cache.authenticate(toFetchRequest(request));
  return toWitUser(response);
}

// ------------------------------------------------------------ http errors

/**
 * The WIT `http-error` for a thrown `HTTPException` (ours, LangGraph's, or
 * anything with `status` and `headers`, as LangGraph.js recognises them);
 * undefined for any other throw.
 */
export function toHttpError(error) {
  if (error === null || typeof error !== "object" || !("status" in error) || !("headers" in error)) {
    return undefined;
  }
  const status = error.status;
  if (!Number.isInteger(status) || status < 0 || status > 65535) return undefined;
  const detail = typeof error.message === "string" && error.message !== "" ? error.message : undefined;
  return { status, detail, headers: headerPairs(error.headers) };
}

function headerPairs(headers) {
  const out = [];
  if (headers == null) return out;
  if (Array.isArray(headers)) {
    for (const [name, value] of headers) out.push([String(name), String(value)]);
  } else if (typeof headers.forEach === "function") {
    headers.forEach((value, name) => out.push([String(name), String(value)]));
  } else if (typeof headers === "object") {
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined) out.push([name, String(value)]);
    }
  }
  return out;
}

// ------------------------------------------------------------ authorize

/** The event as LangGraph names it: `{resource, action, event}`. */
export function eventNames(event) {
  const resource = event.tag;
  const action = fromWitName(event.val);
  return { resource, action, event: `${resource}:${action}` };
}

const ALLOW = Object.freeze({ decision: Object.freeze({ tag: "allow" }), change: Object.freeze({ tag: "none" }) });

/**
 * `session.authorize`: runs the handler that covers the event on the
 * parsed value (mutable, as LangGraph passes it) and returns the WIT
 * verdict; throws what the handler throws, and a PolicyError for a result
 * that is not `undefined`/`null`, a boolean or a filter object.
 */
export async function authorize(auth, user, event, valueJson) {
  const { resource, action, event: name } = eventNames(event);
  const handler = resolveHandler(handlerCache(auth).callbacks, resource, action);
  if (!handler) return ALLOW;
  const value = JSON.parse(valueJson);
  const result = await handler({
    event: name,
    resource,
    action,
    value,
    user,
    permissions: user.permissions,
  });
  return { decision: toDecision(result, name), change: changeOf(valueJson, value) };
}

/** A handler's result as the WIT `decision`. */
export function toDecision(result, where = "an auth handler") {
  if (result === undefined || result === null || result === true) return { tag: "allow" };
  if (result === false) return { tag: "deny" };
  if (typeof result === "object" && !Array.isArray(result)) {
    const clauses = filterClauses(result, where);
    return clauses.length ? { tag: "filter", val: clauses } : { tag: "allow" };
  }
  throw new PolicyError(
    `${where}: the handler returned invalid result. Expected filter object, null, undefined or boolean. ` +
      `Got ${Array.isArray(result) ? "an array" : `"${typeof result}"`} instead.`,
  );
}

const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * A LangGraph filter object as WIT clauses: `{k: v}` and `{k: {$eq: v}}`
 * equality, `{k: {$contains: v}}`, several keys AND-ed, `$and` and `$or`
 * (lists of two or more filters, `$or` not inside `$or`).
 */
export function filterClauses(filter, where = "filter") {
  const clauses = [];
  for (const [key, operand] of Object.entries(filter)) {
    if (key === "$or") {
      const branches = filterBranches(operand, "$or", where).map((branch) =>
        branch.map((clause) => {
          if (clause.tag !== "condition") {
            throw new PolicyError(`${where}: invalid filter: too many nested operators ($or inside $or)`);
          }
          return clause.val;
        }),
      );
      clauses.push({ tag: "any-of", val: branches });
    } else if (key === "$and") {
      for (const branch of filterBranches(operand, "$and", where)) clauses.push(...branch);
    } else if (key.startsWith("$")) {
      throw new PolicyError(`${where}: invalid filter key ${JSON.stringify(key)}: the operators are $or and $and`);
    } else {
      clauses.push({ tag: "condition", val: condition(key, operand, where) });
    }
  }
  return clauses;
}

function filterBranches(operand, name, where) {
  if (!Array.isArray(operand) || operand.length < 2 || !operand.every(isPlainObject)) {
    throw new PolicyError(`${where}: invalid ${name} operator: it takes a list of two or more filter objects`);
  }
  return operand.map((branch) => filterClauses(branch, where));
}

function condition(key, operand, where) {
  if (operand === undefined) {
    // Dropped by JSON, it would widen the filter: refused.
    throw new PolicyError(`${where}: the filter on ${JSON.stringify(key)} is undefined`);
  }
  if (isPlainObject(operand) && Object.keys(operand).some((k) => k.startsWith("$"))) {
    const ops = Object.keys(operand);
    if (ops.length !== 1) {
      throw new PolicyError(`${where}: invalid filter on ${JSON.stringify(key)}: an operator object has one key`);
    }
    const op = ops[0];
    const inner = operand[op];
    if (op !== "$eq" && op !== "$contains") {
      throw new PolicyError(
        `${where}: invalid filter on ${JSON.stringify(key)}: the key must be one of $eq or $contains, not ${op}`,
      );
    }
    if (inner === undefined) {
      throw new PolicyError(`${where}: the filter on ${JSON.stringify(key)} is undefined`);
    }
    return { key, op: op === "$eq" ? "eq" : "contains", operand: jsonText(inner, where) };
  }
  return { key, op: "eq", operand: jsonText(operand, where) };
}

function jsonText(value, where) {
  const text = JSON.stringify(value);
  if (text === undefined) throw new PolicyError(`${where}: a filter operand is not JSON (${typeof value})`);
  return text;
}

// ------------------------------------------------------------- changes

/** Deep equality of JSON values (object key order ignored). */
export function jsonEqual(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
}

/**
 * What the handler changed in the value, as the WIT `change`: `none`;
 * `stamps` when the only differences are top-level metadata keys added or
 * changed (the metadata object created when there was none); else `value`
 * (the whole value as JSON).
 */
export function changeOf(originalJson, modified) {
  const original = JSON.parse(originalJson);
  const text = JSON.stringify(modified);
  if (text === JSON.stringify(original)) return { tag: "none" };
  if (text === undefined) {
    throw new PolicyError("the handler left a value that is not JSON");
  }
  const after = JSON.parse(text); // what JSON keeps of it (no undefined, no functions)
  if (jsonEqual(original, after)) return { tag: "none" };
  const stamps = stampsBetween(original, after);
  if (stamps) return { tag: "stamps", val: stamps.map(([k, v]) => [k, JSON.stringify(v)]) };
  return { tag: "value", val: text };
}

function stampsBetween(original, modified) {
  if (!isPlainObject(original) || !isPlainObject(modified)) return null;
  const outside = (o) => Object.keys(o).filter((k) => k !== "metadata");
  const before = outside(original);
  if (before.length !== outside(modified).length) return null;
  if (!before.every((k) => Object.hasOwn(modified, k) && jsonEqual(original[k], modified[k]))) return null;
  let old = {};
  if (Object.hasOwn(original, "metadata")) {
    if (!isPlainObject(original.metadata)) return null;
    old = original.metadata;
  }
  const now = modified.metadata;
  if (!isPlainObject(now)) return null;
  if (!Object.keys(old).every((k) => Object.hasOwn(now, k))) return null;
  const stamps = Object.entries(now).filter(([k, v]) => !Object.hasOwn(old, k) || !jsonEqual(old[k], v));
  return stamps.length ? stamps : null;
}

/** Applies a WIT `change` to a value as the host does (for tests). */
export function applyChange(value, change) {
  switch (change.tag) {
    case "none":
      return value;
    case "value":
      return JSON.parse(change.val);
    case "stamps": {
      if (!isPlainObject(value)) return value;
      const out = { ...value };
      out.metadata = isPlainObject(out.metadata) ? { ...out.metadata } : {};
      for (const [k, v] of change.val) out.metadata[k] = JSON.parse(v);
      return out;
    }
    default:
      throw new Error(`unknown change ${change.tag}`);
  }
}

/** WIT clauses in LangGraph's filter syntax (for tests and messages). */
export function clausesToFilter(clauses) {
  const value = (c) => {
    const operand = JSON.parse(c.operand);
    if (c.op === "contains") return { $contains: operand };
    return isPlainObject(operand) ? { $eq: operand } : operand;
  };
  const conj = (conditions) => {
    const out = {};
    for (const c of conditions) {
      if (Object.hasOwn(out, c.key)) return { $and: conditions.map((d) => ({ [d.key]: value(d) })) };
      out[c.key] = value(c);
    }
    return out;
  };
  const pair = (clause) =>
    clause.tag === "condition" ? [clause.val.key, value(clause.val)] : ["$or", clause.val.map(conj)];
  const merged = {};
  for (const clause of clauses) {
    const [k, v] = pair(clause);
    if (Object.hasOwn(merged, k)) {
      return { $and: clauses.map((c) => Object.fromEntries([pair(c)])) };
    }
    merged[k] = v;
  }
  return merged;
}
