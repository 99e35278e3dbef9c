// The unmodified JS client (@langchain/langgraph-sdk) against `warden serve` of
// examples/assistant: a chat agent whose graph calls a model (here a scripted
// OpenAI-compatible server on 127.0.0.1, in the graph's allowed_hosts), streams its
// answer token by token and asks a human before it sends an e-mail. This file starts
// its own server (WARDEN_BIN, WARDEN_REPO: run.sh sets them); it is skipped when the
// suite runs against a server it did not start.
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, test } from "node:test";

import { Client } from "@langchain/langgraph-sdk";

import { inRepo, serveWarden, skipUnlessServing as skip } from "./serve.mjs";

const GRAPH = "assistant";
const say = (text) => ({ messages: [{ role: "user", content: text }] });

/** The scripted model: answers in order; `hold` pauses the next after its first token. */
const model = { answers: [], requests: [], hold: null, server: null, port: 0 };

function chunk(delta, finish = null) {
  return {
    id: "chatcmpl-test", object: "chat.completion.chunk", created: 1700000000,
    model: "test-model", choices: [{ index: 0, delta, finish_reason: finish }],
  };
}

function chunksOf(answer) {
  const out = [chunk({ role: "assistant", content: "" })];
  if (answer.hang) return [...out, chunk({ content: "Thinking" })];
  if (answer.tokens) {
    for (const t of answer.tokens) out.push(chunk({ content: t }));
    out.push(chunk({}, "stop"));
  } else {
    const args = JSON.stringify(answer.toolCall.args);
    const half = Math.floor(args.length / 2);
    out.push(chunk({ tool_calls: [{ index: 0, id: answer.toolCall.id, type: "function",
      function: { name: answer.toolCall.name, arguments: args.slice(0, half) } }] }));
    out.push(chunk({ tool_calls: [{ index: 0, function: { arguments: args.slice(half) } }] }));
    out.push(chunk({}, "tool_calls"));
  }
  out.push({ id: "chatcmpl-test", object: "chat.completion.chunk", created: 1700000000,
    model: "test-model", choices: [],
    usage: { prompt_tokens: 12, completion_tokens: 3, total_tokens: 15 } });
  return out;
}

function startModel() {
  return new Promise((resolve) => {
    model.server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", async () => {
        model.requests.push(JSON.parse(body || "{}"));
        const answer = model.answers.shift();
        if (!answer) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { message: "no answer scripted" } }));
          return;
        }
        const hold = model.hold;
        model.hold = null;
        res.writeHead(200, { "content-type": "text/event-stream" });
        const chunks = chunksOf(answer);
        for (let i = 0; i < chunks.length; i++) {
          res.write(`data: ${JSON.stringify(chunks[i])}\n\n`);
          if (i === 1 && hold) await hold.promise;
        }
        if (answer.hang) return; // silent until the client leaves
        res.end("data: [DONE]\n\n");
      });
    });
    model.server.listen(0, "127.0.0.1", () => {
      model.port = model.server.address().port;
      resolve();
    });
  });
}

/** A gate the test opens: `gate.open()` resolves `gate.promise`. */
function gate() {
  let open;
  const promise = new Promise((r) => (open = r));
  return { promise, open };
}

let warden = null;
let apiUrl = null;

async function startWarden() {
  const path = inRepo("examples/assistant/agent");
  const settings = { base_url: `http://127.0.0.1:${model.port}/v1`, model: "test-model" };
  const origin = `http://127.0.0.1:${model.port}`;
  warden = await serveWarden({
    graphs: {
      assistant: { path, config: settings, allowed_hosts: [origin] },
      // The same graph, its model's host off its allowlist.
      assistant_offlist: { path, config: settings, allowed_hosts: ["http://127.0.0.1:9"] },
      // The same graph, with a short deadline.
      assistant_hurried: { path, config: settings, timeout_ms: 3000, allowed_hosts: [origin] },
    },
    auth: { path: inRepo("examples/reference/auth"), disable_studio_auth: true },
  });
  apiUrl = warden.url;
}

const as = (token) =>
  new Client({ apiUrl, defaultHeaders: { Authorization: `Bearer ${token}` },
    callerOptions: { maxRetries: 0 } });

before(async () => {
  if (skip) return;
  await startModel();
  await startWarden();
});

after(async () => {
  if (warden) await warden.stop();
  if (model.server) {
    model.server.closeAllConnections();
    model.server.close();
  }
});

test("the model's tokens arrive as messages-tuple chunks before the run ends", { skip }, async () => {
  const user1 = as("user1-token");
  const thread = await user1.threads.create();
  model.answers.push({ tokens: ["Hel", "lo", " there"] });
  const held = gate();
  model.hold = held;

  const chunks = [];
  for await (const part of user1.runs.stream(thread.thread_id, GRAPH, {
    input: say("hi"), streamMode: "messages-tuple" })) {
    if (part.event !== "messages") continue;
    chunks.push(part.data);
    if (part.data[0].content === "Hel") {
      // The model holds the rest of its answer: the run is still going.
      assert.equal((await user1.threads.get(thread.thread_id)).status, "busy");
      held.open();
    }
  }
  assert.equal(chunks.map(([m]) => m.content).join(""), "Hello there");
  assert.deepEqual([...new Set(chunks.map(([m]) => m.type))], ["AIMessageChunk"]);
  assert.equal(new Set(chunks.map(([m]) => m.id)).size, 1);
  assert.deepEqual([...new Set(chunks.map(([, meta]) => meta.langgraph_node))], ["agent"]);
  const state = await user1.threads.getState(thread.thread_id);
  const answer = state.values.messages.at(-1);
  assert.equal(answer.type, "ai");
  assert.equal(answer.content, "Hello there");
  assert.equal(answer.id, chunks[0][0].id);
});

test("a tool call waits for approval; another user cannot resume it; the owner can", { skip }, async () => {
  const user1 = as("user1-token");
  const user2 = as("user2-token");
  const thread = await user1.threads.create();
  const args = { to: "bob@example.com", subject: "Lunch", body: "Noon?" };
  model.answers.push({ toolCall: { name: "send_email", args, id: "call_1" } });

  const paused = await user1.runs.wait(thread.thread_id, GRAPH, { input: say("Ask Bob to lunch") });
  assert.deepEqual(paused.__interrupt__[0].value.tool_call.args, args);
  assert.equal((await user1.threads.get(thread.thread_id)).status, "interrupted");
  assert.deepEqual((await user1.threads.getState(thread.thread_id)).next, ["tools"]);

  await assert.rejects(
    user2.runs.wait(thread.thread_id, GRAPH, { command: { resume: true } }),
    (error) => error.status === 404,
  );

  model.answers.push({ tokens: ["Done", "."] });
  const done = await user1.runs.wait(thread.thread_id, GRAPH, { command: { resume: true } });
  assert.deepEqual(done.messages.slice(2).map((m) => [m.type, m.content]), [
    ["tool", "Sent to bob@example.com."],
    ["ai", "Done."],
  ]);
  assert.deepEqual(done.sent, [args]);
  assert.equal((await user1.threads.get(thread.thread_id)).status, "idle");
});

test("a model off the graph's allowlist is an error the graph sees", { skip }, async () => {
  const user1 = as("user1-token");
  const thread = await user1.threads.create();
  const before = model.requests.length;
  await assert.rejects(
    user1.runs.wait(thread.thread_id, "assistant_offlist", { input: say("hi") }),
    (error) => /PermissionDeniedError/.test(error.message) && /allowed_hosts/.test(error.message),
  );
  const [run] = await user1.runs.list(thread.thread_id);
  assert.equal(run.status, "error");
  assert.equal(model.requests.length, before, "the request never left");
});

test("a hanging model ends the run at its deadline", { skip }, async () => {
  const user1 = as("user1-token");
  const thread = await user1.threads.create();
  model.answers.push({ hang: true });
  await assert.rejects(
    user1.runs.wait(thread.thread_id, "assistant_hurried", { input: say("hi") }),
    (error) => /Timeout|deadline/.test(error.message),
  );
  const [run] = await user1.runs.list(thread.thread_id);
  assert.equal(run.status, "error");
  assert.equal((await user1.threads.get(thread.thread_id)).status, "error");
});
