// The component's exports (`warden:auth/handlers@0.2.0`) around an `Auth`.
// `warden-auth-build` bundles an entry that imports the user's module and
// exports `handlers = createHandlers(auth, name)`; componentize-js then
// binds it to the WIT world `auth-plugin`. The module's top level (and so
// `createHandlers`) runs once, at build time (Wizer snapshot): every
// instance starts from the checked `Auth`.

import { log } from "warden:common/log@0.1.0";
import * as core from "./core.js";

/** Whether an export has been called (the snapshot was taken before). */
let live = false;

/**
 * `console.*` into the host's log (`warden:common/log`) once the component
 * runs; at build time they print to the build's output as usual.
 */
function forwardConsole() {
  const original = globalThis.console ?? {};
  const forwarded = { ...original };
  const levels = { trace: "trace", debug: "debug", log: "info", info: "info", warn: "warn", error: "error" };
  for (const [method, level] of Object.entries(levels)) {
    const before = typeof original[method] === "function" ? original[method].bind(original) : () => {};
    forwarded[method] = (...args) => {
      if (!live) return before(...args);
      try {
        log(level, args.map(show).join(" "), []);
      } catch {
        // Logging never fails a call.
      }
    };
  }
  globalThis.console = forwarded;
}

function show(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack ? `${value}\n${value.stack}` : String(value);
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text;
  } catch {
    return String(value);
  }
}

/**
 * Turns what a callback threw into the call's answer: an HTTPException is
 * the `http-error` result; anything else is logged and traps the call (a
 * fault: the request fails closed, it is never allowed).
 */
function failure(error, what, fields) {
  const http = core.toHttpError(error);
  if (http) return { tag: "err", val: http };
  const message = error instanceof Error ? `${error.name}: ${error.message}` : `threw ${show(error)}`;
  try {
    const more = error instanceof Error && error.stack ? [["stack", String(error.stack)]] : [];
    log("error", `${what} failed: ${message}`, [...fields, ["error", message], ...more]);
  } catch {
    // Trap anyway.
  }
  // Trap. The bindings (another realm, where `instanceof Error` is false)
  // would take any thrown object for the `http-error` payload; `null`
  // cannot be lowered as a record, so the call aborts: a fault.
  throw null;
}

/** The `handlers` interface object for componentize-js. */
export function createHandlers(auth, where) {
  core.checkAuth(auth, where);
  forwardConsole();

  class Session {
    #user;

    /** From the host (`constructor(user)`), or from `authenticate` with the view already built. */
    constructor(user, view) {
      live = true;
      this.#user = view ?? core.userView(user);
    }

    async authorize(event, value) {
      live = true;
      try {
        return await core.authorize(auth, this.#user, event, value);
      } catch (error) {
        const { event: name } = core.eventNames(event);
        return failure(error, `the ${name} handler`, [["event", name]]);
      }
    }
  }

  return {
    Session,

    register() {
      live = true;
      return core.registration(auth);
    },

    async authenticate(request) {
      live = true;
      let user;
      try {
        user = await core.authenticate(auth, request);
      } catch (error) {
        return failure(error, "authenticate", [["path", request.path]]);
      }
      return { tag: "ok", val: [user, new Session(user, core.userView(user))] };
    },
  };
}
