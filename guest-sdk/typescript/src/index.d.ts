// Types of @warden/auth: those of `@langchain/langgraph-sdk/auth` (1.x),
// so a LangGraph.js policy type-checks unchanged, plus `readsHeaders`.

type Maybe<T> = T | null | undefined;
type PromiseMaybe<T> = Promise<T> | T;

interface AssistantConfig {
  tags?: Maybe<string[]>;
  recursion_limit?: Maybe<number>;
  configurable?: Maybe<{
    thread_id?: Maybe<string>;
    thread_ts?: Maybe<string>;
    [key: string]: unknown;
  }>;
}

interface AssistantCreate {
  assistant_id?: Maybe<string>;
  metadata?: Maybe<Record<string, unknown>>;
  config?: Maybe<AssistantConfig>;
  context?: Maybe<unknown>;
  if_exists?: Maybe<"raise" | "do_nothing">;
  name?: Maybe<string>;
  description?: Maybe<string>;
  graph_id: string;
}
interface AssistantRead {
  assistant_id: string;
  metadata?: Maybe<Record<string, unknown>>;
}
interface AssistantUpdate {
  assistant_id: string;
  metadata?: Maybe<Record<string, unknown>>;
  config?: Maybe<AssistantConfig>;
  context?: Maybe<unknown>;
  graph_id?: Maybe<string>;
  name?: Maybe<string>;
  description?: Maybe<string>;
  version?: Maybe<number>;
}
interface AssistantDelete {
  assistant_id: string;
}
interface AssistantSearch {
  graph_id?: Maybe<string>;
  metadata?: Maybe<Record<string, unknown>>;
  limit?: Maybe<number>;
  offset?: Maybe<number>;
}
interface ThreadCreate {
  thread_id?: Maybe<string>;
  metadata?: Maybe<Record<string, unknown>>;
  if_exists?: Maybe<"raise" | "do_nothing">;
}
interface ThreadRead {
  thread_id?: Maybe<string>;
}
interface ThreadUpdate {
  thread_id?: Maybe<string>;
  metadata?: Maybe<Record<string, unknown>>;
  action?: Maybe<"interrupt" | "rollback">;
}
interface ThreadDelete {
  thread_id?: Maybe<string>;
  run_id?: Maybe<string>;
}
interface ThreadSearch {
  thread_id?: Maybe<string>;
  ids?: Maybe<string[]>;
  status?: Maybe<"idle" | "busy" | "interrupted" | "error" | (string & {})>;
  metadata?: Maybe<Record<string, unknown>>;
  values?: Maybe<Record<string, unknown>>;
  limit?: Maybe<number>;
  offset?: Maybe<number>;
}
interface CronCreate {
  payload?: Maybe<Record<string, unknown>>;
  schedule: string;
  cron_id?: Maybe<string>;
  thread_id?: Maybe<string>;
  user_id?: Maybe<string>;
  end_time?: Maybe<string>;
  metadata?: Maybe<Record<string, unknown>>;
}
interface CronRead {
  cron_id: string;
}
interface CronUpdate {
  cron_id: string;
  payload?: Maybe<Record<string, unknown>>;
  schedule?: Maybe<string>;
  metadata?: Maybe<Record<string, unknown>>;
}
interface CronDelete {
  cron_id: string;
}
interface CronSearch {
  assistant_id?: Maybe<string>;
  thread_id?: Maybe<string>;
  limit?: Maybe<number>;
  offset?: Maybe<number>;
  metadata?: Maybe<Record<string, unknown>>;
}
interface StorePut {
  namespace: string[];
  key: string;
  value: Record<string, unknown>;
}
interface StoreGet {
  namespace: Maybe<string[]>;
  key: string;
}
interface StoreSearch {
  namespace?: Maybe<string[]>;
  filter?: Maybe<Record<string, unknown>>;
  limit?: Maybe<number>;
  offset?: Maybe<number>;
  query?: Maybe<string>;
}
interface StoreListNamespaces {
  namespace?: Maybe<string[]>;
  suffix?: Maybe<string[]>;
  max_depth?: Maybe<number>;
  limit?: Maybe<number>;
  offset?: Maybe<number>;
}
interface StoreDelete {
  namespace?: Maybe<string[]>;
  key: string;
}
interface RunsCreate {
  thread_id?: Maybe<string>;
  assistant_id: string;
  run_id: string;
  status: Maybe<"pending" | "running" | "error" | "success" | "timeout" | "interrupted">;
  metadata?: Maybe<Record<string, unknown>>;
  prevent_insert_if_inflight?: Maybe<boolean>;
  multitask_strategy?: Maybe<"interrupt" | "rollback" | "reject" | "enqueue">;
  if_not_exists?: Maybe<"reject" | "create">;
  after_seconds?: Maybe<number>;
  kwargs: Record<string, unknown>;
}

/** The value each event's handler receives. */
export interface AuthEventValueMap {
  ["threads:create"]: ThreadCreate;
  ["threads:read"]: ThreadRead;
  ["threads:update"]: ThreadUpdate;
  ["threads:delete"]: ThreadDelete;
  ["threads:search"]: ThreadSearch;
  ["threads:create_run"]: RunsCreate;
  ["assistants:create"]: AssistantCreate;
  ["assistants:read"]: AssistantRead;
  ["assistants:update"]: AssistantUpdate;
  ["assistants:delete"]: AssistantDelete;
  ["assistants:search"]: AssistantSearch;
  ["crons:create"]: CronCreate;
  ["crons:read"]: CronRead;
  ["crons:update"]: CronUpdate;
  ["crons:delete"]: CronDelete;
  ["crons:search"]: CronSearch;
  ["store:put"]: StorePut;
  ["store:get"]: StoreGet;
  ["store:search"]: StoreSearch;
  ["store:list_namespaces"]: StoreListNamespaces;
  ["store:delete"]: StoreDelete;
}
type EventValueMap = AuthEventValueMap;

interface ResourceType {
  threads: "threads:create" | "threads:read" | "threads:update" | "threads:delete" | "threads:search" | "threads:create_run";
  assistants: "assistants:create" | "assistants:read" | "assistants:update" | "assistants:delete" | "assistants:search";
  crons: "crons:create" | "crons:read" | "crons:update" | "crons:delete" | "crons:search";
  store: "store:put" | "store:get" | "store:search" | "store:list_namespaces" | "store:delete";
}
interface ActionType {
  "*:create": "threads:create" | "assistants:create" | "crons:create";
  "*:read": "threads:read" | "assistants:read" | "crons:read";
  "*:update": "threads:update" | "assistants:update" | "crons:update";
  "*:delete": "threads:delete" | "assistants:delete" | "crons:delete" | "store:delete";
  "*:search": "threads:search" | "assistants:search" | "crons:search" | "store:search";
  "*:create_run": "threads:create_run";
  "*:put": "store:put";
  "*:get": "store:get";
  "*:list_namespaces": "store:list_namespaces";
}

/** What `authenticate` returns: an identity, or a user object. */
export type BaseAuthReturn =
  | {
      is_authenticated?: boolean;
      display_name?: string;
      identity: string;
      permissions: string[];
    }
  | string;

/** The user handlers see. */
export interface BaseUser {
  is_authenticated: boolean;
  display_name: string;
  identity: string;
  permissions: string[];
}

type ToUserLike<T extends BaseAuthReturn> = T extends string
  ? BaseUser
  : Omit<T, "is_authenticated" | "display_name"> & { is_authenticated: boolean; display_name: string };

type CallbackParameter<
  Event extends string = string,
  Resource extends string = string,
  Action extends string = string,
  Value = unknown,
  TUser extends BaseUser = BaseUser,
> = {
  event: Event;
  resource: Resource;
  action: Action;
  /** The event's value: mutate it in place (e.g. stamp `value.metadata.owner`). */
  value: Value;
  user: TUser;
  permissions: string[];
};

type ContextMap = {
  [E in keyof EventValueMap]: CallbackParameter<
    E,
    E extends `${infer R}:${string}` ? R : never,
    E extends `${string}:${infer A}` ? A : never,
    EventValueMap[E],
    BaseUser
  >;
};
type ActionCallbackParameter<T extends keyof ActionType, TUser extends BaseUser = BaseUser> = ContextMap[ActionType[T]] & { user: TUser };
type AuthCallbackParameter<T extends keyof EventValueMap, TUser extends BaseUser = BaseUser> = ContextMap[T] & { user: TUser };
type ResourceCallbackParameter<T extends keyof ResourceType, TUser extends BaseUser = BaseUser> = ContextMap[ResourceType[T]] & { user: TUser };

/**
 * A filter on the resources' metadata: `{key: value}`, `{key: {$eq:
 * value}}`, `{key: {$contains: value}}`; several keys must all hold.
 * Warden also takes `$or` / `$and` (lists of two or more filters).
 */
export type AuthFilters<TKey extends string | number | symbol> = {
  [key in TKey]: string | { [op in "$contains" | "$eq"]?: string };
};
type Filters<TKey extends string | number | symbol> = AuthFilters<TKey>;

export interface AuthenticateCallback<T extends BaseAuthReturn> {
  (request: Request): PromiseMaybe<T>;
}

type OnKey = keyof ResourceType | keyof ActionType | keyof EventValueMap;
type OnSingleParameter<T extends OnKey, TUser extends BaseUser = BaseUser> = T extends keyof ResourceType
  ? ResourceCallbackParameter<T, TUser>
  : T extends keyof ActionType
    ? ActionCallbackParameter<T, TUser>
    : T extends keyof EventValueMap
      ? AuthCallbackParameter<T, TUser>
      : never;
type OnParameter<T extends "*" | OnKey | OnKey[], TUser extends BaseUser = BaseUser> = T extends OnKey[]
  ? OnSingleParameter<T[number], TUser>
  : T extends "*"
    ? AuthCallbackParameter<keyof EventValueMap, TUser>
    : T extends OnKey
      ? OnSingleParameter<T, TUser>
      : never;

/** The keys `on` takes: `"*"`, a resource, `"*:<action>"`, `"<resource>:<action>"`, or a list. */
export type CallbackEvent = "*" | OnKey | OnKey[];

/**
 * A handler's result: `undefined`/`null`/`true` allow, `false` is a 403,
 * a filter object scopes the event to matching resources. Throw an
 * `HTTPException` for another answer.
 */
export type OnCallback<
  T extends CallbackEvent,
  TUser extends BaseUser = BaseUser,
  TMetadata extends Record<string, unknown> = Record<string, unknown>,
> = {
  (
    request: OnParameter<T, TUser>,
  ): PromiseMaybe<void | null | undefined | boolean | Filters<keyof TMetadata> | Record<string, unknown>>;
};

/** The policy: LangGraph.js's `Auth`. */
export declare class Auth<
  TExtra = {},
  TAuthReturn extends BaseAuthReturn = BaseAuthReturn,
  TUser extends BaseUser = ToUserLike<TAuthReturn>,
> {
  /** @internal */
  "~handlerCache": {
    authenticate?: AuthenticateCallback<BaseAuthReturn>;
    callbacks?: Record<string, (request: CallbackParameter) => unknown>;
  };
  /** @internal */
  "~warden": { headers?: string[] };
  /** Registers the callback that authenticates every request. */
  authenticate<T extends BaseAuthReturn>(cb: AuthenticateCallback<T>): Auth<TExtra, T>;
  /** Registers a handler for an event, a resource, an action, every event (`"*"`), or a list. */
  on<T extends CallbackEvent>(event: T, callback: OnCallback<T, TUser>): this;
  /**
   * Warden extension: the headers `authenticate` reads. Warden sends only
   * those (every header when this is not called).
   */
  readsHeaders(names: Iterable<string>): this;
}

/** An error answered as the HTTP response `status` `{"detail": message}` with `headers`. */
export declare class HTTPException extends Error {
  status: number;
  headers: HeadersInit;
  constructor(status: number, options?: { message?: string; headers?: HeadersInit; cause?: unknown });
}

/** Whether the user is LangGraph Studio's. */
export declare function isStudioUser(user: BaseUser): boolean;

/** Each resource's actions. */
export declare const RESOURCE_ACTIONS: {
  readonly threads: readonly ["create", "read", "update", "delete", "search", "create_run"];
  readonly assistants: readonly ["create", "read", "update", "delete", "search"];
  readonly crons: readonly ["create", "read", "update", "delete", "search"];
  readonly store: readonly ["put", "get", "search", "delete", "list_namespaces"];
};
