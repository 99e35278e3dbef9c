// @warden/auth: LangGraph.js's `Auth` (from `@langchain/langgraph-sdk/auth`)
// for Warden auth plugins. The object keeps its handlers where LangGraph's
// does (`auth["~handlerCache"]`), so the component glue runs an `Auth` from
// either package; it only adds `readsHeaders`, a Warden extension.

import { RESOURCE_ACTIONS, parseEventKey } from "./keys.js";

const HTTP_STATUS_MAPPING = {
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Request Entity Too Large",
  414: "Request-URI Too Long",
  415: "Unsupported Media Type",
  416: "Requested Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a Teapot",
  421: "Misdirected Request",
  422: "Unprocessable Entity",
  423: "Locked",
  424: "Failed Dependency",
  425: "Too Early",
  426: "Upgrade Required",
  428: "Precondition Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  451: "Unavailable For Legal Reasons",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
  506: "Variant Also Negotiates",
  507: "Insufficient Storage",
  508: "Loop Detected",
  510: "Not Extended",
  511: "Network Authentication Required",
};

/**
 * An error that becomes the HTTP response: `status`, `{"detail": message}`
 * and `headers`. Thrown from `authenticate` or an `on` handler.
 */
export class HTTPException extends Error {
  status;
  headers;
  constructor(status, options) {
    super(options?.message ?? HTTP_STATUS_MAPPING[status] ?? "Unknown error", {
      cause: options?.cause,
    });
    this.name = "HTTPException";
    this.status = status;
    this.headers = options?.headers ?? {};
  }
}

/**
 * The plugin's policy: one `authenticate` callback and `on` handlers, as in
 * LangGraph.js.
 */
export class Auth {
  /** @internal Where LangGraph.js keeps the handlers; read by the glue. */
  "~handlerCache" = {};
  /** @internal Warden's additions (the headers `authenticate` reads). */
  "~warden" = {};

  /** Registers the authenticate callback (one; a second call replaces it). */
  authenticate(cb) {
    if (typeof cb !== "function") {
      throw new TypeError("Auth.authenticate expects a function (request) => user");
    }
    this["~handlerCache"].authenticate = cb;
    return this;
  }

  /**
   * Registers a handler for events: `"*"` (every event), a resource
   * (`"threads"`), one action of every resource (`"*:create"`), one event
   * (`"threads:create"`), or a list of them. A key registered again
   * replaces the earlier handler, as in LangGraph.js.
   */
  on(event, callback) {
    if (typeof callback !== "function") {
      throw new TypeError(`Auth.on(${JSON.stringify(event)}, ...) expects a handler function`);
    }
    const events = Array.isArray(event) ? event : [event];
    if (events.length === 0) {
      throw new TypeError("Auth.on: the list of events is empty");
    }
    for (const key of events) parseEventKey(key); // throws on a key that never matches
    this["~handlerCache"].callbacks ??= {};
    for (const key of events) this["~handlerCache"].callbacks[key] = callback;
    return this;
  }

  /**
   * Warden extension: declares the headers `authenticate` reads (names
   * case-insensitive). Warden then sends only those, which makes every
   * request cheaper to authenticate; the native test helpers drop the
   * others too. Without it every header is sent.
   */
  readsHeaders(names) {
    const list = (this["~warden"].headers ??= []);
    for (const name of names) {
      const lower = String(name).toLowerCase();
      if (!list.includes(lower)) list.push(lower);
    }
    return this;
  }
}

/**
 * Whether the user is LangGraph Studio's (`x-auth-scheme: langsmith`
 * without `disable_studio_auth`).
 */
export function isStudioUser(user) {
  if (user && typeof user === "object" && "kind" in user && user.kind === "StudioUser") return true;
  return user?.identity === "langgraph-studio-user";
}

export { RESOURCE_ACTIONS };
