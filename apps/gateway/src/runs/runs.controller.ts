import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { CancelRunBodySchema, RunListQuerySchema } from '@muse/contracts';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { parseRequest } from '../common/parse-request.js';
import { parseIdempotencyKey } from './idempotency.js';
import { decodeCursor } from './run-cursor.js';
import { RunsService } from './runs.service.js';
import { traceparentOf } from './submit-run.js';

@Controller('v1/runs')
export class RunsController {
  constructor(@Inject(RunsService) private readonly runs: RunsService) {}

  /** 202 once JetStream has stored the submission. */
  @Post()
  @HttpCode(202)
  @RequireScope('write')
  async submit(
    @CurrentCaller() caller: Caller,
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Headers('traceparent') traceparent: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const key = parseIdempotencyKey(idempotencyKey);
    const tp = traceparentOf(traceparent);
    const accepted = await this.runs.submit(caller, { body, ...(key !== undefined ? { idempotencyKey: key } : {}), ...(tp !== undefined ? { traceparent: tp } : {}) });
    reply.header('location', `/v1/runs/${accepted.id}`);
    return accepted;
  }

  @Get()
  @RequireScope('read')
  async list(@CurrentCaller() caller: Caller, @Query() query: unknown) {
    const q = parseRequest(RunListQuerySchema, { ...(query as object) }, 'query');
    return this.runs.list(caller, {
      limit: q.limit,
      ...(q.status !== undefined ? { status: q.status } : {}),
      ...(q.workflow !== undefined ? { workflow: q.workflow } : {}),
      ...(q.cursor !== undefined ? { cursor: decodeCursor(q.cursor) } : {}),
    });
  }

  @Get(':id')
  @RequireScope('read')
  get(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    return this.runs.get(caller, id);
  }

  @Get(':id/events')
  @RequireScope('read')
  async events(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    return { items: await this.runs.events(caller, id) };
  }

  @Post(':id/cancel')
  @HttpCode(202)
  @RequireScope('write')
  cancel(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    const { reason, compensate } = parseRequest(CancelRunBodySchema, body ?? {}, 'cancel body');
    return this.runs.cancel(caller, id, reason, compensate);
  }
}
