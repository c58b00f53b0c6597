/** Drain and hand-back against the real Redis (BullMQ), under a namespace of its own that is deleted afterwards. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { museNames, type StepJob } from '@muse/contracts';
import { createRedis, StepQueues } from '@muse/queues';
import { StepWorkers } from './step-workers.service.js';
import { StepHandedBackError } from './step.errors.js';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
const job = (stepId: string): StepJob => ({
  runId: 'run_w', project: 'default', stepId, attempt: 1, role: 'executor', kind: 'shell', command: 'true', timeoutMs: 10_000,
});

async function until(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('StepWorkers (real Redis)', () => {
  let redis: Redis;
  const names = museNames(`t-spec-${randomBytes(4).toString('hex')}`);
  let queues: StepQueues;

  before(() => {
    redis = createRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    queues = new StepQueues(redis, names);
  });
  after(async () => {
    await queues.close();
    const keys = await redis.keys(`${names.namespace}:*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  test('drain waits for the running step to finish, then closes', async () => {
    let started = false;
    const workers = new StepWorkers({
      connection: redis, names, roles: ['executor'], concurrency: 2, lockDurationMs: 5_000, logger: quiet,
      handBack: new AbortController(), killShells: () => undefined,
      processor: {
        process: async () => {
          started = true;
          await new Promise((r) => setTimeout(r, 300));
          return { kind: 'shell', outcome: 'completed', report: {} as never };
        },
      },
    });
    workers.start();
    const id = await queues.enqueue(job('finish'));
    await until(() => started);
    assert.equal(await workers.drain(5_000), 0);
    assert.equal(await queues.queue('executor').getJobState(id), 'completed');
    const { avgStepMs, ...counts } = workers.snapshot();
    assert.deepEqual(counts, { inFlight: 0, completed: 1, failed: 0 });
    assert.ok(avgStepMs !== undefined && avgStepMs >= 300 && avgStepMs < 5_000, `mean step time ${avgStepMs} ms`);
  });

  test('past the budget the step is handed back: not failed by its worker; the stall check then fails it, and no worker runs that attempt again', async () => {
    const handBack = new AbortController();
    let killed = 0;
    const first = new StepWorkers({
      connection: redis, names, roles: ['executor'], concurrency: 1, lockDurationMs: 1_000, logger: quiet,
      handBack, killShells: () => void killed++,
      processor: {
        process: (data) =>
          new Promise((_, reject) => {
            void data;
            handBack.signal.addEventListener('abort', () => reject(handBack.signal.reason));
          }),
      },
    });
    first.start();
    const id = await queues.enqueue(job('handback'));
    await until(async () => (await queues.queue('executor').getJobState(id)) === 'active');
    assert.equal(await first.drain(200), 1);
    assert.ok(handBack.signal.reason instanceof StepHandedBackError);
    assert.equal(killed, 1);
    assert.equal(await queues.queue('executor').getJobState(id), 'active', 'neither completed nor failed');

    const ranBy: string[] = [];
    const second = new StepWorkers({
      connection: redis, names, roles: ['executor'], concurrency: 1, lockDurationMs: 1_000, logger: quiet,
      handBack: new AbortController(), killShells: () => undefined,
      processor: {
        process: async (data) => {
          ranBy.push((data as StepJob).stepId);
          return { kind: 'shell', outcome: 'completed', report: {} as never };
        },
      },
    });
    second.start();
    // Never re-run under the same attempt (a shell step's side effect happens at most once per attempt):
    // the job fails, and the coordinator's watch of the attempt queues the next one.
    await until(async () => (await queues.queue('executor').getJobState(id)) === 'failed', 15_000);
    assert.deepEqual(ranBy, []);
    await second.drain(1_000);
  });
});
