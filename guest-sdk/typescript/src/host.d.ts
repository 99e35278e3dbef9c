// @warden/auth/host: what the host grants a plugin besides its handlers.

/** False in the component, true in Node (native tests). */
export declare const native: boolean;
/** `config.<key>` of the plugin's section of the configuration (`auth.config`). */
export declare function config(key: string): string | undefined;
/** The secret `secrets.<name>` (`auth.secrets`); never logged. */
export declare function secret(name: string): string | undefined;
/** A structured record in the host's log, tagged with the plugin. */
export declare function log(
  level: "trace" | "debug" | "info" | "warn" | "error",
  message: string,
  fields?: Record<string, unknown>,
): void;
/** Values kept between calls (per plugin). */
export declare const cache: {
  get(key: string): Uint8Array | undefined;
  /** False when the value is too large to keep. */
  set(key: string, value: Uint8Array | string, ttlSeconds: number): boolean;
  delete(key: string): void;
};
/** Native tests only: the configuration and secrets `config`/`secret` read. */
export declare function setHostConfig(settings?: { config?: Record<string, string>; secrets?: Record<string, string> }): void;
/** Native tests only: the log records written so far (and clears them). */
export declare function takeLogs(): { level: string; message: string; fields: Record<string, unknown> }[];
/** Native tests only: empties the cache. */
export declare function clearCache(): void;
