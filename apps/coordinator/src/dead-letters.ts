/**
 * Dead letters: steps that failed for good (retries exhausted or a
 * non-retryable error), one Redis hash per project, field `<run>.<step>`.
 * Written by the coordinator when it appends such a `step.failed`, removed
 * when the run is re-driven (`run.retried`); listed by the gateway at
 * `GET /v1/dead-letters`. Written after the append, like the run view: a
 * crash in between is repaired by the redelivered command (a rewrite of the
 * same field).
 */
import type { Redis } from 'ioredis';
import type { DeadLetter, MuseNames, RunEvent } from '@muse/contracts';
import type { RunState } from '@muse/engine';

export class DeadLetters {
  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
  ) {}

  async apply(events: RunEvent[], state: RunState): Promise<void> {
    const key = this.names.deadLettersKey(state.project);
    for (const ev of events) {
      if (ev.type === 'step.failed' && ev.data.final) {
        const entry: DeadLetter = {
          runId: state.runId,
          stepId: ev.data.stepId,
          ...(ev.data.index !== undefined ? { index: ev.data.index } : {}),
          workflow: state.workflow,
          attempts: ev.data.attempt,
          error: ev.data.error,
          at: ev.at,
        };
        await this.redis.hset(key, `${state.runId}.${ev.data.stepId}`, JSON.stringify(entry));
      } else if (ev.type === 'run.retried' && ev.data.steps.length > 0) {
        await this.redis.hdel(key, ...ev.data.steps.map((s) => `${state.runId}.${s}`));
      }
    }
  }
}
