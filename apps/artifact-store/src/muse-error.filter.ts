/**
 * Answers a MuseError thrown by a controller with its catalogue status and
 * the Muse error body `{"error": {code, message, retryable, details?}}`.
 * Other exceptions keep Nest's handling (the kit's /health/ready relies on it).
 */
import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { MuseError } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import type { FastifyReply } from 'fastify';

@Catch(MuseError)
export class MuseErrorFilter implements ExceptionFilter<MuseError> {
  constructor(private readonly logger?: Pick<Logger, 'error'>) {}

  catch(err: MuseError, host: ArgumentsHost): void {
    if (err.status >= 500) this.logger?.error({ err }, err.message);
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    if (reply.sent) return;
    void reply.code(err.status).header('content-type', 'application/json; charset=utf-8').send({ error: err.toWire() });
  }
}
