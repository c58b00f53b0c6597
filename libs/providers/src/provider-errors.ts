/**
 * Maps what the provider SDKs throw to the Muse error catalogue, so the
 * failover chain and the coordinator can tell a retryable failure (5xx,
 * timeout, connection refused, 429) from one no retry will fix (400, 401,
 * 403, 404, 422). Both official SDKs (`openai`, `@anthropic-ai/sdk`) throw
 * an `APIError` with `status` and `headers`, and connection errors without a
 * status; the mapping reads those fields rather than the classes so one
 * function serves both.
 */
import { MuseError } from '@muse/contracts';

/** Longest `Retry-After` taken from a provider, in ms: a longer one is clamped (a broken header must not park a step for hours). */
export const MAX_RETRY_AFTER_MS = 300_000;

interface SdkLikeError {
  status?: unknown;
  headers?: unknown;
  message?: unknown;
}

/** `Retry-After` (seconds or an HTTP date) or `retry-after-ms` as ms; undefined when absent or unreadable. */
export function retryAfterMs(headers: unknown, now = Date.now()): number | undefined {
  const get = (name: string): string | null | undefined => {
    if (headers && typeof (headers as Headers).get === 'function') return (headers as Headers).get(name);
    if (headers && typeof headers === 'object') {
      const v = (headers as Record<string, unknown>)[name];
      return typeof v === 'string' ? v : undefined;
    }
    return undefined;
  };
  const ms = get('retry-after-ms');
  if (ms && /^\d+(\.\d+)?$/.test(ms.trim())) return Math.min(MAX_RETRY_AFTER_MS, Math.ceil(Number(ms)));
  const ra = get('retry-after');
  if (!ra) return undefined;
  if (/^\d+(\.\d+)?$/.test(ra.trim())) return Math.min(MAX_RETRY_AFTER_MS, Math.ceil(Number(ra) * 1000));
  const at = Date.parse(ra);
  return Number.isNaN(at) ? undefined : Math.min(MAX_RETRY_AFTER_MS, Math.max(0, at - now));
}

/**
 * Any error of a provider call as a MuseError with `details.provider`.
 * `timedOut` says the call's own timeout fired (as opposed to the caller's
 * signal, which the caller handles).
 */
export function toProviderError(provider: string, err: unknown, timedOut = false): MuseError {
  if (err instanceof MuseError) return err;
  const e = (err ?? {}) as SdkLikeError;
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (timedOut) {
    return new MuseError('MUSE_ERR_PROVIDER_TIMEOUT', `provider "${provider}" timed out: ${message}`, { details: { provider }, cause: err });
  }
  const status = typeof e.status === 'number' ? e.status : undefined;
  if (status === 429) {
    const after = retryAfterMs(e.headers);
    return new MuseError('MUSE_ERR_PROVIDER_RATE_LIMITED', `provider "${provider}" is rate-limiting (429)${after !== undefined ? `; retry after ${after} ms` : ''}`, {
      details: { provider, status, ...(after !== undefined ? { retryAfterMs: after } : {}) },
      cause: err,
    });
  }
  // 408 (request timeout) and 409 (conflict, e.g. a lock) are worth a retry per both vendors' docs; other 4xx are not.
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 409) {
    return new MuseError('MUSE_ERR_PROVIDER_REJECTED', `provider "${provider}" rejected the request (${status}): ${message}`, { details: { provider, status }, cause: err });
  }
  // 5xx, 408, 409, connection errors and broken streams: another try (here or at the next provider) may work.
  return new MuseError('MUSE_ERR_STEP_PROVIDER', `provider "${provider}" failed${status !== undefined ? ` (${status})` : ''}: ${message}`, {
    details: { provider, ...(status !== undefined ? { status } : {}) },
    cause: err,
  });
}
