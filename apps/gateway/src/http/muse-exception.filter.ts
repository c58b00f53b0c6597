/**
 * The gateway's one exception filter. Nest routes errors from handlers, from
 * its not-found handler and (through the error handler it installs on
 * Fastify) from Fastify's body parsing here; every answer is a Muse envelope.
 */
import { Catch, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { LOGGER, type Logger } from '@muse/telemetry';
import { toHttpError } from './http-error.mapper.js';

@Catch()
export class MuseExceptionFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const req = http.getRequest<FastifyRequest | undefined>();
    const { status, body, internal } = toHttpError(exception, req?.id);
    const where = { method: req?.method, url: req?.url, reqId: req?.id, code: body.error.code };
    if (internal) this.logger.error({ err: exception, ...where }, 'request failed');
    else if (status >= 500) this.logger.warn({ err: exception, ...where }, 'dependency unavailable');
    else this.logger.debug(where, 'request refused');

    if (reply.sent || reply.raw.headersSent) {
      // Streaming had begun (artifact content): the status is gone, so cut the
      // connection rather than let the client take a truncated body for whole.
      reply.raw.destroy();
      return;
    }
    void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
  }
}
