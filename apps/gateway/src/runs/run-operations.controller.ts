import { Body, Controller, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApprovalBodySchema, RerunBodySchema, RunControlBodySchema } from '@muse/contracts';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { parseRequest } from '../common/parse-request.js';
import { RunOperationsService } from './run-operations.service.js';
import { RunsService } from './runs.service.js';

/** Approvals, pause, resume and retry of a run: each accepted with 202 once JetStream stored the command. */
@Controller('v1/runs')
export class RunOperationsController {
  constructor(
    @Inject(RunOperationsService) private readonly ops: RunOperationsService,
    @Inject(RunsService) private readonly runs: RunsService,
  ) {}

  /** A new run linked to this one, reusing the outputs of the steps before `fromStep`. */
  @Post(':id/rerun')
  @HttpCode(202)
  @RequireScope('write')
  rerun(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    const { fromStep } = parseRequest(RerunBodySchema, body ?? {}, 'rerun body');
    return this.runs.rerun(caller, id, fromStep);
  }

  @Post(':id/approvals/:stepId')
  @HttpCode(202)
  @RequireScope('write')
  approve(@CurrentCaller() caller: Caller, @Param('id') id: string, @Param('stepId') stepId: string, @Body() body: unknown) {
    const { decision, comment } = parseRequest(ApprovalBodySchema, body ?? {}, 'approval body');
    return this.ops.decide(caller, id, stepId, decision, comment);
  }

  @Post(':id/pause')
  @HttpCode(202)
  @RequireScope('write')
  pause(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    return this.ops.control(caller, id, 'pause', parseRequest(RunControlBodySchema, body ?? {}, 'pause body').reason);
  }

  @Post(':id/resume')
  @HttpCode(202)
  @RequireScope('write')
  resume(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    return this.ops.control(caller, id, 'resume', parseRequest(RunControlBodySchema, body ?? {}, 'resume body').reason);
  }

  @Post(':id/retry')
  @HttpCode(202)
  @RequireScope('write')
  retry(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    return this.ops.control(caller, id, 'retry', parseRequest(RunControlBodySchema, body ?? {}, 'retry body').reason);
  }
}
