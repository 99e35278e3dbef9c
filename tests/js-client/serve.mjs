// Starts a `warden serve` of its own for a test file: WARDEN_BIN on a langgraph.json the
// test writes, in a fresh temporary directory, on a free port (`--port 0 --port-file`).
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { WARDEN_BIN, WARDEN_REPO } = process.env;

/** Why a file that starts its own server is skipped, or `false` (run.sh sets both). */
export const skipUnlessServing =
  !WARDEN_BIN || !WARDEN_REPO ? "needs WARDEN_BIN and WARDEN_REPO (run.sh)" : false;

/** A path inside the repository. */
export const inRepo = (path) => join(WARDEN_REPO, path);

/**
 * Serves `config` (langgraph.json's content, an object): resolves to `{ url, stop }`
 * once the server listens; `stop()` ends it and removes its directory. A server that
 * exits before it listens rejects with its log.
 */
export async function serveWarden(config) {
  const dir = mkdtempSync(join(tmpdir(), "warden-js-"));
  const configPath = join(dir, "langgraph.json");
  writeFileSync(configPath, JSON.stringify(config));
  const portFile = join(dir, "port");
  const log = join(dir, "warden.log");
  const out = openSync(log, "w");
  const warden = spawn(WARDEN_BIN, ["serve", "--config", configPath, "--port", "0",
    "--port-file", portFile, "--data-dir", join(dir, "data")], { stdio: ["ignore", out, out] });
  const stop = async () => {
    if (warden.exitCode === null) {
      warden.kill();
      await new Promise((r) => warden.once("exit", r));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const listening = () => existsSync(portFile) && readFileSync(portFile, "utf8").trim();
  for (let i = 0; i < 1200 && !listening(); i++) {
    if (warden.exitCode !== null) {
      const text = readFileSync(log, "utf8");
      await stop();
      throw new Error(`warden serve exited with ${warden.exitCode}:\n${text}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url: `http://127.0.0.1:${readFileSync(portFile, "utf8").trim()}`, stop };
}
