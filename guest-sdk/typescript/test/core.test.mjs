// What crosses the WIT boundary: filters, changes, users, errors.
import assert from "node:assert/strict";
import { test } from "node:test";

import { HTTPException } from "@warden/auth";
import * as core from "../src/core.js";

const cond = (key, op, operand) => ({ tag: "condition", val: { key, op, operand: JSON.stringify(operand) } });

test("results: undefined/null/true allow, false denies, {} allows, a filter filters", () => {
  assert.deepEqual(core.toDecision(undefined), { tag: "allow" });
  assert.deepEqual(core.toDecision(null), { tag: "allow" });
  assert.deepEqual(core.toDecision(true), { tag: "allow" });
  assert.deepEqual(core.toDecision(false), { tag: "deny" });
  assert.deepEqual(core.toDecision({}), { tag: "allow" });
  assert.deepEqual(core.toDecision({ owner: "u1" }), { tag: "filter", val: [cond("owner", "eq", "u1")] });
});

test("any other result is a policy error (the component traps)", () => {
  for (const bad of [1, 0, "yes", [], [{ owner: "x" }], () => {}]) {
    assert.throws(() => core.toDecision(bad), core.PolicyError);
  }
});

test("filters: shorthand, $eq, $contains, AND of keys, $or, $and", () => {
  assert.deepEqual(core.filterClauses({ owner: "u1", n: 3, tags: { $contains: ["a", "b"] }, cfg: { $eq: { a: 1 } } }), [
    cond("owner", "eq", "u1"),
    cond("n", "eq", 3),
    cond("tags", "contains", ["a", "b"]),
    cond("cfg", "eq", { a: 1 }),
  ]);
  assert.deepEqual(core.filterClauses({ org: "x", $or: [{ owner: "u1" }, { public: true, tags: { $contains: "t" } }] }), [
    cond("org", "eq", "x"),
    {
      tag: "any-of",
      val: [[cond("owner", "eq", "u1").val], [cond("public", "eq", true).val, cond("tags", "contains", "t").val]],
    },
  ]);
  assert.deepEqual(core.filterClauses({ $and: [{ k: 1 }, { k: { $contains: 2 } }] }), [cond("k", "eq", 1), cond("k", "contains", 2)]);
  // An object operand without operators is equality on the object.
  assert.deepEqual(core.filterClauses({ cfg: { a: 1 } }), [cond("cfg", "eq", { a: 1 })]);
});

test("invalid filters are refused, never widened", () => {
  for (const bad of [
    { owner: undefined },
    { owner: { $eq: undefined } },
    { owner: { $ne: "x" } },
    { owner: { $eq: "x", $contains: "y" } },
    { $or: [{ a: 1 }] },
    { $or: { a: 1 } },
    { $or: [{ $or: [{ a: 1 }, { b: 2 }] }, { c: 3 }] },
    { $not: [{ a: 1 }, { b: 1 }] },
    { f: () => {} },
  ]) {
    assert.throws(() => core.filterClauses(bad), core.PolicyError, JSON.stringify(bad));
  }
});

test("clausesToFilter writes LangGraph's syntax back", () => {
  const f = { org: "x", $or: [{ owner: "u1" }, { tags: { $contains: "t" }, cfg: { $eq: { a: 1 } } }] };
  assert.deepEqual(core.clausesToFilter(core.filterClauses(f)), f);
  assert.deepEqual(core.clausesToFilter(core.filterClauses({ $and: [{ k: 1 }, { k: { $contains: 2 } }] })), {
    $and: [{ k: 1 }, { k: { $contains: 2 } }],
  });
});

function change(original, mutate) {
  const json = JSON.stringify(original);
  const value = JSON.parse(json);
  mutate(value);
  const c = core.changeOf(json, value);
  // Applying the change to the original gives what the handler left.
  assert.deepEqual(core.applyChange(JSON.parse(json), c), JSON.parse(JSON.stringify(value)));
  return c;
}

test("no change, or a change JSON does not see, is none", () => {
  assert.deepEqual(change({ thread_id: "t", metadata: { owner: "u" } }, () => {}), { tag: "none" });
  assert.deepEqual(change({ a: 1, b: 2 }, (v) => { delete v.a; v.a = 1; }), { tag: "none" });
  assert.deepEqual(change({ a: 1 }, (v) => { v.b = undefined; }), { tag: "none" });
  assert.deepEqual(change(null, () => {}), { tag: "none" });
});

test("metadata keys added or changed are stamps", () => {
  assert.deepEqual(change({ thread_id: "t", metadata: { owner: "spoof", k: 1 } }, (v) => { v.metadata.owner = "u1"; }), {
    tag: "stamps",
    val: [["owner", '"u1"']],
  });
  assert.deepEqual(change({ thread_id: "t" }, (v) => { v.metadata = { owner: "u1", team: ["a"] }; }), {
    tag: "stamps",
    val: [["owner", '"u1"'], ["team", '["a"]']],
  });
});

test("anything else is the whole value", () => {
  const cases = [
    [{ namespace: ["a"] }, (v) => { v.namespace.unshift("u1"); }],
    [{ metadata: { owner: "u0", k: 1 } }, (v) => { delete v.metadata.k; }],
    [{ metadata: {} }, (v) => { v.extra = 1; }],
    [{ metadata: null }, (v) => { v.metadata = { owner: "u1" }; }],
    [{ metadata: "x" }, (v) => { v.metadata = { owner: "u1" }; }],
    [{ metadata: {} }, (v) => { v.metadata = "x"; }],
    [[1], (v) => { v.push(2); }],
  ];
  for (const [original, mutate] of cases) {
    const c = change(original, mutate);
    assert.equal(c.tag, "value", JSON.stringify(original));
  }
});

test("users: LangGraph.js's normalisation, other fields as extra", () => {
  assert.deepEqual(core.toWitUser("alice"), {
    identity: "alice", displayName: undefined, isAuthenticated: true, permissions: [], extra: "{}", privateFields: [],
  });
  const wit = core.toWitUser({ identity: "bob", display_name: "Bob", permissions: ["a", "b"], role: "admin", org: { id: 1 } });
  assert.deepEqual(wit, {
    identity: "bob", displayName: "Bob", isAuthenticated: true, permissions: ["a", "b"],
    extra: '{"role":"admin","org":{"id":1}}', privateFields: [],
  });
  assert.deepEqual(core.userView(wit), {
    role: "admin", org: { id: 1 }, identity: "bob", display_name: "Bob", is_authenticated: true, permissions: ["a", "b"],
  });
  assert.deepEqual(core.userView(core.toWitUser({ identity: "c", permissions: "nope", is_authenticated: false })), {
    identity: "c", display_name: "c", is_authenticated: false, permissions: [],
  });
  for (const bad of [undefined, null, 3, {}, { identity: 3 }]) {
    assert.throws(() => core.toWitUser(bad), core.PolicyError);
  }
});

test("HTTP errors: ours, LangGraph's shape, headers in every HeadersInit form", () => {
  assert.deepEqual(core.toHttpError(new HTTPException(401, { message: "Invalid token" })), {
    status: 401, detail: "Invalid token", headers: [],
  });
  assert.deepEqual(core.toHttpError(new HTTPException(403)), { status: 403, detail: "Forbidden", headers: [] });
  assert.deepEqual(core.toHttpError(new HTTPException(401, { headers: { "www-authenticate": "Bearer" } })).headers, [
    ["www-authenticate", "Bearer"],
  ]);
  assert.deepEqual(core.toHttpError(new HTTPException(401, { headers: [["a", "1"], ["a", "2"]] })).headers, [["a", "1"], ["a", "2"]]);
  assert.deepEqual(core.toHttpError(new HTTPException(401, { headers: new Headers({ b: "2" }) })).headers, [["b", "2"]]);
  assert.deepEqual(core.toHttpError({ status: 429, headers: {}, message: "" }), { status: 429, detail: undefined, headers: [] });
  for (const other of [new Error("x"), new TypeError("y"), "text", null, { status: 401 }, { status: "401", headers: {} }]) {
    assert.equal(core.toHttpError(other), undefined);
  }
});

test("the fetch Request: method, URL with the query, every header", () => {
  const request = core.toFetchRequest({
    method: "POST",
    path: "/threads/search",
    query: [["a", "1"], ["a", "2"], ["b", "x y"]],
    headers: [["host", "example.com:8123"], ["authorization", "Bearer t"], ["cookie", "s=1"], ["x-k", "1"], ["x-k", "2"]],
  });
  assert.equal(request.method, "POST");
  assert.equal(request.url, "http://example.com:8123/threads/search?a=1&a=2&b=x+y");
  assert.equal(request.headers.get("authorization"), "Bearer t");
  assert.equal(request.headers.get("cookie"), "s=1");
  assert.equal(request.headers.get("x-k"), "1, 2");
  const bare = core.toFetchRequest({ method: "GET", path: "/ok", query: [], headers: [] });
  assert.equal(bare.url, "http://localhost/ok");
});

test("authorize resolves the most specific handler and passes LangGraph's arguments", async () => {
  const seen = [];
  const tag = (name) => (args) => { seen.push([name, args.event]); return { by: name }; };
  const auth = { "~handlerCache": { callbacks: { "*": tag("global"), "*:create": tag("action"), threads: tag("resource"), "threads:create": tag("event") } } };
  const user = core.userView(core.toWitUser({ identity: "u", permissions: ["p"] }));
  const run = (resource, action) => core.authorize(auth, user, { tag: resource, val: action }, "{}");
  assert.deepEqual((await run("threads", "create")).decision.val, [cond("by", "eq", "event")]);
  await run("threads", "read");
  await run("crons", "create");
  await run("store", "put");
  await run("store", "list-namespaces");
  assert.deepEqual(seen, [
    ["event", "threads:create"], ["resource", "threads:read"], ["action", "crons:create"], ["global", "store:put"], ["global", "store:list_namespaces"],
  ]);
  let args;
  const one = { "~handlerCache": { callbacks: { "store:list_namespaces": (a) => { args = a; } } } };
  await core.authorize(one, user, { tag: "store", val: "list-namespaces" }, '{"namespace":null}');
  assert.deepEqual(args, {
    event: "store:list_namespaces", resource: "store", action: "list_namespaces", value: { namespace: null }, user, permissions: ["p"],
  });
  assert.deepEqual(await core.authorize(one, user, { tag: "threads", val: "read" }, "{}"), {
    decision: { tag: "allow" }, change: { tag: "none" },
  });
});
