// The reference policy, natively (`npm test`): the handlers run as the
// component runs them (`@warden/auth/testing`), without building it.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";

import { authenticate, authorize, loadPolicy, registration } from "@warden/auth/testing";

let auth;
before(async () => {
  ({ auth } = await loadPolicy(new URL("../src/auth.ts", import.meta.url).pathname));
});

const login = (token) => authenticate(auth, { headers: { authorization: `Bearer ${token}` } });
const as = async (token, event, value) => authorize(auth, await login(token), event, value);
const status = (code, message) => (error) => {
  assert.equal(error.status, code);
  if (message !== undefined) assert.equal(error.message, message);
  return true;
};

describe("authenticate", () => {
  test("tokens map to the reference users", async () => {
    const admin = await login("admin-token");
    assert.equal(admin.identity, "admin");
    assert.equal(admin.display_name, "Admin");
    assert.ok(admin.permissions.includes("admin"));
    assert.ok(admin.permissions.includes("assistants:write"));
    assert.deepEqual(await login("user1-token"), {
      identity: "user1",
      display_name: "Alice",
      is_authenticated: true,
      permissions: ["threads:create", "threads:read", "threads:write", "runs:create", "store:read", "store:write"],
    });
    assert.equal((await login("user2-token")).permissions.length, 6);
    assert.deepEqual((await login("reader-token")).permissions, ["threads:read", "store:read", "store:write"]);
  });

  test("bad credentials are 401 with the reference details", async () => {
    const cases = [
      [undefined, "Missing Authorization header"],
      ["", "Missing Authorization header"],
      ["Basic abc", "Invalid Authorization scheme; expected Bearer"],
      ["Bearer", "Invalid Authorization scheme; expected Bearer"],
      ["Bearer   ", "Invalid Authorization scheme; expected Bearer"],
      ["Bearer nope", "Invalid token"],
    ];
    for (const [header, detail] of cases) {
      const headers = header === undefined ? {} : { authorization: header };
      await assert.rejects(authenticate(auth, { headers }), status(401, detail), String(header));
    }
  });

  test("the scheme is case-insensitive and the header name too", async () => {
    const user = await authenticate(auth, { headers: { Authorization: "bearer  user2-token " } });
    assert.equal(user.identity, "user2");
  });

  test("only the authorization header is read, and declared", async () => {
    assert.deepEqual(registration(auth).headers, ["authorization"]);
    const user = await authenticate(auth, {
      headers: [["x-forwarded-for", "10.0.0.1"], ["Authorization", "Bearer user1-token"]],
    });
    assert.equal(user.identity, "user1");
  });
});

describe("authorize", () => {
  test("the handlers registered: global, threads:create, assistants, store", () => {
    assert.deepEqual(registration(auth).handlers, [
      { tag: "global" },
      { tag: "event", val: { tag: "threads", val: "create" } },
      { tag: "any-action", val: "assistants" },
      { tag: "any-action", val: "store" },
    ]);
  });

  test("thread creation stamps the owner over a spoof, and filters", async () => {
    const r = await as("user1-token", "threads:create", { thread_id: "t", metadata: { owner: "user2", k: 1 } });
    assert.equal(r.decision, "filter");
    assert.deepEqual(r.filter, { owner: "user1" });
    assert.deepEqual(r.change, { kind: "stamps", stamps: { owner: "user1" } });
    assert.deepEqual(r.value, { thread_id: "t", metadata: { owner: "user1", k: 1 } });
  });

  test("a thread without metadata gets one", async () => {
    const r = await as("user2-token", "threads:create", { thread_id: "t" });
    assert.deepEqual(r.value, { thread_id: "t", metadata: { owner: "user2" } });
  });

  test("reader cannot create threads", async () => {
    await assert.rejects(
      as("reader-token", "threads:create", { metadata: { owner: "spoof" } }),
      status(403, "Missing permission: threads:create"),
    );
  });

  test("reads are filtered by owner without stamping", async () => {
    for (const event of ["threads:read", "threads:search", "threads:delete", "crons:read"]) {
      const r = await as("user2-token", event, { thread_id: "t" });
      assert.deepEqual([r.decision, r.filter, r.change], ["filter", { owner: "user2" }, { kind: "none" }], event);
    }
  });

  test("updates and runs stamp the owner too", async () => {
    for (const event of ["threads:update", "threads:create_run", "crons:create", "crons:update"]) {
      const r = await as("user1-token", event, { metadata: {} });
      assert.deepEqual(r.change, { kind: "stamps", stamps: { owner: "user1" } }, event);
      assert.deepEqual(r.filter, { owner: "user1" }, event);
    }
  });

  test("only admins write assistants; everyone reads them unfiltered", async () => {
    for (const action of ["create", "update", "delete"]) {
      await assert.rejects(as("user1-token", `assistants:${action}`, { metadata: {} }), status(403, "Only admin may modify assistants"));
    }
    const created = await as("admin-token", "assistants:create", { graph_id: "agent", metadata: {} });
    assert.equal(created.decision, "allow");
    assert.deepEqual(created.value.metadata, { owner: "admin" });
    const updated = await as("admin-token", "assistants:update", { assistant_id: "a", metadata: {} });
    assert.deepEqual([updated.decision, updated.change], ["allow", { kind: "none" }]);
    for (const action of ["read", "search"]) {
      const r = await as("reader-token", `assistants:${action}`, {});
      assert.deepEqual([r.decision, r.change], ["allow", { kind: "none" }]);
    }
  });

  test("store namespaces start with the caller", async () => {
    const own = await as("user1-token", "store:put", { namespace: ["user1", "docs"], key: "k", value: {} });
    assert.deepEqual([own.decision, own.change], ["allow", { kind: "none" }]);
    for (const namespace of [["user2", "docs"], [], null, undefined]) {
      for (const event of ["store:get", "store:put", "store:search", "store:delete", "store:list_namespaces"]) {
        await assert.rejects(
          as("user1-token", event, { namespace, key: "k" }),
          status(403, "Store namespace must start with the caller's identity"),
          `${event} ${JSON.stringify(namespace)}`,
        );
      }
    }
    const reader = await as("reader-token", "store:search", { namespace: ["reader"] });
    assert.equal(reader.decision, "allow");
  });
});
