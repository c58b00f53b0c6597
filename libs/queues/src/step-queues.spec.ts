import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StepJob } from '@muse/contracts';
import { Worker } from './bullmq.js';
import { StepQueues } from './step-queues.js';
import { specRedis } from './spec-redis.js';

// Real Redis: what a step watch reads of a job, through its life.
const { redis, names } = specRedis();

const job = (stepId: string) => ({ runId: 'run_s', project: 'p', stepId, attempt: 1, role: 'executor', kind: 'shell' }) as unknown as StepJob;

test("jobState: a job's BullMQ state, with when a running one started; 'unknown' for a job that does not exist", async () => {
  const queues = new StepQueues(redis, names);
  let release!: () => void;
  const running = new Promise<void>((r) => (release = r));
  let worker: Worker<unknown, void> | undefined;
  const workerConnection = redis.duplicate({ maxRetriesPerRequest: null });
  try {
    assert.deepEqual(await queues.jobState('executor', 'run_s.nothing.1'), { state: 'unknown' });
    const waiting = await queues.enqueue(job('w'));
    assert.deepEqual(await queues.jobState('executor', waiting), { state: 'waiting' });
    const prioritized = await queues.enqueue(job('p'), { priority: 3 });
    assert.deepEqual(await queues.jobState('executor', prioritized), { state: 'prioritized' });
    const delayed = await queues.enqueue(job('d'), { delayMs: 60_000 });
    assert.deepEqual(await queues.jobState('executor', delayed), { state: 'delayed' });

    // A worker takes the prioritized job first (BullMQ serves prioritized before plain waiting jobs), and holds it.
    const started = Date.now();
    const taken = new Promise<string>((resolve) => {
      worker = new Worker(names.stepQueue('executor'), async (j) => {
        resolve(j.id!);
        return running;
      }, { connection: workerConnection, prefix: names.bullPrefix, concurrency: 1 });
    });
    const active = await taken;
    const seen = await queues.jobState('executor', active);
    assert.equal(seen.state, 'active');
    assert.ok(seen.processedOn !== undefined && seen.processedOn >= started - 1000 && seen.processedOn <= Date.now(), `processedOn ${seen.processedOn}`);
    const done = new Promise<void>((r) => worker!.once('completed', () => r()));
    release();
    await done;
    assert.deepEqual(await queues.jobState('executor', active), { state: 'completed' });
  } finally {
    release();
    await worker?.close();
    workerConnection.disconnect();
    await queues.queue('executor').obliterate({ force: true });
    await queues.close();
  }
});

test('remove drops a queued job, waiting, prioritized or delayed, and leaves a running one to finish', async () => {
  const queues = new StepQueues(redis, names);
  const role = 'reviewer';
  const j = (stepId: string) => ({ ...job(stepId), role }) as StepJob;
  let release!: () => void;
  const running = new Promise<void>((r) => (release = r));
  let worker: Worker<unknown, void> | undefined;
  const workerConnection = redis.duplicate({ maxRetriesPerRequest: null });
  try {
    const active = await queues.enqueue(j('a'));
    const taken = new Promise<void>((resolve) => {
      worker = new Worker(names.stepQueue(role), async () => {
        resolve();
        return running;
      }, { connection: workerConnection, prefix: names.bullPrefix, concurrency: 1 });
    });
    await taken;
    const queued = [await queues.enqueue(j('w')), await queues.enqueue(j('p'), { priority: 2 }), await queues.enqueue(j('d'), { delayMs: 60_000 })];
    assert.deepEqual(await Promise.all(queued.map(async (id) => (await queues.jobState(role, id)).state)), ['waiting', 'prioritized', 'delayed']);
    for (const id of [...queued, active]) await queues.remove(role, id);
    assert.deepEqual(await Promise.all(queued.map(async (id) => (await queues.jobState(role, id)).state)), ['unknown', 'unknown', 'unknown']);
    assert.equal((await queues.jobState(role, active)).state, 'active', 'the running job stays');
  } finally {
    release();
    await worker?.close();
    workerConnection.disconnect();
    await queues.queue(role).obliterate({ force: true });
    await queues.close();
  }
});
