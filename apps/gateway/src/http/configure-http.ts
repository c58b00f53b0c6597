/**
 * Fastify-level settings of the gateway: body limit, the body parser, the
 * framework-error hook and metrics. Applied before Nest registers its
 * routes and parsers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { GatewayConfig } from '@muse/contracts';
import type { MuseMetrics } from '@muse/telemetry';
import { parseBody } from './body.parser.js';
import { toHttpError } from './http-error.mapper.js';
import { registerHttpMetrics } from './http-metrics.hook.js';

/** Options for the Fastify instance (runService's `fastify` hook). */
export function fastifyOptions(config: GatewayConfig): Record<string, unknown> {
  return {
    bodyLimit: config.MUSE_MAX_BODY_BYTES,
    // Errors Fastify raises before routing (a malformed URL) never reach
    // Nest's error handler; they get the Muse envelope here.
    frameworkErrors: (err: Error, req: FastifyRequest, reply: FastifyReply) => {
      const { status, body } = toHttpError(err, req.id);
      void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
    },
  };
}

export function configureHttp(app: NestFastifyApplication, config: GatewayConfig, metrics: MuseMetrics): void {
  const fastify = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
  // Fastify's built-in JSON and text parsers go, and one catch-all takes every
  // body as bytes: media types and error codes are decided in parseBody. A
  // catch-all also keeps Nest from adding its JSON and urlencoded parsers.
  fastify.removeAllContentTypeParsers();
  app.useBodyParser('*', { bodyLimit: config.MUSE_MAX_BODY_BYTES }, (req, body, done) => {
    try {
      done(null, parseBody(req.headers['content-type'], body, { maxDepth: config.MUSE_MAX_JSON_DEPTH, maxArrayLength: config.MUSE_MAX_JSON_ARRAY }));
    } catch (err) {
      done(err as Error, undefined);
    }
  });
  registerHttpMetrics(fastify, metrics);
}
