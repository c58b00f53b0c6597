import type { FastifyInstance } from 'fastify';
import type { MuseMetrics } from '@muse/telemetry';

/** Label for requests that matched no route, so unknown URLs cannot blow up label cardinality. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Counts and times every HTTP response, labelled by route pattern
 * (`/v1/runs/:id`, not the URL), method and status. As a Fastify hook it
 * also sees requests that never reached Nest (body too large, bad JSON).
 */
export function registerHttpMetrics(fastify: FastifyInstance, metrics: MuseMetrics): void {
  const labels = ['route', 'method', 'status'] as const;
  const requests = metrics.counter('muse_gateway_requests_total', 'HTTP requests answered', labels);
  const duration = metrics.histogram('muse_gateway_request_duration_seconds', 'HTTP request duration, in seconds', labels);
  fastify.addHook('onResponse', (request, reply, done) => {
    const l = { route: request.routeOptions.url ?? UNMATCHED_ROUTE, method: request.method, status: String(reply.statusCode) };
    requests.inc(l);
    duration.observe(l, reply.elapsedTime / 1000);
    done();
  });
}
