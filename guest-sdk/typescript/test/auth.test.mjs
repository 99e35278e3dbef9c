// The Auth object: LangGraph.js's shape and registration rules.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Auth, HTTPException, isStudioUser } from "@warden/auth";
import { registration } from "@warden/auth/testing";

const noop = () => {};

test("Auth keeps its handlers where LangGraph.js does", () => {
  const authn = async () => "u";
  const auth = new Auth().authenticate(authn).on("*", noop).on(["threads:create", "store"], noop);
  assert.equal(auth["~handlerCache"].authenticate, authn);
  assert.deepEqual(Object.keys(auth["~handlerCache"].callbacks), ["*", "threads:create", "store"]);
});

test("every key form LangGraph.js accepts registers its WIT handler key", () => {
  const auth = new Auth()
    .authenticate(() => "u")
    .on("*", noop)
    .on("threads", noop)
    .on("*:create_run", noop)
    .on("*:list_namespaces", noop)
    .on("threads:create_run", noop)
    .on(["store:put", "store:list_namespaces", "assistants:delete", "crons:search"], noop);
  assert.deepEqual(registration(auth).handlers, [
    { tag: "global" },
    { tag: "any-action", val: "threads" },
    { tag: "any-resource", val: "create-run" },
    { tag: "any-resource", val: "list-namespaces" },
    { tag: "event", val: { tag: "threads", val: "create-run" } },
    { tag: "event", val: { tag: "store", val: "put" } },
    { tag: "event", val: { tag: "store", val: "list-namespaces" } },
    { tag: "event", val: { tag: "assistants", val: "delete" } },
    { tag: "event", val: { tag: "crons", val: "search" } },
  ]);
  assert.equal(registration(auth).headers, undefined);
});

test("a key no event matches is refused at registration", () => {
  for (const key of ["store:create", "threads:put", "runs", "runs:create", "*:nope", "threads:*", "", "Threads", 3]) {
    assert.throws(() => new Auth().on(key, noop), TypeError, String(key));
  }
  assert.throws(() => new Auth().on([], noop), /empty/);
  assert.throws(() => new Auth().on("*", "not a function"), /handler function/);
});

test("a key registered again replaces the handler (LangGraph.js)", () => {
  const second = () => false;
  const auth = new Auth().on("threads", noop).on("threads", second);
  assert.equal(auth["~handlerCache"].callbacks.threads, second);
  assert.equal(registration(new Auth().authenticate(noop).on("threads", noop).on("threads", second)).handlers.length, 1);
});

test("readsHeaders declares lower-case header names once", () => {
  const auth = new Auth().authenticate(() => "u").readsHeaders(["Authorization", "X-Api-Key"]).readsHeaders(["authorization"]);
  assert.deepEqual(registration(auth).headers, ["authorization", "x-api-key"]);
});

test("HTTPException: status, message defaulting to the reason phrase, headers", () => {
  const e = new HTTPException(401);
  assert.equal(e.status, 401);
  assert.equal(e.message, "Unauthorized");
  assert.deepEqual(e.headers, {});
  assert.ok(e instanceof Error);
  const f = new HTTPException(418, { message: "teapot", headers: { "x-a": "1" } });
  assert.equal(f.message, "teapot");
  assert.deepEqual(f.headers, { "x-a": "1" });
  assert.equal(new HTTPException(499).message, "Unknown error");
});

test("isStudioUser", () => {
  assert.equal(isStudioUser({ identity: "langgraph-studio-user" }), true);
  assert.equal(isStudioUser({ kind: "StudioUser", identity: "x" }), true);
  assert.equal(isStudioUser({ identity: "alice" }), false);
});
