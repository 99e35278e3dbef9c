// A policy for the component tests: every shape a handler may take.
import { Auth, HTTPException } from "@langchain/langgraph-sdk/auth";
import { config, log } from "@warden/auth/host";

console.log("fixture: module evaluated at build time");

export const auth = new Auth()
  .authenticate(async (request: Request) => {
    const url = new URL(request.url);
    const token = request.headers.get("authorization");
    if (url.pathname === "/boom") throw new Error("authenticate exploded");
    if (url.pathname === "/invalid") return { nope: true } as any;
    if (url.pathname === "/string") return "just-a-name";
    if (!token) throw new HTTPException(401, { headers: { "www-authenticate": 'Bearer realm="x"' } });
    await new Promise((resolve) => setTimeout(resolve, 0));
    return {
      identity: token,
      display_name: "Display",
      permissions: ["p1"],
      org: "acme",
      request: {
        method: request.method,
        url: request.url,
        cookie: request.headers.get("cookie"),
        xs: request.headers.get("x-multi"),
        issuer: config("issuer") ?? null,
        now: Date.now(),
      },
    };
  })
  .on("*", ({ value, user }) => {
    (value as any).metadata ??= {};
    (value as any).metadata.owner = user.identity;
    return { owner: user.identity };
  })
  .on("threads:read", async ({ user, permissions }) => {
    await Promise.resolve();
    return { $or: [{ owner: user.identity }, { org: (user as any).org, tags: { $contains: permissions[0] } }] };
  })
  .on("threads:delete", () => false)
  .on("threads:search", () => {
    console.warn("searching", { n: 1 });
    log("info", "host log", { k: "v" });
    return {};
  })
  .on("*:update", () => {
    throw new HTTPException(418, { message: "teapot", headers: [["x-a", "1"]] });
  })
  .on("store", ({ value, user }) => {
    (value as any).namespace = [user.identity, ...((value as any).namespace ?? [])];
  })
  .on("crons", () => {
    throw new TypeError("handler bug");
  })
  .on("assistants:search", () => 42 as any)
  .on("assistants:delete", () => new Promise<boolean>(() => {}))
  .on("assistants:read", () => ({ owner: { $ne: "x" } }) as any);
