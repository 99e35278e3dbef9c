/**
 * The reference policy (`shared/reference/src/security/auth.py`) as a
 * LangGraph.js auth module, built into a Warden plugin by
 * `warden-auth-build`.
 *
 * | token          | identity | permissions                                  |
 * |----------------|----------|----------------------------------------------|
 * | `user1-token`  | user1    | threads:create + read/write                  |
 * | `user2-token`  | user2    | threads:create + read/write                  |
 * | `admin-token`  | admin    | everything + assistants:write, admin         |
 * | `reader-token` | reader   | threads:read, store:read, store:write        |
 *
 * Anything else is 401. Authorization: the global handler stamps
 * `metadata.owner` on create / create_run / update and filters every event
 * to the caller's resources; `threads:create` also needs `threads:create`;
 * assistants are writable by admins only and readable by everyone; store
 * namespaces must start with the caller's identity.
 *
 * Written against `@warden/auth`; importing `Auth` and `HTTPException` from
 * `@langchain/langgraph-sdk/auth` instead builds the same plugin.
 */
import { Auth, HTTPException } from "@warden/auth";

const BASE = ["threads:read", "threads:write", "runs:create", "store:read", "store:write"];

interface ReferenceUser {
  identity: string;
  display_name: string;
  permissions: string[];
  is_authenticated: boolean;
}

const USERS: Record<string, Omit<ReferenceUser, "is_authenticated">> = {
  "user1-token": { identity: "user1", display_name: "Alice", permissions: ["threads:create", ...BASE] },
  "user2-token": { identity: "user2", display_name: "Bob", permissions: ["threads:create", ...BASE] },
  "admin-token": {
    identity: "admin",
    display_name: "Admin",
    permissions: ["threads:create", ...BASE, "assistants:write", "admin"],
  },
  "reader-token": { identity: "reader", display_name: "Reader", permissions: ["threads:read", "store:read", "store:write"] },
};

const unauthorized = (message: string) => new HTTPException(401, { message });

/** `value.metadata.owner = identity`, the metadata object created when missing. */
function stampOwner(identity: string, value: unknown): void {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const object = value as { metadata?: unknown };
    const metadata = object.metadata;
    if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) {
      object.metadata = { owner: identity };
    } else {
      (metadata as Record<string, unknown>).owner = identity;
    }
  }
}

export const auth = new Auth()
  // Warden extension: the host sends `authenticate` this header only.
  .readsHeaders(["authorization"])
  .authenticate(async (request: Request): Promise<ReferenceUser> => {
    const authorization = request.headers.get("authorization");
    if (!authorization) throw unauthorized("Missing Authorization header");
    const trimmed = authorization.trim();
    const space = trimmed.indexOf(" ");
    const scheme = space < 0 ? trimmed : trimmed.slice(0, space);
    const token = space < 0 ? "" : trimmed.slice(space + 1).trim();
    if (scheme.toLowerCase() !== "bearer" || !token) {
      throw unauthorized("Invalid Authorization scheme; expected Bearer");
    }
    const user = USERS[token];
    if (!user) throw unauthorized("Invalid token");
    return { ...user, permissions: [...user.permissions], is_authenticated: true };
  })
  // Every event no more specific handler covers: own what you create, see
  // only what you own.
  .on("*", async ({ action, value, user }) => {
    if (action === "create" || action === "create_run" || action === "update") {
      stampOwner(user.identity, value);
    }
    return { owner: user.identity };
  })
  .on("threads:create", async ({ value, user, permissions }) => {
    if (!permissions.includes("threads:create")) {
      throw new HTTPException(403, { message: "Missing permission: threads:create" });
    }
    stampOwner(user.identity, value);
    return { owner: user.identity };
  })
  .on("assistants", async ({ action, value, user, permissions }) => {
    if (action === "create" || action === "update" || action === "delete") {
      if (!permissions.includes("admin")) {
        throw new HTTPException(403, { message: "Only admin may modify assistants" });
      }
      if (action === "create") stampOwner(user.identity, value);
    }
    // read / search: any authenticated user, unfiltered
    return undefined;
  })
  .on("store", async ({ value, user }) => {
    const namespace = value.namespace;
    if (!Array.isArray(namespace) || namespace.length === 0 || namespace[0] !== user.identity) {
      throw new HTTPException(403, { message: "Store namespace must start with the caller's identity" });
    }
    return undefined;
  });
