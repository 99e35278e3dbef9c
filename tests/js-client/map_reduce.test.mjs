// The unmodified JS client (@langchain/langgraph-sdk) against `warden serve` of
// tests/fixtures/fanout-graph: a map-reduce over `Send` (one `write` task per subject;
// the subject `ask` asks a human) under the reference policy. This file starts its own
// server (WARDEN_BIN, WARDEN_REPO: run.sh sets them); it is skipped when the suite runs
// against a server it did not start.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";

import { Client } from "@langchain/langgraph-sdk";

import { inRepo, serveWarden, skipUnlessServing as skip } from "./serve.mjs";

const GRAPH = "fanout";

let warden = null;

const as = (token) =>
  new Client({ apiUrl: warden.url, defaultHeaders: { Authorization: `Bearer ${token}` },
    callerOptions: { maxRetries: 0 } });

async function updates(stream) {
  const seen = [];
  for await (const part of stream) if (part.event === "updates") seen.push(part.data);
  return seen;
}

before(async () => {
  if (skip) return;
  warden = await serveWarden({
    graphs: { fanout: inRepo("tests/fixtures/fanout-graph") },
    auth: { path: inRepo("examples/reference/auth"), disable_studio_auth: true },
  });
});

after(async () => {
  if (warden) await warden.stop();
});

test("a task that asks pauses alone; the others keep their results; only its owner resumes it", { skip }, async () => {
  const user1 = as("user1-token");
  const user2 = as("user2-token");
  const { thread_id: thread } = await user1.threads.create();
  let seen = await updates(user1.runs.stream(thread, GRAPH, {
    input: { subjects: ["cats", "ask", "owls"] }, streamMode: "updates" }));
  assert.deepEqual(seen.slice(1, 3), [
    { write: { jokes: ["joke about cats"] } }, { write: { jokes: ["joke about owls"] } }]);
  assert.deepEqual(seen[3].__interrupt__.map((i) => i.value), [{ question: "which joke about ask?" }]);

  const state = await user1.threads.getState(thread);
  assert.deepEqual(state.next, ["write"]);
  assert.deepEqual(state.tasks.map((t) => t.path), [
    ["__pregel_push", 0, false], ["__pregel_push", 1, false], ["__pregel_push", 2, false]]);

  await assert.rejects(
    user2.runs.wait(thread, GRAPH, { command: { resume: "stolen" } }),
    (e) => e.status === 404);

  seen = await updates(user1.runs.stream(thread, GRAPH, {
    command: { resume: "my own joke" }, streamMode: "updates" }));
  assert.deepEqual(seen.at(-1), { collect: { count: 3 } });
  const { values } = await user1.threads.getState(thread);
  assert.deepEqual(values.jokes, ["joke about cats", "my own joke", "joke about owls"]);
});

test("a command sends a task on its own input", { skip }, async () => {
  const user1 = as("user1-token");
  const { thread_id: thread } = await user1.threads.create();
  await user1.runs.wait(thread, GRAPH, { input: { subjects: ["cats"] } });
  const done = await user1.runs.wait(thread, GRAPH, {
    command: { goto: { node: "write", input: { subject: "bats" } } } });
  assert.deepEqual(done.jokes, ["joke about cats", "joke about bats"]);
  assert.equal(done.count, 2);
});
