/**
 * The gateway's front door, as Fastify hooks on every route: authenticate
 * and choose the project before the body is even read (`onRequest`), count
 * the request against the rate limits, and write the audit record once the
 * answer is out (`onResponse`). The Nest guard then checks the route's scope.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditRecord } from '@muse/contracts';
import type { MuseMetrics } from '@muse/telemetry';
import { CALLER_KEY, PROJECT_HEADER, type Caller } from '../caller/caller.js';
import { toHttpError } from '../http/http-error.mapper.js';
import { auditOutcome, type AuditLog } from './audit-log.service.js';
import { Authenticator, bearerToken } from './authenticator.service.js';
import type { RateLimits } from './rate-limits.service.js';
import { isPublicPath } from './scope.decorator.js';

const ERROR_CODE = Symbol('muse.errorCode');
type Tagged = FastifyRequest & { [CALLER_KEY]?: Caller; [ERROR_CODE]?: string };

const headerValue = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export function registerAuthHooks(fastify: FastifyInstance, auth: Authenticator, limits: RateLimits, audit: AuditLog, metrics: MuseMetrics): void {
  const denied = metrics.counter('muse_gateway_requests_denied_total', 'Requests refused for their credential, scope, project or rate', ['code']);
  fastify.addHook('onRequest', async (req: Tagged, reply: FastifyReply) => {
    if (isPublicPath(req.url)) return;
    try {
      // The address check and the credential lookup at once; a refused address wins over whatever the credential was.
      const [admitted, resolved] = await Promise.allSettled([
        limits.admitAddress(req.ip),
        auth.resolve(bearerToken(headerValue(req.headers.authorization)), headerValue(req.headers[PROJECT_HEADER])),
      ]);
      if (admitted.status === 'rejected') throw admitted.reason;
      if (resolved.status === 'rejected') throw resolved.reason;
      const caller = resolved.value;
      req[CALLER_KEY] = caller;
      await limits.consume(caller);
    } catch (err) {
      const { status, body } = toHttpError(err, req.id);
      if (status === 401) await limits.authFailed(req.ip);
      const retryAfter = (body.error.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
      if (retryAfter !== undefined) void reply.header('retry-after', String(retryAfter));
      return reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
    }
  });

  fastify.addHook('onSend', async (req: Tagged, reply: FastifyReply, payload: unknown) => {
    if (reply.statusCode >= 400 && typeof payload === 'string') {
      try {
        req[ERROR_CODE] = (JSON.parse(payload) as { error?: { code?: string } }).error?.code;
      } catch {
        // not an envelope; no code to record
      }
    }
    return payload;
  });

  fastify.addHook('onResponse', async (req: Tagged, reply: FastifyReply) => {
    const outcome = auditOutcome(req.method, reply.statusCode, req[ERROR_CODE]);
    if (outcome === null || isPublicPath(req.url)) return;
    if (outcome === 'denied') denied.inc({ code: req[ERROR_CODE] ?? `HTTP_${reply.statusCode}` });
    const caller = req[CALLER_KEY];
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    const target = params.id ?? params.name;
    const record: AuditRecord = {
      time: new Date().toISOString(),
      principal: caller?.principal ?? 'anonymous',
      action: `${req.method} ${req.routeOptions.url ?? req.url.split('?')[0]}`,
      outcome,
      status: reply.statusCode,
      requestId: req.id,
      ...(caller ? { project: caller.project } : {}),
      ...(target !== undefined ? { target } : {}),
      ...(req[ERROR_CODE] !== undefined ? { code: req[ERROR_CODE] } : {}),
    };
    audit.record(record);
  });
}
