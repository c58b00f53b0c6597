/**
 * `POST /v1/runs/{id}/replay` and `POST /v1/runs/{id}/budget`.
 *
 * A replay is a new run of the recorded run's pinned workflow version (or
 * another version of the same workflow) and input, linked by `replayOf`; it
 * carries the artifact ids of the recorded calls (`llm-call.json`, the latest
 * completed attempt of each step or element), and its agent steps are served
 * from them by the workers as long as they ask the same request. Shell steps
 * run again (their output is not recorded as a call).
 */
import { Inject, Injectable } from '@nestjs/common';
import { isTerminalRunStatus, MuseError, type RunStatus } from '@muse/contracts';
import type { JetStreamBus } from '@muse/messaging';
import { LLM_CALL_ARTIFACT } from '@muse/providers/recording';
import { ArtifactsService } from '../artifacts/artifacts.service.js';
import type { Caller } from '../caller/caller.js';
import { BUS } from '../gateway.tokens.js';
import { WorkflowRegistry } from '../workflows/workflow-registry.service.js';
import { newRunId } from './run-id.js';
import { RunsService } from './runs.service.js';
import { publishCommand } from './publish-command.js';

@Injectable()
export class ReplayService {
  constructor(
    @Inject(BUS) private readonly bus: JetStreamBus,
    @Inject(RunsService) private readonly runs: RunsService,
    @Inject(WorkflowRegistry) private readonly registry: WorkflowRegistry,
    @Inject(ArtifactsService) private readonly artifacts: ArtifactsService,
  ) {}

  async replay(caller: Caller, runId: string, version: number | undefined): Promise<{ id: string; status: RunStatus; replayOf: string; workflow: { name: string; version: number } }> {
    const view = await this.runs.get(caller, runId);
    if (!isTerminalRunStatus(view.status)) {
      throw new MuseError('MUSE_ERR_RUN_NOT_REPLAYABLE', `Run ${runId} is ${view.status}: only a finished run can be replayed`, { details: { id: runId, status: view.status } });
    }
    const stored = await this.registry.resolve(caller.project, view.workflow.name, version ?? view.workflow.version);
    const recordings = recordedCalls(await this.artifacts.listForRun(caller.project, runId));
    const id = newRunId();
    const workflow = { name: stored.name, version: stored.version };
    await this.runs.acceptBuilt({ runId: id, project: caller.project, workflow, definition: stored.definition, input: view.input, at: new Date().toISOString(), replayOf: { runId, recordings } });
    return { id, status: 'pending', replayOf: runId, workflow };
  }

  async raiseBudget(caller: Caller, runId: string, addTokens: number | undefined, addCost: number | undefined): Promise<{ id: string; status: RunStatus }> {
    const view = await this.runs.get(caller, runId);
    if (isTerminalRunStatus(view.status)) throw new MuseError('MUSE_ERR_RUN_TERMINAL', `Run ${runId} has already finished (${view.status})`, { details: { id: runId, status: view.status } });
    // No message id: two raises add up, each is one command.
    await publishCommand(this.bus, { kind: 'run-budget', runId, project: caller.project, ...(addTokens ? { addTokens } : {}), ...(addCost ? { addCost } : {}) });
    return { id: runId, status: view.status };
  }
}

/** Step key (`<step>` or `<step>#<index>`) → the artifact id of its latest recorded call. */
export function recordedCalls(metas: { id: string; name: string; stepId: string; attempt: number }[]): Record<string, string> {
  const best = new Map<string, { attempt: number; id: string }>();
  for (const m of metas) {
    if (m.name !== LLM_CALL_ARTIFACT) continue;
    const cur = best.get(m.stepId);
    if (!cur || cur.attempt < m.attempt) best.set(m.stepId, { attempt: m.attempt, id: m.id });
  }
  return Object.fromEntries([...best].map(([k, v]) => [k, v.id]));
}
