// Builds a policy into a component with warden-auth-build, transpiles it
// with jco and instantiates it in Node with stand-ins for the host's
// imports: the component's exports as the host calls them, without Warden.

import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";

const SDK = fileURLToPath(new URL("..", import.meta.url));
const BUILD = join(SDK, "bin", "warden-auth-build.js");

const HOST = `
export const records = [];
export const settings = { config: new Map(), secrets: new Map() };
const stored = new Map();
export const log = { log(level, message, fields) { records.push({ level, message, fields: Object.fromEntries(fields) }); } };
export const config = { get: (k) => settings.config.get(k), secret: (k) => settings.secrets.get(k) };
export const cache = {
  get: (k) => stored.get(k),
  set: (k, v, ttl) => { stored.set(k, Uint8Array.from(v)); },
  delete: (k) => { stored.delete(k); },
};
export const crypto = { verify() { throw "bad-signature"; } };
export const empty = {};
`;

/**
 * Builds `entry` and loads the component: `{handlers, host, wasm, fresh}`;
 * `fresh()` instantiates it again (after a trap an instance cannot be
 * entered again, as in Warden).
 */
export async function loadComponent(entry, { args = [] } = {}) {
  const dir = await mkdtemp(join(tmpdir(), "warden-auth-component-"));
  const wasm = join(dir, "plugin.wasm");
  await promisify(execFile)(process.execPath, [BUILD, entry, "--out", wasm, "--quiet", ...args], {
    cwd: SDK,
    env: { ...process.env, WARDEN_COMPONENT_OUT: "", WARDEN_WIT_DIR: process.env.WARDEN_WIT_DIR ?? "" },
  });
  await writeFile(join(dir, "host.mjs"), HOST);
  const { transpile } = await import("@bytecodealliance/jco");
  const host = "../host.mjs";
  const { files } = await transpile(await import("node:fs/promises").then((fs) => fs.readFile(wasm)), {
    name: "plugin",
    noTypescript: true,
    map: {
      "warden:common/log@0.1.0": `${host}#log`,
      "warden:common/config@0.1.0": `${host}#config`,
      "warden:auth/crypto@0.2.0": `${host}#crypto`,
      "warden:auth/cache@0.2.0": `${host}#cache`,
      "warden:common/json@0.1.0": `${host}#empty`,
      "warden:auth/types@0.2.0": `${host}#empty`,
    },
  });
  const out = join(dir, "js");
  const { mkdir } = await import("node:fs/promises");
  await mkdir(out, { recursive: true });
  for (const [name, bytes] of Object.entries(files)) {
    await mkdir(join(out, name, ".."), { recursive: true });
    await writeFile(join(out, name), bytes);
  }
  // The transpiled module imports the WASI shims by name: resolve them from the SDK.
  await writeFile(join(dir, "package.json"), "{}");
  const { symlink } = await import("node:fs/promises");
  await symlink(join(SDK, "node_modules"), join(dir, "node_modules"));
  const hostModule = await import(pathToFileURL(join(dir, "host.mjs")).href);
  let n = 0;
  const fresh = async () => (await import(`${pathToFileURL(join(out, "plugin.js")).href}?i=${n++}`)).handlers;
  return { handlers: await fresh(), host: hostModule, wasm, fresh };
}
