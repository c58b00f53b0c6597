import { test } from 'node:test';
import assert from 'node:assert/strict';
import { museNames, type Command } from '@muse/contracts';
import { StepTimers, type TimerJob } from './step-timers.js';

function setup(state: string, processedOn?: number, waitingMaxMs?: number) {
  const added: Array<{ id: string; delay: number; data: TimerJob }> = [];
  const published: Array<{ cmd: Command; msgId: string }> = [];
  const removed: string[] = [];
  const timers = new StepTimers({
    connection: undefined as never,
    names: museNames('unit'),
    queues: { findJob: async () => (state === 'missing' ? undefined : { getState: async () => state, processedOn }) } as never,
    publish: async (cmd, msgId) => void published.push({ cmd, msgId }),
    watchMs: 1000,
    ...(waitingMaxMs !== undefined ? { waitingMaxMs } : {}),
    logger: { debug: () => undefined, warn: () => undefined },
    now: () => 100_000,
    queue: { add: (async (_n: string, data: TimerJob, o: { jobId: string; delay: number }) => void added.push({ id: o.jobId, delay: o.delay, data })) as never, close: async () => undefined, remove: async (id: string) => (removed.push(id), 1) },
  });
  return { timers, added, published, removed };
}

const watch: TimerJob = { kind: 'watch-step', runId: 'r', project: 'p', stepId: 's', attempt: 2, role: 'executor', jobId: 'r.s.2', timeoutMs: 5000, n: 3 };

test('a step job its worker lost (failed after a stall, or gone) fails the attempt once, as retryable MUSE_ERR_STEP_LOST', async () => {
  for (const state of ['failed', 'missing']) {
    const { timers, added, published } = setup(state);
    await timers.fire({ data: watch });
    assert.equal(added.length, 0, 'no further watch');
    assert.equal(published.length, 1);
    const { cmd, msgId } = published[0]!;
    assert.equal(msgId, 'r.s.2.failed.lost');
    assert.ok(cmd.kind === 'step-report' && cmd.outcome === 'failed' && cmd.attempt === 2 && cmd.agentId === 'coordinator');
    assert.deepEqual(cmd.kind === 'step-report' && [cmd.error?.code, cmd.error?.retryable], ['MUSE_ERR_STEP_LOST', true]);
  }
});

test('an active job past its timeout (plus one watch period) fails as MUSE_ERR_STEP_TIMEOUT; within it, the watch goes on', async () => {
  const late = setup('active', 100_000 - 6_001);
  await late.timers.fire({ data: watch });
  assert.equal(late.published[0]?.cmd.kind === 'step-report' && late.published[0].cmd.error?.code, 'MUSE_ERR_STEP_TIMEOUT');
  const inTime = setup('active', 100_000 - 5_500);
  await inTime.timers.fire({ data: watch });
  assert.equal(inTime.published.length, 0);
  assert.deepEqual(inTime.added.map((a) => [a.id, a.delay, a.data.kind === 'watch-step' && a.data.n]), [['r.s.2.w4', 1000, 4]]);
});

test('a waiting or delayed job is watched again; a completed one ends the watch', async () => {
  for (const state of ['waiting', 'delayed', 'prioritized']) {
    const { timers, added, published } = setup(state);
    await timers.fire({ data: watch });
    assert.equal(published.length, 0);
    assert.equal(added.length, 1);
  }
  const done = setup('completed');
  await done.timers.fire({ data: watch });
  assert.deepEqual([done.added.length, done.published.length], [0, 0]);
});

test('a job waiting for a worker is looked at less and less often (2^n periods, up to waitingMaxMs); a running or leased one every period', async () => {
  const gaps = (state: string, data: TimerJob) => {
    const { timers, added } = setup(state, 100_000, 12_000);
    return timers.fire({ data }).then(() => added.map((a) => a.delay));
  };
  for (const [n, gap] of [[1, 2000], [2, 4000], [3, 8000], [4, 12_000], [40, 12_000]] as const) {
    assert.deepEqual(await gaps('waiting', { ...watch, n }), [gap], `waiting, watch ${n}`);
    assert.deepEqual(await gaps('prioritized', { ...watch, n }), [gap], `prioritized, watch ${n}`);
    assert.deepEqual(await gaps('active', { ...watch, n }), [1000], `active, watch ${n}`);
    assert.deepEqual(await gaps('waiting', { ...watch, n, leased: true }), [1000], `leased, watch ${n}`);
  }
  // A cap at or below the period means no back-off; so does leaving it out.
  const off = setup('waiting', undefined, 500);
  await off.timers.fire({ data: watch });
  assert.deepEqual(off.added.map((a) => a.delay), [1000]);
  const unset = setup('waiting');
  await unset.timers.fire({ data: watch });
  assert.deepEqual(unset.added.map((a) => a.delay), [1000]);
});

test('run deadlines fire a run-timeout command and are set relative to the run creation', async () => {
  const { timers, added, published } = setup('waiting');
  await timers.runDeadline('r', 'p', 60_000, 70_000);
  assert.deepEqual(added.map((a) => [a.id, a.delay]), [['r.deadline', 30_000]]);
  await timers.fire({ data: added[0]!.data });
  assert.deepEqual(published, [{ cmd: { kind: 'run-timeout', runId: 'r', project: 'p', timeoutMs: 60_000 }, msgId: 'r.timeout' }]);
});

test('a finished attempt drops its first watch; a failing remove is only logged', async () => {
  const { timers, removed } = setup('completed');
  timers.forgetWatch('r.s.2');
  assert.deepEqual(removed, ['r.s.2.w1']);
  const logged: string[] = [];
  const failing = new StepTimers({
    connection: undefined as never,
    names: museNames('unit'),
    queues: { findJob: async () => undefined } as never,
    publish: async () => undefined,
    watchMs: 1000,
    logger: { debug: ((_o: object, msg: string) => void logged.push(msg)) as never, warn: () => undefined },
    queue: { add: (async () => undefined) as never, close: async () => undefined, remove: async () => Promise.reject(new Error('redis down')) },
  });
  failing.forgetWatch('r.s.2');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(logged, ['step watch not dropped; it will fire and stop']);
});
