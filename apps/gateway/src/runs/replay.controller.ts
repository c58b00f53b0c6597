import { Body, Controller, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { BudgetRaiseBodySchema, ReplayBodySchema } from '@muse/contracts';
import { RequireScope } from '../auth/scope.decorator.js';
import { CurrentCaller } from '../caller/caller.guard.js';
import type { Caller } from '../caller/caller.js';
import { parseRequest } from '../common/parse-request.js';
import { ReplayService } from './replay.service.js';

/** Replays of recorded runs, and raises of a run's budget: each accepted with 202 once JetStream stored the command. */
@Controller('v1/runs')
export class ReplayController {
  constructor(@Inject(ReplayService) private readonly replays: ReplayService) {}

  /** A new run served from this one's recorded model calls; it fails at the first step whose request differs. */
  @Post(':id/replay')
  @HttpCode(202)
  @RequireScope('write')
  replay(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    const { version } = parseRequest(ReplayBodySchema, body ?? {}, 'replay body');
    return this.replays.replay(caller, id, version);
  }

  /** Raises the run's token and cost limits; steps waiting on the budget go on. */
  @Post(':id/budget')
  @HttpCode(202)
  @RequireScope('write')
  budget(@CurrentCaller() caller: Caller, @Param('id') id: string, @Body() body: unknown) {
    const { addTokens, addCost } = parseRequest(BudgetRaiseBodySchema, body ?? {}, 'budget body');
    return this.replays.raiseBudget(caller, id, addTokens, addCost);
  }
}
