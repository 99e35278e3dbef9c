// The built component, run in Node through jco (`npm run test:component`):
// the glue as the host calls it.
import assert from "node:assert/strict";
import { before, test } from "node:test";

import { loadComponent } from "./harness.mjs";

let c;
before(async () => {
  c = await loadComponent(new URL("./fixture.ts", import.meta.url).pathname);
  c.host.settings.config.set("issuer", "https://issuer.example");
});

const request = (path, headers = []) => ({ method: "POST", path, query: [["q", "1"]], headers });
const user = (identity) => ({
  identity, displayName: undefined, isAuthenticated: true, permissions: ["p1"], extra: '{"org":"acme"}', privateFields: [],
});

test("register lists the handler keys, no headers", () => {
  const r = c.handlers.register();
  assert.equal(r.headers, undefined);
  assert.deepEqual(r.handlers[0], { tag: "global" });
  assert.equal(r.handlers.length, 10);
});

test("authenticate: the fetch Request, the user, extra fields, async work", () => {
  const [u, session] = c.handlers.authenticate(
    request("/threads", [["host", "h.example:8123"], ["authorization", "alice"], ["cookie", "s=1"], ["x-multi", "a"], ["x-multi", "b"]]),
  );
  assert.equal(u.identity, "alice");
  assert.equal(u.displayName, "Display");
  assert.equal(u.isAuthenticated, true);
  assert.deepEqual(u.permissions, ["p1"]);
  const extra = JSON.parse(u.extra);
  assert.equal(extra.org, "acme");
  assert.deepEqual({ ...extra.request, now: undefined }, {
    method: "POST", url: "http://h.example:8123/threads?q=1", cookie: "s=1", xs: "a, b", issuer: "https://issuer.example", now: undefined,
  });
  assert.ok(Math.abs(extra.request.now - Date.now()) < 60_000, "the wall clock runs");
  // The session keeps the user.
  const v = session.authorize({ tag: "threads", val: "create" }, '{"thread_id":"t"}');
  assert.deepEqual(v.change, { tag: "stamps", val: [["owner", '"alice"']] });
});

test("authenticate: a string user; an HTTPException with headers", () => {
  const [u] = c.handlers.authenticate(request("/string"));
  assert.equal(u.identity, "just-a-name");
  assert.throws(() => c.handlers.authenticate(request("/threads")), (e) => {
    assert.deepEqual(e.payload, { status: 401, detail: "Unauthorized", headers: [["www-authenticate", 'Bearer realm="x"']] });
    return true;
  });
});

test("authorize: stamps, filters with $or/$contains, deny, {} allows", () => {
  const s = new c.handlers.Session(user("bob"));
  assert.deepEqual(s.authorize({ tag: "threads", val: "create-run" }, '{"metadata":{"owner":"spoof","k":1},"kwargs":{}}'), {
    decision: { tag: "filter", val: [{ tag: "condition", val: { key: "owner", op: "eq", operand: '"bob"' } }] },
    change: { tag: "stamps", val: [["owner", '"bob"']] },
  });
  assert.deepEqual(s.authorize({ tag: "threads", val: "read" }, '{"thread_id":"t"}'), {
    decision: {
      tag: "filter",
      val: [{ tag: "any-of", val: [
        [{ key: "owner", op: "eq", operand: '"bob"' }],
        [{ key: "org", op: "eq", operand: '"acme"' }, { key: "tags", op: "contains", operand: '"p1"' }],
      ] }],
    },
    change: { tag: "none" },
  });
  assert.deepEqual(s.authorize({ tag: "threads", val: "delete" }, "{}"), { decision: { tag: "deny" }, change: { tag: "none" } });
  assert.deepEqual(s.authorize({ tag: "threads", val: "search" }, "{}"), { decision: { tag: "allow" }, change: { tag: "none" } });
  const logged = c.host.records.map((r) => [r.level, r.message]);
  assert.deepEqual(logged.slice(-2), [["warn", 'searching {"n":1}'], ["info", "host log"]]);
});

test("authorize: a rewritten value crosses whole; an HTTPException is the error", () => {
  const s = new c.handlers.Session(user("carol"));
  assert.deepEqual(s.authorize({ tag: "store", val: "put" }, '{"namespace":["docs"],"key":"k"}'), {
    decision: { tag: "allow" },
    change: { tag: "value", val: '{"namespace":["carol","docs"],"key":"k"}' },
  });
  assert.throws(() => s.authorize({ tag: "assistants", val: "update" }, "{}"), (e) => {
    assert.deepEqual(e.payload, { status: 418, detail: "teapot", headers: [["x-a", "1"]] });
    return true;
  });
});

// Sessions of trapped instances stay referenced: jco would drop them on
// garbage collection, entering the trapped instance again.
const kept = [];
const session = (h) => {
  const s = new h.Session(user("d"));
  kept.push(s);
  return s;
};

for (const [what, call, expectLogged] of [
  ["a handler that throws", (h) => session(h).authorize({ tag: "crons", val: "read" }, "{}")],
  ["an invalid result", (h) => session(h).authorize({ tag: "assistants", val: "search" }, "{}")],
  ["an invalid filter operator", (h) => session(h).authorize({ tag: "assistants", val: "read" }, "{}")],
  ["a promise that never settles", (h) => session(h).authorize({ tag: "assistants", val: "delete" }, "{}"), 0],
  ["authenticate that throws", (h) => h.authenticate(request("/boom"))],
  ["an invalid user", (h) => h.authenticate(request("/invalid"))],
]) {
  const logged = typeof expectLogged === "number" ? expectLogged : 1;
  test(`${what} traps (fail closed)${logged ? " after logging the error" : ""}`, async () => {
    const h = await c.fresh();
    const before = c.host.records.length;
    assert.throws(() => call(h), (e) => e instanceof WebAssembly.RuntimeError);
    const errors = c.host.records.slice(before).filter((r) => r.level === "error");
    assert.equal(errors.length, logged, JSON.stringify(c.host.records.slice(before)));
  });
}
