/**
 * "Who is calling": the one decision every REST route and the WebSocket
 * handshake go through. Today everyone is admitted into the default project;
 * API keys, scopes and per-project isolation plug in here (and only here),
 * so no route has to change when they do.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface Caller {
  /** The project every workflow, run and event of this request belongs to. */
  project: string;
}

export interface CallerPolicy {
  defaultProject: string;
}

/** Resolves the caller from request headers, or throws a MuseError (401/403 once keys exist). */
export function resolveCaller(_headers: IncomingHttpHeaders, policy: CallerPolicy): Caller {
  return { project: policy.defaultProject };
}

/** Where the guard leaves the caller on the raw request, for the `@CurrentCaller()` decorator. */
export const CALLER_KEY = Symbol('muse.caller');
