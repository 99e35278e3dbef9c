import type { Auth, BaseAuthReturn } from "./index.js";

export { setHostConfig, takeLogs, clearCache } from "./host.js";

/** A request as the tests describe it. */
export interface TestRequest {
  method?: string;
  path?: string;
  /** Query parameters: an object (a list value repeats the key) or pairs. */
  query?: Record<string, string | string[]> | [string, string][];
  /** Headers: an object (a list value repeats the name), pairs, or `Headers`. */
  headers?: Record<string, string | string[]> | [string, string][] | Headers;
}

/** The user as handlers see it. */
export type TestUser = {
  identity: string;
  display_name: string;
  is_authenticated: boolean;
  permissions: string[];
  [field: string]: unknown;
};

export type TestChange =
  | { kind: "none" }
  | { kind: "stamps"; stamps: Record<string, unknown> }
  | { kind: "value"; value: unknown };

export interface TestVerdict {
  decision: "allow" | "deny" | "filter";
  /** The filter in LangGraph's syntax, when `decision` is `"filter"`. */
  filter?: Record<string, unknown>;
  change: TestChange;
  /** The event's value once the host applied the change. */
  value: any;
  /** The verdict as it crosses the WIT boundary. */
  verdict: unknown;
}

/** Imports a policy module (TypeScript too), bundled as the build bundles it. */
export declare function loadPolicy(path: string, options?: { cwd?: string }): Promise<Record<string, any>>;
/** Runs `authenticate`; an `HTTPException` propagates. */
export declare function authenticate(auth: Auth<any, any, any>, request?: TestRequest): Promise<TestUser>;
/** Runs the handler covering `event` (e.g. `"threads:create"`); `value` is not modified. */
export declare function authorize(
  auth: Auth<any, any, any>,
  user: BaseAuthReturn | TestUser,
  event: string,
  value?: unknown,
): Promise<TestVerdict>;
/** What the component registers (WIT shapes). */
export declare function registration(auth: Auth<any, any, any>): { handlers: unknown[]; headers: string[] | undefined };
/** The WIT request the host would send for this test request. */
export declare function hostRequest(auth: Auth<any, any, any>, request?: TestRequest): unknown;
