/** One provider call's abort signal: the caller's, or the call's own timeout, whichever fires first. */
import { toProviderError } from './provider-errors.js';

export interface CallSignal {
  signal: AbortSignal;
  timedOut(): boolean;
  dispose(): void;
}

export function callSignal(outer: AbortSignal | undefined, timeoutMs: number): CallSignal {
  const own = new AbortController();
  const timer = setTimeout(() => own.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  timer.unref();
  return {
    signal: outer ? AbortSignal.any([outer, own.signal]) : own.signal,
    timedOut: () => own.signal.aborted,
    dispose: () => clearTimeout(timer),
  };
}

/** The caller's abort passes through untouched (the caller decides what it means); everything else is mapped. */
export function toCallError(provider: string, err: unknown, outer: AbortSignal | undefined, call: CallSignal): unknown {
  if (outer?.aborted) return err;
  return toProviderError(provider, err, call.timedOut());
}
