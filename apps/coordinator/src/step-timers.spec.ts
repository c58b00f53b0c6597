import { test } from 'node:test';
import assert from 'node:assert/strict';
import { museNames, type Command } from '@muse/contracts';
import { StepTimers, type TimerJob, type WatchStep } from './step-timers.js';

function setup(state: string, processedOn?: number, waitingMaxMs?: number) {
  const added: Array<{ id: string; delay: number; data: TimerJob }> = [];
  const watched: Array<{ id: string; delay: number; data: WatchStep }> = [];
  const published: Array<{ cmd: Command; msgId: string }> = [];
  const removed: string[] = [];
  const timers = new StepTimers({
    connection: undefined as never,
    names: museNames('unit'),
    queues: { jobState: async () => ({ state: state === 'missing' ? 'unknown' : state, ...(processedOn !== undefined ? { processedOn } : {}) }) },
    publish: async (cmd, msgId) => void published.push({ cmd, msgId }),
    watchMs: 1000,
    ...(waitingMaxMs !== undefined ? { waitingMaxMs } : {}),
    logger: { debug: () => undefined, warn: () => undefined },
    now: () => 100_000,
    queue: { add: (async (_n: string, data: TimerJob, o: { jobId: string; delay: number }) => void added.push({ id: o.jobId, delay: o.delay, data })) as never, close: async () => undefined },
    watches: fakeWatches(watched, removed),
  });
  return { timers, added, watched, published, removed };
}

function fakeWatches(watched: Array<{ id: string; delay: number; data: WatchStep }>, removed: string[], remove?: () => Promise<void>) {
  return {
    add: async (id: string, data: WatchStep, delay: number) => void watched.push({ id, delay, data }),
    remove: remove ?? (async (id: string) => void removed.push(id)),
    start: () => undefined,
    close: async () => undefined,
  };
}

const watch: WatchStep = { kind: 'watch-step', runId: 'r', project: 'p', stepId: 's', attempt: 2, role: 'executor', jobId: 'r.s.2', timeoutMs: 5000, n: 3 };

test('a step job its worker lost (failed after a stall, or gone) fails the attempt once, as retryable MUSE_ERR_STEP_LOST', async () => {
  for (const state of ['failed', 'missing']) {
    const { timers, published } = setup(state);
    assert.equal(await timers.look(watch), undefined, 'the watch is over');
    assert.equal(published.length, 1);
    const { cmd, msgId } = published[0]!;
    assert.equal(msgId, 'r.s.2.failed.lost');
    assert.ok(cmd.kind === 'step-report' && cmd.outcome === 'failed' && cmd.attempt === 2 && cmd.agentId === 'coordinator');
    assert.deepEqual(cmd.kind === 'step-report' && [cmd.error?.code, cmd.error?.retryable], ['MUSE_ERR_STEP_LOST', true]);
  }
});

test('an active job past its timeout (plus one watch period) fails as MUSE_ERR_STEP_TIMEOUT; within it, the watch goes on', async () => {
  const late = setup('active', 100_000 - 6_001);
  assert.equal(await late.timers.look(watch), undefined);
  assert.equal(late.published[0]?.cmd.kind === 'step-report' && late.published[0].cmd.error?.code, 'MUSE_ERR_STEP_TIMEOUT');
  const inTime = setup('active', 100_000 - 5_500);
  assert.deepEqual(await inTime.timers.look(watch), { delayMs: 1000, data: { ...watch, n: 4 } });
  assert.equal(inTime.published.length, 0);
});

test('a waiting or delayed job is watched again; a completed one ends the watch', async () => {
  for (const state of ['waiting', 'delayed', 'prioritized']) {
    const { timers, published } = setup(state);
    assert.equal((await timers.look(watch))?.data.n, 4, state);
    assert.equal(published.length, 0);
  }
  const done = setup('completed');
  assert.equal(await done.timers.look(watch), undefined);
  assert.equal(done.published.length, 0);
});

test('a job waiting for a worker is looked at less and less often (2^n periods, up to waitingMaxMs); a running or leased one every period', async () => {
  const gap = async (state: string, data: WatchStep, waitingMaxMs?: number) => (await setup(state, 100_000, waitingMaxMs).timers.look(data))?.delayMs;
  for (const [n, expected] of [[1, 2000], [2, 4000], [3, 8000], [4, 12_000], [40, 12_000]] as const) {
    assert.equal(await gap('waiting', { ...watch, n }, 12_000), expected, `waiting, watch ${n}`);
    assert.equal(await gap('prioritized', { ...watch, n }, 12_000), expected, `prioritized, watch ${n}`);
    assert.equal(await gap('active', { ...watch, n }, 12_000), 1000, `active, watch ${n}`);
    assert.equal(await gap('waiting', { ...watch, n, leased: true }, 12_000), 1000, `leased, watch ${n}`);
  }
  // A cap at or below the period means no back-off; so does leaving it out.
  assert.equal(await gap('waiting', watch, 500), 1000);
  assert.equal(await gap('waiting', watch), 1000);
});

test("an attempt's first watch is listed one period out; a watch-step job of an older version is looked at and goes on in the list", async () => {
  const { timers, watched, added } = setup('waiting');
  await timers.watchStep({ runId: 'r', project: 'p', stepId: 's', attempt: 2, role: 'executor', jobId: 'r.s.2', timeoutMs: 5000 });
  assert.deepEqual(watched, [{ id: 'r.s.2', delay: 1000, data: { kind: 'watch-step', runId: 'r', project: 'p', stepId: 's', attempt: 2, role: 'executor', jobId: 'r.s.2', timeoutMs: 5000, n: 1 } }]);
  await timers.fire({ data: watch });
  assert.deepEqual(watched[1], { id: 'r.s.2', delay: 1000, data: { ...watch, n: 4 } });
  assert.equal(added.length, 0, 'no timer job for a watch');
  const done = setup('completed');
  await done.timers.fire({ data: watch });
  assert.equal(done.watched.length, 0);
});

test('run deadlines fire a run-timeout command and are set relative to the run creation', async () => {
  const { timers, added, published } = setup('waiting');
  await timers.runDeadline('r', 'p', 60_000, 70_000);
  assert.deepEqual(added.map((a) => [a.id, a.delay]), [['r.deadline', 30_000]]);
  await timers.fire({ data: added[0]!.data });
  assert.deepEqual(published, [{ cmd: { kind: 'run-timeout', runId: 'r', project: 'p', timeoutMs: 60_000 }, msgId: 'r.timeout' }]);
});

test("a finished attempt drops its watch; a failing remove is only logged", async () => {
  const { timers, removed } = setup('completed');
  timers.forgetWatch('r.s.2');
  assert.deepEqual(removed, ['r.s.2']);
  const logged: string[] = [];
  const failing = new StepTimers({
    connection: undefined as never,
    names: museNames('unit'),
    queues: { jobState: async () => ({ state: 'unknown' }) },
    publish: async () => undefined,
    watchMs: 1000,
    logger: { debug: ((_o: object, msg: string) => void logged.push(msg)) as never, warn: () => undefined },
    queue: { add: (async () => undefined) as never, close: async () => undefined },
    watches: fakeWatches([], [], () => Promise.reject(new Error('redis down'))),
  });
  failing.forgetWatch('r.s.2');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(logged, ['step watch not dropped; it will fire and stop']);
});
