// The unmodified JS client (@langchain/langgraph-sdk) against `warden serve` of
// examples/reference: the reference policy (tokens user1/user2/admin/reader) and the
// echo graph `agent`, which appends an AI message echoing the last user message and
// sets `seen_user` to the caller's identity. WARDEN_JS_URL names the server (run.sh
// starts one).
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";

import { Client } from "@langchain/langgraph-sdk";

const apiUrl = process.env.WARDEN_JS_URL;
if (!apiUrl) throw new Error("WARDEN_JS_URL is not set: run tests/js-client/run.sh");

const as = (token) =>
  new Client({
    apiUrl,
    defaultHeaders: token ? { Authorization: `Bearer ${token}` } : {},
    // 4xx are never retried; a 5xx would be, which would hide it.
    callerOptions: { maxRetries: 0 },
  });
const user1 = as("user1-token");
const user2 = as("user2-token");
const reader = as("reader-token");
const GRAPH = "agent";
const say = (text) => ({ messages: [{ role: "user", content: text }] });

/** The HTTP status the client's call failed with. */
async function status(call) {
  try {
    await call();
  } catch (error) {
    return error.status;
  }
  assert.fail("the call succeeded");
}

async function collect(stream) {
  const parts = [];
  for await (const part of stream) parts.push(part);
  return parts;
}

test("a thread is its creator's: another user gets 404 and cannot find it", async () => {
  const tag = randomUUID();
  const thread = await user1.threads.create({ metadata: { tag, owner: "user2" } });
  // The policy stamps the owner over the spoofed one.
  assert.equal(thread.metadata.owner, "user1");
  assert.equal((await user1.threads.get(thread.thread_id)).thread_id, thread.thread_id);
  assert.equal(await status(() => user2.threads.get(thread.thread_id)), 404);
  assert.equal(await status(() => user2.threads.update(thread.thread_id, { metadata: { x: 1 } })), 404);
  assert.equal(await status(() => user2.threads.delete(thread.thread_id)), 404);
  assert.deepEqual(await user2.threads.search({ metadata: { tag } }), []);
  const mine = await user1.threads.search({ metadata: { tag } });
  assert.deepEqual(mine.map((t) => t.thread_id), [thread.thread_id]);
  await user1.threads.update(thread.thread_id, { metadata: { step: 2 } });
  assert.equal((await user1.threads.get(thread.thread_id)).metadata.step, 2);
  await user1.threads.delete(thread.thread_id);
  assert.equal(await status(() => user1.threads.get(thread.thread_id)), 404);
});

test("no token is a 401, a reader may not create a thread", async () => {
  assert.equal(await status(() => as(null).threads.search({})), 401);
  assert.equal(await status(() => as("forged-token").threads.search({})), 401);
  assert.equal(await status(() => reader.threads.create({})), 403);
});

test("runs.wait returns the echo, seen by the caller", async () => {
  const thread = await user1.threads.create({});
  const values = await user1.runs.wait(thread.thread_id, GRAPH, { input: say("hi") });
  assert.deepEqual(
    values.messages.map((m) => [m.type, m.content]),
    [
      ["human", "hi"],
      ["ai", "hi"],
    ],
  );
  assert.equal(values.seen_user, "user1");
  const state = await user1.threads.getState(thread.thread_id);
  assert.deepEqual(state.values, values);
  assert.equal(await status(() => user2.runs.wait(thread.thread_id, GRAPH, { input: say("x") })), 404);
});

test("runs.stream yields metadata, then each step's update before its values", async () => {
  const thread = await user1.threads.create({});
  const parts = await collect(
    user1.runs.stream(thread.thread_id, GRAPH, {
      input: say("streamed"),
      streamMode: ["values", "updates"],
    }),
  );
  assert.ok(parts[0].data.run_id);
  // As LangGraph's loop: the input's values, the node's update, the state it made.
  assert.deepEqual(
    parts.map((p) => p.event),
    ["metadata", "values", "updates", "values"],
  );
  const last = parts.filter((p) => p.event === "values").at(-1).data;
  assert.equal(last.messages.at(-1).content, "streamed");
  assert.equal(last.seen_user, "user1");
});

test("a resumable run is replayed from its start (-1) or from an event id on", async () => {
  const thread = await user1.threads.create({});
  const run = await user1.runs.create(thread.thread_id, GRAPH, {
    input: say("joined"),
    streamMode: ["values", "updates"],
    streamResumable: true,
  });
  await user1.runs.join(thread.thread_id, run.run_id);
  // Joined once it is over: nothing follows (as LangGraph).
  assert.deepEqual(await collect(user1.runs.joinStream(thread.thread_id, run.run_id)), []);
  // `Last-Event-ID: -1`, as useStream sends to reconnect from the start: everything.
  const all = await collect(
    user1.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: "-1" }),
  );
  const ids = all.map((p) => p.id);
  assert.ok(all.length >= 2 && ids.every(Boolean), JSON.stringify(all));
  const values = all.filter((p) => p.event === "values").at(-1).data;
  assert.equal(values.messages.at(-1).content, "joined");
  // From the first event on: everything after it, and nothing before.
  const rest = await collect(
    user1.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: ids[0] }),
  );
  assert.deepEqual(
    rest.map((p) => p.id),
    ids.slice(1),
  );
  assert.deepEqual(
    all.map((p) => p.event),
    ["metadata", "values", "updates", "values"],
  );
  // One mode asked for (`stream_mode=updates`): its events only (Warden also
  // keeps the run's `metadata`, which LangGraph drops here).
  const updates = await collect(
    user1.runs.joinStream(thread.thread_id, run.run_id, {
      lastEventId: "-1",
      streamMode: ["updates"],
    }),
  );
  assert.deepEqual(
    updates.filter((p) => p.event !== "metadata").map((p) => p.id),
    all.filter((p) => p.event === "updates").map((p) => p.id),
  );
  // Another user cannot follow it: the stream's one event says so (as LangGraph).
  const refused = await collect(
    user2.runs.joinStream(thread.thread_id, run.run_id, { lastEventId: "-1" }),
  );
  assert.deepEqual(
    refused.map((p) => [p.event, p.data]),
    [["error", { error: "HTTPException", message: "404: Thread not found" }]],
  );
});

test("runs are listed with a status filter, and another user's are hidden", async () => {
  const thread = await user1.threads.create({});
  await user1.runs.wait(thread.thread_id, GRAPH, { input: say("one") });
  const runs = await user1.runs.list(thread.thread_id, { status: "success" });
  assert.equal(runs.length, 1);
  assert.equal(runs[0].status, "success");
  assert.deepEqual(await user1.runs.list(thread.thread_id, { status: "pending" }), []);
  assert.equal(await status(() => user2.runs.list(thread.thread_id)), 404);
});

test("a stateless run streams its answer", async () => {
  const parts = await collect(user1.runs.stream(null, GRAPH, { input: say("once"), streamMode: "values" }));
  const values = parts.filter((p) => p.event === "values").at(-1).data;
  assert.equal(values.messages.at(-1).content, "once");
});

test("assistants are found by graph, and the store keeps each user's items", async () => {
  const assistants = await user1.assistants.search({ graphId: GRAPH });
  assert.ok(assistants.some((a) => a.graph_id === GRAPH));
  const ns = ["user1", randomUUID()];
  await user1.store.putItem(ns, "k", { text: "mine" });
  const item = await user1.store.getItem(ns, "k");
  assert.deepEqual(item.value, { text: "mine" });
  const found = await user1.store.searchItems(ns);
  assert.deepEqual(found.items.map((i) => i.key), ["k"]);
  const spaces = await user1.store.listNamespaces({ prefix: [ns[0]] });
  assert.ok(spaces.namespaces.length >= 1, JSON.stringify(spaces));
});

test("a cron is its creator's: found, counted and deleted by them only", async () => {
  const tag = randomUUID();
  const cron = await user1.crons.create(GRAPH, {
    schedule: "*/5 * * * *",
    input: say("scheduled"),
    metadata: { tag },
  });
  try {
    assert.equal(cron.schedule, "*/5 * * * *");
    const found = await user1.crons.search({ metadata: { tag } });
    assert.deepEqual(found.map((c) => c.cron_id), [cron.cron_id]);
    assert.equal(await user1.crons.count({ metadata: { tag } }), 1);
    assert.deepEqual(await user2.crons.search({ metadata: { tag } }), []);
    assert.equal(await user2.crons.count({ metadata: { tag } }), 0);
    assert.equal(await status(() => user2.crons.delete(cron.cron_id)), 404);
  } finally {
    await user1.crons.delete(cron.cron_id);
  }
  assert.deepEqual(await user1.crons.search({ metadata: { tag } }), []);
});

test("a thread's state: history, an update through the graph's reducers, a copy", async () => {
  const thread = await user1.threads.create({ metadata: { k: "v" } });
  await user1.runs.wait(thread.thread_id, GRAPH, { input: say("first") });
  const history = await user1.threads.getHistory(thread.thread_id, { limit: 10 });
  assert.ok(history.length >= 2, JSON.stringify(history));
  assert.equal(history[0].values.messages.at(-1).content, "first");
  assert.equal(await status(() => user2.threads.getHistory(thread.thread_id)), 404);

  const before = await user1.threads.getState(thread.thread_id);
  await user1.threads.updateState(thread.thread_id, {
    values: { messages: [{ role: "user", content: "added" }] },
  });
  const after = await user1.threads.getState(thread.thread_id);
  assert.equal(after.values.messages.length, before.values.messages.length + 1);
  assert.equal(after.values.messages.at(-1).content, "added");
  assert.notEqual(after.checkpoint.checkpoint_id, before.checkpoint.checkpoint_id);
  assert.equal(
    await status(() => user2.threads.updateState(thread.thread_id, { values: { messages: [] } })),
    404,
  );

  const copy = await user1.threads.copy(thread.thread_id);
  assert.notEqual(copy.thread_id, thread.thread_id);
  assert.equal(copy.metadata.owner, "user1");
  assert.deepEqual((await user1.threads.getState(copy.thread_id)).values, after.values);
  assert.equal(await user1.threads.count({ metadata: { k: "v", owner: "user1" } }) >= 2, true);
});

test("assistants: admins write them, everyone reads them, with their graph and schemas", async () => {
  const admin = as("admin-token");
  assert.equal(await status(() => user1.assistants.create({ graphId: GRAPH })), 403);
  const created = await admin.assistants.create({
    graphId: GRAPH,
    name: `js-${randomUUID()}`,
    config: { configurable: { tone: "dry" } },
  });
  try {
    const read = await user1.assistants.get(created.assistant_id);
    assert.equal(read.name, created.name);
    const graph = await user1.assistants.getGraph(created.assistant_id);
    assert.ok(graph.nodes.some((n) => n.id === "__start__"), JSON.stringify(graph));
    const schemas = await user1.assistants.getSchemas(created.assistant_id);
    assert.equal(schemas.graph_id, GRAPH);
    const updated = await admin.assistants.update(created.assistant_id, { metadata: { v: 2 } });
    assert.equal(updated.version, 2);
    const versions = await admin.assistants.getVersions(created.assistant_id);
    assert.deepEqual(versions.map((v) => v.version).sort(), [1, 2]);
    await admin.assistants.setLatest(created.assistant_id, 1);
    assert.equal((await user1.assistants.get(created.assistant_id)).version, 1);
    assert.equal(await status(() => user1.assistants.delete(created.assistant_id)), 403);
  } finally {
    await admin.assistants.delete(created.assistant_id);
  }
  assert.equal(await status(() => user1.assistants.get(created.assistant_id)), 404);
});

test("store items: another user's namespace is refused, a deleted item is gone", async () => {
  const ns = ["user1", "js", randomUUID()];
  await user1.store.putItem(ns, "a", { n: 1 });
  assert.equal(await status(() => user2.store.getItem(ns, "a")), 403);
  assert.equal(await status(() => user2.store.putItem(ns, "b", { n: 2 })), 403);
  await user1.store.deleteItem(ns, "a");
  assert.equal(await user1.store.getItem(ns, "a"), null);
});

test("a run on a thread id that does not exist yet creates it for the caller", async () => {
  const threadId = randomUUID();
  const values = await user1.runs.wait(threadId, GRAPH, {
    input: say("new"),
    ifNotExists: "create",
  });
  assert.equal(values.messages.at(-1).content, "new");
  const thread = await user1.threads.get(threadId);
  assert.equal(thread.metadata.owner, "user1");
  assert.equal(await status(() => user2.threads.get(threadId)), 404);
});

test("a stateless wait answers with the run's values", async () => {
  const values = await user1.runs.wait(null, GRAPH, { input: say("no thread") });
  assert.equal(values.messages.at(-1).content, "no thread");
  assert.equal(values.seen_user, "user1");
});

test("threads are searched in order, a page at a time", async () => {
  const tag = randomUUID();
  const ids = [];
  for (let i = 0; i < 3; i++) {
    ids.push((await user1.threads.create({ metadata: { tag, i } })).thread_id);
  }
  const page = (offset) =>
    user1.threads.search({
      metadata: { tag },
      sortBy: "created_at",
      sortOrder: "asc",
      limit: 2,
      offset,
    });
  assert.deepEqual((await page(0)).map((t) => t.thread_id), ids.slice(0, 2));
  assert.deepEqual((await page(2)).map((t) => t.thread_id), ids.slice(2));
  const idle = await user1.threads.search({ metadata: { tag }, status: "idle" });
  assert.equal(idle.length, 3);
});

test("interruptBefore pauses the run before the node; a run without input runs it", async () => {
  const thread = await user1.threads.create();
  const paused = await user1.runs.wait(thread.thread_id, GRAPH, {
    input: say("hold on"),
    interruptBefore: ["echo"],
  });
  assert.deepEqual(paused.messages.map((m) => m.type), ["human"]);
  const state = await user1.threads.getState(thread.thread_id);
  assert.deepEqual(state.next, ["echo"]);
  assert.equal((await user1.threads.get(thread.thread_id)).status, "interrupted");

  const done = await user1.runs.wait(thread.thread_id, GRAPH, { input: null });
  assert.equal(done.messages.at(-1).content, "hold on");
  assert.deepEqual((await user1.threads.getState(thread.thread_id)).next, []);
  assert.equal((await user1.threads.get(thread.thread_id)).status, "idle");
});

test("a run from a past checkpoint replays from there, keeping the old branch", async () => {
  const thread = await user1.threads.create();
  await user1.runs.wait(thread.thread_id, GRAPH, { input: say("again") });
  const before = await user1.threads.getHistory(thread.thread_id, { limit: 20 });
  const past = before.find((c) => c.next.length === 1 && c.next[0] === "echo");
  assert.ok(past, JSON.stringify(before));

  const replayed = await user1.runs.wait(thread.thread_id, GRAPH, {
    input: null,
    checkpointId: past.checkpoint.checkpoint_id,
  });
  assert.deepEqual(replayed.messages.map((m) => m.content), ["again", "again"]);
  const after = await user1.threads.getHistory(thread.thread_id, { limit: 20 });
  const ids = new Set(after.map((c) => c.checkpoint.checkpoint_id));
  for (const old of before) assert.ok(ids.has(old.checkpoint.checkpoint_id));
  assert.ok(after.length > before.length);
});

test("tasks and checkpoints stream modes report the echo step", async () => {
  const thread = await user1.threads.create();
  const parts = (
    await collect(
      user1.runs.stream(thread.thread_id, GRAPH, {
        input: say("hi"),
        streamMode: ["tasks", "checkpoints"],
      }),
    )
  ).filter((p) => p.event !== "metadata");
  // LangGraph also sends a checkpoint of the bare input first; Warden has none.
  const tail = parts.slice(-4);
  assert.deepEqual(tail.map((p) => p.event), ["checkpoints", "tasks", "tasks", "checkpoints"]);
  const [before, start, result, after] = tail.map((p) => p.data);
  assert.deepEqual(before.next, ["echo"]);
  assert.deepEqual(after.next, []);
  assert.deepEqual(before.tasks.map((t) => t.name), ["echo"]);
  assert.equal(start.name, "echo");
  assert.equal(start.id, before.tasks[0].id);
  assert.equal(result.id, start.id);
  assert.deepEqual(start.triggers, ["branch:to:echo"]);
  assert.equal(result.error, null);
  assert.deepEqual(result.interrupts, []);
  assert.equal(result.result.seen_user, "user1");
  const history = await user1.threads.getHistory(thread.thread_id, { limit: 20 });
  const ids = new Set(history.map((s) => s.checkpoint.checkpoint_id));
  for (const p of parts.filter((p) => p.event === "checkpoints")) {
    assert.ok(ids.has(p.data.config.configurable.checkpoint_id), JSON.stringify(p.data.config));
  }
  assert.equal(after.config.configurable.checkpoint_id, history[0].checkpoint.checkpoint_id);
});
