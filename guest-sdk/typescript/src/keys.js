// Event keys: LangGraph.js names (`threads:create_run`) and the WIT names
// of `warden:auth/types@0.2.0` (`create-run`), both ways.

/** Each resource's actions, in LangGraph's names. */
export const RESOURCE_ACTIONS = Object.freeze({
  threads: Object.freeze(["create", "read", "update", "delete", "search", "create_run"]),
  assistants: Object.freeze(["create", "read", "update", "delete", "search"]),
  crons: Object.freeze(["create", "read", "update", "delete", "search"]),
  store: Object.freeze(["put", "get", "search", "delete", "list_namespaces"]),
});

const ALL_ACTIONS = [...new Set(Object.values(RESOURCE_ACTIONS).flat())];

/** A LangGraph action name as a WIT enum case (`create_run` -> `create-run`). */
export const toWitName = (name) => name.replace(/_/g, "-");
/** A WIT enum case as a LangGraph action name (`list-namespaces` -> `list_namespaces`). */
export const fromWitName = (name) => name.replace(/-/g, "_");

function hint(key) {
  return (
    `unknown event key ${JSON.stringify(key)}: expected "*", a resource ` +
    `(${Object.keys(RESOURCE_ACTIONS).map((r) => JSON.stringify(r)).join(", ")}), ` +
    `"*:<action>" or "<resource>:<action>" with one of the resource's actions ` +
    `(e.g. "threads:create", "store:put")`
  );
}

/**
 * The WIT `handler-key` for a key `.on()` accepts; throws a TypeError for a
 * key no event would ever match (LangGraph.js would accept it and never
 * call the handler).
 */
export function parseEventKey(key) {
  if (typeof key !== "string") throw new TypeError(hint(key));
  if (key === "*") return { tag: "global" };
  if (Object.hasOwn(RESOURCE_ACTIONS, key)) return { tag: "any-action", val: key };
  const colon = key.indexOf(":");
  if (colon < 0) throw new TypeError(hint(key));
  const resource = key.slice(0, colon);
  const action = key.slice(colon + 1);
  if (resource === "*") {
    if (ALL_ACTIONS.includes(action)) return { tag: "any-resource", val: toWitName(action) };
    throw new TypeError(hint(key));
  }
  if (action === "*" && Object.hasOwn(RESOURCE_ACTIONS, resource)) {
    throw new TypeError(
      `event key ${JSON.stringify(key)} never matches in LangGraph.js: write ${JSON.stringify(resource)} for every action of ${resource}`,
    );
  }
  if (!Object.hasOwn(RESOURCE_ACTIONS, resource) || !RESOURCE_ACTIONS[resource].includes(action)) {
    throw new TypeError(hint(key));
  }
  return { tag: "event", val: { tag: resource, val: toWitName(action) } };
}

/**
 * The handler that covers `resource:action`: the first registered of
 * `resource:action`, `resource`, `*:action`, `*` (LangGraph's order), or
 * undefined.
 */
export function resolveHandler(callbacks, resource, action) {
  if (!callbacks) return undefined;
  for (const key of [`${resource}:${action}`, resource, `*:${action}`, "*"]) {
    if (Object.hasOwn(callbacks, key)) return callbacks[key];
  }
  return undefined;
}
