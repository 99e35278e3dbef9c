#!/usr/bin/env node
// warden-auth-build: a TypeScript/JavaScript auth policy -> a Warden auth
// plugin (a `warden:auth/auth-plugin@0.2.0` component), with esbuild and
// componentize-js.

import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SDK = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WORLD = "auth-plugin";
/** componentize-js features the plugin does without (see README). */
const DEFAULT_DISABLED = ["http", "fetch-event", "random", "stdio"];
const FEATURES = ["stdio", "random", "clocks", "http", "fetch-event"];
/** Package export conditions: the web builds of dependencies (StarlingMonkey has web APIs, not Node's). */
const CONDITIONS = ["worker", "browser"];

const USAGE = `usage: warden-auth-build <entry.ts> [options]

Bundles the policy module <entry.ts> (it exports \`auth\`, an Auth from
"@warden/auth" or "@langchain/langgraph-sdk/auth") and builds it into a
Warden auth plugin component.

options:
  -o, --out <file.wasm>   where to write the component (default:
                          dist/auth.wasm; $WARDEN_COMPONENT_OUT, set by
                          Warden, takes precedence)
  --wit <dir>             the WIT package of warden:auth@0.2.0 (auth.wit and
                          deps/common/common.wit; $WARDEN_WIT_DIR takes
                          precedence; default: the Warden repository's wit/)
  --export <name>         the export holding the Auth (default: auth, else default)
  --enable <feature>      keep a componentize-js feature the build disables
                          (${DEFAULT_DISABLED.join(", ")}); repeatable
  --disable <feature>     disable one more (clocks: Date.now() is frozen)
  --keep-js <file.js>     also write the bundled JavaScript there
  -q, --quiet             print nothing on success
  -h, --help              this text`;

class UsageError extends Error {}

/** A path relative to the working directory when it is under it, else absolute. */
function display(path) {
  const shown = relative(process.cwd(), path);
  return shown && !shown.startsWith("..") ? shown : path;
}

function parseArgs(argv) {
  const opts = { enable: [], disable: [], quiet: false };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new UsageError(`${arg} needs a value`);
      return argv[++i];
    };
    switch (arg) {
      case "-o":
      case "--out":
        opts.out = value();
        break;
      case "--wit":
        opts.wit = value();
        break;
      case "--export":
        opts.exportName = value();
        break;
      case "--enable":
        opts.enable.push(value());
        break;
      case "--disable":
        opts.disable.push(value());
        break;
      case "--keep-js":
        opts.keepJs = value();
        break;
      case "-q":
      case "--quiet":
        opts.quiet = true;
        break;
      case "-h":
      case "--help":
        opts.help = true;
        break;
      default:
        if (arg.startsWith("-")) throw new UsageError(`unknown option ${arg}`);
        rest.push(arg);
    }
  }
  if (opts.help) return opts;
  if (rest.length !== 1) throw new UsageError("expected one entry module");
  opts.entry = rest[0];
  for (const f of [...opts.enable, ...opts.disable]) {
    if (!FEATURES.includes(f)) throw new UsageError(`unknown feature ${f}; expected one of ${FEATURES.join(", ")}`);
  }
  return opts;
}

/** The WIT directory: given, or assembled from the Warden repository's wit/. */
async function witDir(opts, work) {
  const given = process.env.WARDEN_WIT_DIR || opts.wit;
  if (given) {
    const dir = resolve(given);
    for (const file of ["auth.wit", join("deps", "common", "common.wit")]) {
      if (!existsSync(join(dir, file))) {
        throw new Error(`the WIT directory ${dir} has no ${file} (expected auth.wit and deps/common/common.wit)`);
      }
    }
    return dir;
  }
  // In the Warden repository: guest-sdk/typescript -> ../../wit
  const repoWit = resolve(SDK, "..", "..", "wit");
  const auth = join(repoWit, "auth", "v0.2.0", "auth.wit");
  const common = join(repoWit, "common", "v0.1.0", "common.wit");
  if (!existsSync(auth) || !existsSync(common)) {
    throw new Error("no WIT: set WARDEN_WIT_DIR (or --wit) to a directory with auth.wit and deps/common/common.wit");
  }
  const dir = join(work, "wit");
  await mkdir(join(dir, "deps", "common"), { recursive: true });
  await copyFile(auth, join(dir, "auth.wit"));
  await copyFile(common, join(dir, "deps", "common", "common.wit"));
  return dir;
}

/** The names the entry module exports (esbuild's metafile). */
async function entryExports(esbuild, entry, plugins) {
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: CONDITIONS,
    target: "es2022",
    metafile: true,
    logLevel: "silent",
    plugins,
  });
  const [output] = Object.values(result.metafile.outputs);
  return output.exports;
}

function esbuildMessage(error) {
  if (Array.isArray(error?.errors) && error.errors.length) {
    return error.errors
      .map((e) => {
        const where = e.location ? `${e.location.file}:${e.location.line}:${e.location.column}: ` : "";
        return `${where}${e.text}`;
      })
      .join("\n");
  }
  return error?.message ?? String(error);
}

/** esbuild plugin: the SDK's modules, as the component needs them. */
function sdkPlugin() {
  const src = (file) => join(SDK, "src", file);
  return {
    name: "warden-auth-sdk",
    setup(build) {
      // LangGraph.js policies build unchanged: its Auth is this one.
      build.onResolve({ filter: /^(@warden\/auth|@langchain\/langgraph-sdk\/auth)$/ }, () => ({ path: src("index.js") }));
      build.onResolve({ filter: /^@warden\/auth\/host$/ }, () => ({ path: src("host.component.js") }));
      build.onResolve({ filter: /^@warden\/auth\/glue$/ }, () => ({ path: src("glue.js") }));
      build.onResolve({ filter: /^warden:/ }, (args) => ({ path: args.path, external: true }));
      build.onResolve({ filter: /^node:/ }, (args) => ({
        errors: [{ text: `${args.path}: Node.js modules do not exist in a plugin (StarlingMonkey has web APIs: fetch Request/Headers, URL, TextEncoder, crypto.subtle)` }],
      }));
    },
  };
}

const importTools = () => Promise.all([import("esbuild"), import("@bytecodealliance/componentize-js")]);

/**
 * esbuild and componentize-js. When the SDK is a linked directory (a
 * `file:` dependency) npm does not install its dependencies: they are
 * installed here, once, from the SDK's lockfile.
 */
async function buildTools() {
  try {
    return await importTools();
  } catch (error) {
    if (error?.code !== "ERR_MODULE_NOT_FOUND") throw error;
  }
  console.error(`warden-auth-build: installing the build tools (esbuild, componentize-js) in ${SDK}`);
  const npm = process.env.npm_execpath
    ? [process.execPath, [process.env.npm_execpath]]
    : [process.platform === "win32" ? "npm.cmd" : "npm", []];
  const args = [...npm[1], "install", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"];
  const run = spawnSync(npm[0], args, { cwd: SDK, stdio: ["ignore", 2, 2] });
  if (run.status !== 0) {
    throw new Error(`\`npm install\` in ${SDK} failed (${run.error?.message ?? `exit ${run.status}`}); run it there by hand`);
  }
  try {
    return await importTools();
  } catch (error) {
    throw new Error(`the build tools are still missing after \`npm install\` in ${SDK}: ${error?.message ?? error}`);
  }
}

async function build(opts) {
  const started = Date.now();
  const entry = resolve(opts.entry);
  if (!existsSync(entry) || !statSync(entry).isFile()) throw new Error(`no entry module ${entry}`);
  // Warden's build contract wins over the script's own options.
  const out = resolve(process.env.WARDEN_COMPONENT_OUT || opts.out || join("dist", "auth.wasm"));
  const disabled = [...new Set([...DEFAULT_DISABLED.filter((f) => !opts.enable.includes(f)), ...opts.disable])];

  const [esbuild, { componentize, version }] = await buildTools();

  const work = await mkdtemp(join(tmpdir(), "warden-auth-build-"));
  try {
    const wit = await witDir(opts, work);
    const plugins = [sdkPlugin()];

    let exports;
    try {
      exports = await entryExports(esbuild, entry, plugins);
    } catch (error) {
      throw new Error(`esbuild could not bundle ${opts.entry}:\n${esbuildMessage(error)}`);
    }
    const exportName = opts.exportName ?? (exports.includes("auth") ? "auth" : exports.includes("default") ? "default" : undefined);
    if (!exportName || !exports.includes(exportName)) {
      throw new Error(
        `${opts.entry} does not export ${opts.exportName ? `\`${opts.exportName}\`` : "`auth`"} ` +
          `(its exports: ${exports.length ? exports.join(", ") : "none"}); ` +
          "write: export const auth = new Auth().authenticate(...)",
      );
    }

    // The component's entry: the glue around the user's Auth.
    const glueEntry = join(work, "entry.js");
    const where = display(entry);
    await writeFile(
      glueEntry,
      `import { ${exportName === "default" ? "default as auth" : `${exportName} as auth`} } from ${JSON.stringify(entry)};\n` +
        `import { createHandlers } from "@warden/auth/glue";\n` +
        `export const handlers = createHandlers(auth, ${JSON.stringify(where)});\n`,
    );
    const bundle = join(work, "plugin.js");
    try {
      await esbuild.build({
        entryPoints: [glueEntry],
        outfile: bundle,
        bundle: true,
        format: "esm",
        platform: "neutral",
        mainFields: ["module", "main"],
        conditions: CONDITIONS,
        target: "es2022",
        legalComments: "none",
        logLevel: "silent",
        plugins,
      });
    } catch (error) {
      throw new Error(`esbuild could not bundle ${opts.entry}:\n${esbuildMessage(error)}`);
    }
    if (opts.keepJs) await copyFile(bundle, resolve(opts.keepJs));

    let component;
    try {
      ({ component } = await componentize({
        sourcePath: bundle,
        witPath: wit,
        worldName: WORLD,
        disableFeatures: disabled,
      }));
    } catch (error) {
      throw new Error(`componentize-js ${version} failed:\n${error?.message ?? error}`);
    }

    await mkdir(dirname(out), { recursive: true });
    const partial = `${out}.${process.pid}.partial`;
    await writeFile(partial, component);
    await rename(partial, out); // a watcher never sees half a component
    if (!opts.quiet) {
      const mib = (component.length / (1 << 20)).toFixed(1);
      console.error(
        `warden-auth-build: ${display(out)} (${mib} MiB, componentize-js ${version}, ` +
          `without ${disabled.join(", ") || "nothing"}) in ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`warden-auth-build: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    throw error;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    await build(opts);
    return 0;
  } catch (error) {
    console.error(`warden-auth-build: error: ${error?.message ?? error}`);
    return 1;
  }
}

process.exitCode = await main();
