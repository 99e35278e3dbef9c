// The unmodified JS client (@langchain/langgraph-sdk) against `warden serve` of
// tests/fixtures/fanout-graph: a map-reduce over `Send` (one `write` task per subject;
// the subject `ask` asks a human) under the reference policy. This file starts its own
// server (WARDEN_BIN, WARDEN_REPO: run.sh sets them); it is skipped when the suite runs
// against a server it did not start.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { Client } from "@langchain/langgraph-sdk";

const { WARDEN_BIN, WARDEN_REPO } = process.env;
const skip = !WARDEN_BIN || !WARDEN_REPO ? "needs WARDEN_BIN and WARDEN_REPO (run.sh)" : false;
const GRAPH = "fanout";

let warden = null;
let dir = null;
let apiUrl = null;

async function startWarden() {
  dir = mkdtempSync(join(tmpdir(), "warden-fanout-"));
  const config = join(dir, "langgraph.json");
  writeFileSync(config, JSON.stringify({
    graphs: { fanout: join(WARDEN_REPO, "tests/fixtures/fanout-graph") },
    auth: { path: join(WARDEN_REPO, "examples/reference/auth"), disable_studio_auth: true },
  }));
  const portFile = join(dir, "port");
  const log = join(dir, "warden.log");
  const out = openSync(log, "w");
  warden = spawn(WARDEN_BIN, ["serve", "--config", config, "--port", "0", "--port-file", portFile,
    "--data-dir", join(dir, "data")], { stdio: ["ignore", out, out] });
  for (let i = 0; i < 1200 && !(existsSync(portFile) && readFileSync(portFile, "utf8").trim()); i++) {
    if (warden.exitCode !== null) {
      throw new Error(`warden serve exited with ${warden.exitCode}:\n${readFileSync(log, "utf8")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  apiUrl = `http://127.0.0.1:${readFileSync(portFile, "utf8").trim()}`;
}

const as = (token) =>
  new Client({ apiUrl, defaultHeaders: { Authorization: `Bearer ${token}` },
    callerOptions: { maxRetries: 0 } });

async function updates(stream) {
  const seen = [];
  for await (const part of stream) if (part.event === "updates") seen.push(part.data);
  return seen;
}

before(async () => {
  if (!skip) await startWarden();
});

after(async () => {
  if (warden) {
    warden.kill();
    await new Promise((r) => warden.once("exit", r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
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
