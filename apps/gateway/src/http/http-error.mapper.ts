/**
 * Every error the gateway answers, whoever raised it (our code, Nest, or
 * Fastify while reading the body), becomes one Muse envelope here:
 * `{"error": {code, message, retryable, details}}` with a catalogue code.
 * The exception filter and Fastify's framework-error hook both call it.
 */
import { ERROR_CATALOGUE, MuseError, isMuseError, type ErrorEnvelope, type MuseErrorCode } from '@muse/contracts';

export interface HttpError {
  status: number;
  body: ErrorEnvelope;
  /** True for faults of ours (5xx other than "unavailable"): logged with the stack. */
  internal: boolean;
}

/** Fastify's own error codes that have a Muse equivalent. */
const FASTIFY_CODES: Record<string, MuseErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'MUSE_ERR_REQUEST_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'MUSE_ERR_REQUEST_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MUSE_ERR_REQUEST_MALFORMED_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MUSE_ERR_REQUEST_MALFORMED_JSON',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MUSE_ERR_REQUEST_INVALID',
  FST_ERR_BAD_URL: 'MUSE_ERR_REQUEST_INVALID',
  FST_ERR_ASYNC_CONSTRAINT: 'MUSE_ERR_REQUEST_INVALID',
};

/** Codes by HTTP status, for errors that carry only a status. */
const STATUS_CODES: Record<number, MuseErrorCode> = {
  404: 'MUSE_ERR_ROUTE_NOT_FOUND',
  413: 'MUSE_ERR_REQUEST_TOO_LARGE',
  415: 'MUSE_ERR_REQUEST_MEDIA_TYPE',
  503: 'MUSE_ERR_UNAVAILABLE',
};

export function toHttpError(err: unknown, requestId?: string): HttpError {
  if (isMuseError(err)) return fromMuse(err, requestId);

  // Nest wraps a 4xx FastifyError in an HttpException with the original as
  // `cause` (FastifyAdapter.mapException); a 5xx one arrives as it is.
  const cause = (err as { cause?: unknown } | null)?.cause;
  const fastifyCode = codeOf(cause) ?? codeOf(err);
  if (fastifyCode !== undefined && FASTIFY_CODES[fastifyCode]) {
    const code = FASTIFY_CODES[fastifyCode];
    const message = code === 'MUSE_ERR_REQUEST_TOO_LARGE' ? ERROR_CATALOGUE[code].message : messageOf(cause) ?? messageOf(err) ?? ERROR_CATALOGUE[code].message;
    return fromMuse(new MuseError(code, message, { details: { cause: fastifyCode } }), requestId);
  }

  if (isDependencyDown(err)) {
    return fromMuse(new MuseError('MUSE_ERR_UNAVAILABLE', 'A dependency (NATS or Redis) is unavailable; retry', { cause: err }), requestId);
  }

  const status = statusOf(err);
  if (status !== undefined && status >= 400 && status < 500) {
    const code = STATUS_CODES[status] ?? 'MUSE_ERR_REQUEST_INVALID';
    const message = code === 'MUSE_ERR_ROUTE_NOT_FOUND' ? notFoundMessage(messageOf(err)) : (messageOf(err) ?? ERROR_CATALOGUE[code].message);
    // The catalogue fixes a status per code, but a status-only error (e.g. 405,
    // 408) keeps the status it was raised with.
    const { body } = fromMuse(new MuseError(code, message), requestId);
    return { status, body, internal: false };
  }
  if (status === 503) {
    // e.g. /health/ready, whose checks say what is down
    const response = (err as { getResponse?: () => unknown }).getResponse?.();
    return fromMuse(new MuseError('MUSE_ERR_UNAVAILABLE', 'The service is not ready', { details: response }), requestId);
  }
  const internal = new MuseError('MUSE_ERR_INTERNAL', ERROR_CATALOGUE.MUSE_ERR_INTERNAL.message, {
    details: requestId !== undefined ? { requestId } : undefined,
  });
  return { status: 500, body: { error: internal.toWire() }, internal: true };
}

function fromMuse(err: MuseError, requestId: string | undefined): HttpError {
  const internal = err.status >= 500 && err.code !== 'MUSE_ERR_UNAVAILABLE';
  const body = err.toWire();
  // Never send internal messages out (they may name hosts, keys, paths); the
  // request id ties the answer to the log line that has them.
  if (internal) {
    body.message = ERROR_CATALOGUE[err.code].message;
    body.details = requestId !== undefined ? { requestId } : undefined;
    if (body.details === undefined) delete body.details;
  }
  return { status: err.status, body: { error: body }, internal };
}

/**
 * Errors of the Redis and NATS clients that mean "down or unreachable", by
 * name, since neither client exports classes the gateway could import
 * without reaching into their internals. They are worth a retry: 503.
 */
const DEPENDENCY_DOWN_ERRORS = new Set([
  'MaxRetriesPerRequestError', // ioredis: Redis unreachable for the request's retries
  'ClosedConnectionError', // nats.js
  'ConnectionError',
  'DrainingConnectionError',
  'TimeoutError',
  'NoResponders',
]);
const DEPENDENCY_DOWN_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH']);

function isDependencyDown(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (DEPENDENCY_DOWN_ERRORS.has(err.name)) return true;
  const code = codeOf(err);
  return (code !== undefined && DEPENDENCY_DOWN_CODES.has(code)) || err.message === 'Connection is closed.';
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function messageOf(err: unknown): string | undefined {
  return err instanceof Error && err.message !== '' ? err.message : undefined;
}

function statusOf(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { getStatus?: () => unknown; statusCode?: unknown; status?: unknown };
  const s = typeof e.getStatus === 'function' ? e.getStatus() : (e.statusCode ?? e.status);
  return typeof s === 'number' && Number.isInteger(s) ? s : undefined;
}

/** Nest's not-found handler says `Cannot GET /x`; ours names the route. */
function notFoundMessage(message: string | undefined): string {
  const m = message?.match(/^Cannot (\S+) (.*)$/);
  return m ? `No route ${m[1]} ${m[2]}` : ERROR_CATALOGUE.MUSE_ERR_ROUTE_NOT_FOUND.message;
}
