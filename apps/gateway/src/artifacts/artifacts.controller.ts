import { Controller, Get, Inject, Param, Req, Res } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { ArtifactsService } from './artifacts.service.js';

@Controller('v1')
@RequireScope('read')
export class ArtifactsController {
  constructor(@Inject(ArtifactsService) private readonly artifacts: ArtifactsService) {}

  @Get('runs/:id/artifacts')
  async listForRun(@CurrentCaller() caller: Caller, @Param('id') runId: string) {
    return { items: await this.artifacts.listForRun(caller.project, runId) };
  }

  @Get('artifacts/:id')
  get(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    return this.artifacts.get(caller.project, id);
  }

  /** What the artifact was made from and what was made from it (read from the artifact store). */
  @Get('artifacts/:id/lineage')
  lineage(@CurrentCaller() caller: Caller, @Param('id') id: string) {
    return this.artifacts.lineage(caller.project, id);
  }

  /** Streams the bytes; a client that goes away cancels the store's response too. */
  @Get('artifacts/:id/content')
  async content(@CurrentCaller() caller: Caller, @Param('id') id: string, @Req() req: FastifyRequest, @Res() reply: FastifyReply): Promise<void> {
    const gone = new AbortController();
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) gone.abort(new Error('client closed the connection'));
    });
    const content = await this.artifacts.openContent(caller.project, id, req.headers, gone.signal);
    reply.status(content.status).headers(content.headers).send(content.body ?? '');
  }
}
