/**
 * The command handler with in-memory stand-ins for the bus, queues, locks and views: what it appends and does for
 * a report whose outputs the artifact store refuses to commit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { museNames, type Command, type RunEvent, type StepJob } from '@muse/contracts';
import { MuseMetrics } from '@muse/telemetry';
import { foldEvents } from '@muse/engine';
import { EventTooLargeError, WrongLastSequenceError, type JetStreamBus } from '@muse/messaging';
import type { StepQueues } from '@muse/queues';
import type { RunLockDraw, RunLocks } from '@muse/locks';
import { CommandHandler, EARLY_COMMAND_DELIVERIES, RunNotStartedError, type CommandHandlerDeps } from './command.handler.js';
import type { RunViewStore } from './run-view.store.js';

function harness(
  commitAnswer: unknown | ((req: { stepId: string; fencingToken: number }) => Promise<unknown>),
  opts: { enqueue?: (job: StepJob) => Promise<void>; maxEventBytes?: number; locks?: RunLocks; inlineCommits?: CommandHandlerDeps['inlineCommits'] } = {},
) {
  const log: RunEvent[] = [];
  const enqueued: StepJob[] = [];
  const published: string[] = [];
  const counts = { appends: 0, viewWrites: 0, reads: 0 };
  // As on JetStream, one message per append and the expected last sequence checked; `seqs` holds each append's last event's seq.
  const seqs: number[] = [];
  const bus = {
    appendRunEvents: async (runId: string, events: RunEvent[], expected: number) => {
      if (expected !== seqs.length) throw new WrongLastSequenceError(runId, expected);
      // As the real bus does, before anything is stored: one event over the limit refuses the whole append.
      for (const ev of events) {
        const bytes = Buffer.byteLength(JSON.stringify(ev));
        if (opts.maxEventBytes !== undefined && bytes > opts.maxEventBytes) throw new EventTooLargeError(runId, { type: ev.type, id: ev.id }, bytes, opts.maxEventBytes);
      }
      counts.appends++;
      log.push(...events);
      seqs.push(log.length);
      return seqs.length;
    },
    lastRunMessage: async () => (counts.reads++, seqs.length ? { seq: seqs.length, event: log.at(-1)! } : null),
    readRunEvents: async () => (counts.reads++, { events: [...log], lastStreamSeq: seqs.length }),
    request: async (_subject: string, req: { stepId: string; fencingToken: number }) => (typeof commitAnswer === 'function' ? commitAnswer(req) : commitAnswer),
    publish: (subject: string) => void published.push(subject),
    publishCommand: async () => ({ seq: 1, duplicate: false }),
    sendAudit: () => undefined,
  } as unknown as JetStreamBus;
  const queues = {
    enqueue: async (job: StepJob) => {
      enqueued.push(job);
      await opts.enqueue?.(job);
    },
    remove: async () => undefined,
  } as unknown as StepQueues;
  const locks = opts.locks ?? ({ withRunLock: async <T>(_id: string, fn: (token: number, signal: AbortSignal) => Promise<T>) => fn(1, new AbortController().signal) } as unknown as RunLocks);
  const views = { write: async () => (counts.viewWrites++, true) } as unknown as RunViewStore;
  const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const deps: CommandHandlerDeps = {
    bus,
    queues,
    locks,
    views,
    names: museNames('t-spec'),
    defaults: { maxAttempts: 2, timeoutMs: 1000 },
    logger: logger as never,
    metrics: new MuseMetrics('coordinator-spec'),
    ...(opts.inlineCommits ? { inlineCommits: opts.inlineCommits } : {}),
  };
  const handler = new CommandHandler(deps);
  const ctx = { deliveryCount: 1, streamSeq: 1, working: () => undefined };
  return {
    log,
    enqueued,
    counts,
    published,
    handle: (cmd: Command, deliveryCount = 1) => handler.handle(cmd, { ...ctx, deliveryCount }),
    /** The same log and stand-ins, seen by another replica (an empty cache of run states). */
    replica: () => {
      const other = new CommandHandler({ ...deps, metrics: new MuseMetrics('coordinator-spec-2') });
      return (cmd: Command) => other.handle(cmd, ctx);
    },
  };
}

const submit: Command = {
  kind: 'run-submit',
  runId: 'r1',
  project: 'p',
  workflow: { name: 'w', version: 1 },
  definition: { name: 'w', steps: [{ id: 'a', tool: 'shell', command: 'echo a', retry: { maxAttempts: 2, backoff: { initialMs: 0 } } }] },
  input: {},
  submittedAt: '2026-01-01T00:00:00.000Z',
};
const completed = (attempt: number): Command => ({
  kind: 'step-report',
  runId: 'r1',
  project: 'p',
  stepId: 'a',
  attempt,
  agentId: 'w1',
  outcome: 'completed',
  at: '2026-01-01T00:00:01.000Z',
  output: { exitCode: 0, stdout: 'a', stderr: '' },
  artifacts: [{ name: 'output', digest: 'sha256:00', size: 1, mediaType: 'application/json' }],
});

test('a completion whose blobs the store no longer has fails the attempt (retryable) instead of being redelivered for ever', async () => {
  const h = harness({ ok: false, error: { code: 'MUSE_ERR_ARTIFACT_BLOB_COLLECTING', message: 'blob gone', retryable: true } });
  await h.handle(submit);
  await h.handle(completed(1));
  const failed = h.log.find((e) => e.type === 'step.failed');
  assert.ok(failed?.type === 'step.failed');
  assert.equal(failed.data.error.code, 'MUSE_ERR_ARTIFACT_BLOB_COLLECTING');
  assert.equal(failed.data.final, false);
  assert.match(failed.data.error.message, /could not be committed/);
  // (A reload re-enqueues what is queued: a no-op by job id in BullMQ, so attempts may repeat here.)
  assert.deepEqual([...new Set(h.enqueued.map((j) => j.attempt))], [1, 2], 'the next attempt is queued (it uploads again)');
  await h.handle(completed(2));
  assert.equal(h.log.at(-1)!.type, 'run.failed', 'the run ends once the policy is spent');
});

test('a refusal that can change (a stale fencing token) still throws, so the report is redelivered', async () => {
  const h = harness({ ok: false, error: { code: 'MUSE_ERR_ARTIFACT_STALE_TOKEN', message: 'stale', retryable: true } });
  await h.handle(submit);
  await assert.rejects(h.handle(completed(1)), /stale/);
  assert.equal(h.log.some((e) => e.type === 'step.failed' || e.type === 'step.completed'), false);
});

test('completions queued for one run commit their outputs at once, each folded with its own artifacts', async () => {
  let inFlight = 0;
  let most = 0;
  const h = harness(async (req: { stepId: string; fencingToken: number }) => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 20));
    inFlight--;
    return { ok: true, artifacts: [{ id: `art_${req.stepId}`, name: 'output', version: 1, digest: 'sha256:00', size: 1, mediaType: 'application/json' }] };
  });
  const steps = ['a', 'b', 'c'].map((id) => ({ id, tool: 'shell', command: `echo ${id}` }));
  await h.handle({ ...submit, definition: { name: 'w', steps } } as Command);
  const done = (stepId: string) => ({ ...completed(1), stepId }) as Command;
  await Promise.all(['a', 'b', 'c'].map((id) => h.handle(done(id))));
  assert.equal(most, 3, 'the three commits overlapped');
  const byStep = Object.fromEntries(h.log.flatMap((e) => (e.type === 'step.completed' ? [[e.data.stepId, (e.data as { artifacts?: Array<{ id: string }> }).artifacts?.map((a) => a.id)]] : [])));
  assert.deepEqual(byStep, { a: ['art_a'], b: ['art_b'], c: ['art_c'] });
  assert.equal(h.log.at(-1)!.type, 'run.completed');
});

test('reports queued behind one another are decided in turn and appended together; one that cannot be decided waits for its own turn', async () => {
  let cFailed = false;
  const h = harness(async (req: { stepId: string }) => {
    await new Promise((r) => setTimeout(r, 5));
    // c's first commit fails the way a store that is restarting would: not a refusal, so the report is tried again.
    if (req.stepId === 'c' && !cFailed) {
      cFailed = true;
      throw new Error('artifact store unavailable');
    }
    return { ok: true, artifacts: [{ id: `art_${req.stepId}`, name: 'output', version: 1, digest: 'sha256:00', size: 1, mediaType: 'application/json' }] };
  });
  const steps = ['a', 'b', 'c', 'd'].map((id) => ({ id, tool: 'shell', command: `echo ${id}` }));
  await h.handle({ ...submit, definition: { name: 'w', steps } } as Command);
  const before = { ...h.counts };
  const done = (stepId: string) => ({ ...completed(1), stepId }) as Command;
  // a takes the run's lock first; b, c and d queue behind it and are in its hold.
  const outcomes = await Promise.allSettled(['a', 'b', 'c', 'd'].map((id) => h.handle(done(id))));
  assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
  const appended = h.log.filter((e) => e.seq > 6).map((e) => `${e.type}${'stepId' in e.data ? `:${e.data.stepId}` : ''}`);
  assert.deepEqual(appended, ['step.completed:a', 'step.completed:b', 'step.completed:c', 'step.completed:d', 'run.completed']);
  // a's fold takes b and stops at c, whose commit failed; c's own turn then takes d.
  assert.equal(h.counts.appends - before.appends, 2, 'a and b in one append, c and d in the next');
  assert.equal(h.counts.viewWrites - before.viewWrites, 2, 'one view write per append');
  assert.deepEqual(h.log.map((e) => e.seq), h.log.map((_, i) => i + 1), 'each decision saw the state the one before it left');
  assert.equal(h.log.at(-1)!.type, 'run.completed');
});

test('a first submission appends without reading the log; one repeated once the run began is read, changes nothing and redoes the effects', async () => {
  const h = harness({ ok: true, artifacts: [] });
  await h.handle(submit);
  assert.equal(h.counts.reads, 0, 'a new run: nothing to read');
  assert.deepEqual(h.log.map((e) => e.type), ['run.created', 'run.started', 'step.queued']);
  const before = { appends: h.counts.appends, enqueued: h.enqueued.length };
  // The same submission again (past JetStream's dedupe window, a first delivery) at a replica that never saw the run.
  await h.replica()(submit);
  assert.equal(h.counts.appends, before.appends, 'nothing appended: the run had started');
  assert.deepEqual(h.log.map((e) => e.type), ['run.created', 'run.started', 'step.queued']);
  assert.ok(h.counts.reads >= 1, 'the log was read once the append found it begun');
  assert.equal(h.enqueued.length, before.enqueued + 1, 'its queued step is enqueued again (a no-op by job id)');
});

test('a run that completes without retries sends no run-stop notice; one whose step was retried does (the superseded attempt may still run)', async () => {
  const plain = harness({ ok: true, artifacts: [] });
  await plain.handle(submit);
  await plain.handle(completed(1));
  assert.equal(plain.log.at(-1)!.type, 'run.completed');
  assert.deepEqual(plain.published, []);

  const retriedRun = harness({ ok: true, artifacts: [] });
  await retriedRun.handle(submit);
  await retriedRun.handle({ ...completed(1), outcome: 'failed', error: { code: 'MUSE_ERR_STEP_LOST', message: 'lost', retryable: true } } as unknown as Command);
  await retriedRun.handle(completed(2));
  assert.equal(retriedRun.log.at(-1)!.type, 'run.completed');
  assert.deepEqual(retriedRun.published, [museNames('t-spec').runStopSubject('r1')]);
});

test('a pause that reaches a coordinator before its run’s submission was handled is redelivered until it was, not lost; one for a run that never comes is dropped in the end', async () => {
  const h = harness({ ok: true, artifacts: [] });
  const pause: Command = { kind: 'run-control', runId: 'r1', project: 'p', action: 'pause' };
  await assert.rejects(h.handle(pause), RunNotStartedError);
  assert.equal(h.log.length, 0, 'nothing appended for a run not in the log');
  await h.handle(submit);
  await h.handle(pause, 2);
  assert.deepEqual(h.log.map((e) => e.type), ['run.created', 'run.started', 'step.queued', 'run.paused']);

  const never = harness({ ok: true, artifacts: [] });
  const cancel: Command = { kind: 'run-cancel', runId: 'r-never', project: 'p' };
  await assert.rejects(never.handle(cancel, EARLY_COMMAND_DELIVERIES - 1), RunNotStartedError);
  await never.handle(cancel, EARLY_COMMAND_DELIVERIES);
  assert.equal(never.log.length, 0);
});

test('one fold of a fan-out’s reports sends the next elements’ jobs together, not one report’s after another’s', async () => {
  // Each add takes a while, as a Redis round trip does; `most` is how many were in flight at once.
  let inFlight = 0;
  let most = 0;
  const h = harness({ ok: true, artifacts: [] }, {
    enqueue: async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 10));
      inFlight--;
    },
  });
  const definition = { name: 'w', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.items', concurrency: 3 }] };
  await h.handle({ ...submit, definition, input: { items: [1, 2, 3, 4, 5, 6] } } as Command);
  assert.deepEqual(h.enqueued.map((j) => j.index), [0, 1, 2], 'the first three elements');
  const afterSubmit = h.log.length;
  most = 0;
  // Three quick reports (each stands for its `started` too), folded in one hold: each frees a slot for the next element.
  const done = (index: number) => ({ ...completed(1), stepId: 'each', index, startedAt: '2026-01-01T00:00:00.500Z', artifacts: [] }) as Command;
  await Promise.all([0, 1, 2].map((i) => h.handle(done(i))));
  const folded = h.log.slice(afterSubmit).map((e) => `${e.type}:${(e.data as { index?: number }).index}`);
  assert.deepEqual(folded, ['step.started:0', 'step.completed:0', 'step.queued:3', 'step.started:1', 'step.completed:1', 'step.queued:4', 'step.started:2', 'step.completed:2', 'step.queued:5']);
  assert.deepEqual(h.enqueued.slice(3).map((j) => j.index), [3, 4, 5]);
  assert.equal(most, 3, 'the three jobs were in flight at once: a started element does not wait for the job queued before it');
});

test('an event too large for the run log fails the run with MUSE_ERR_EVENT_TOO_LARGE instead of being redelivered for ever', async () => {
  const h = harness({ ok: true, artifacts: [] }, { maxEventBytes: 2_000 });
  await h.handle(submit);
  const huge = { ...completed(1), output: { exitCode: 0, stdout: 'x'.repeat(5_000), stderr: '' } } as Command;
  await h.handle(huge); // handled, not thrown: a redelivery could never store it either
  assert.deepEqual(h.log.map((e) => e.type), ['run.created', 'run.started', 'step.queued', 'run.failed'], 'the fold with the large event is replaced by the failure');
  const failed = h.log.at(-1)!;
  assert.ok(failed.type === 'run.failed');
  assert.equal(failed.data.error.code, 'MUSE_ERR_EVENT_TOO_LARGE');
  assert.equal(failed.data.error.retryable, false);
  const details = failed.data.error.details as { event: string; bytes: number; limitBytes: number };
  assert.equal(details.event, 'step.completed');
  assert.equal(details.limitBytes, 2_000);
  assert.ok(details.bytes > 5_000);
  assert.equal(foldEvents(h.log)!.status, 'failed');
});

test('a run output too large for its run.completed event goes out as its size; the run succeeds with the output its steps gave', async () => {
  const h = harness({ ok: true, artifacts: [] }, { maxEventBytes: 2_000 });
  const two: Command = {
    ...submit,
    definition: { name: 'w', steps: [{ id: 'a', tool: 'shell', command: 'echo a' }, { id: 'b', tool: 'shell', command: 'echo b' }] },
  } as Command;
  await h.handle(two);
  const out = (stepId: string) => ({ exitCode: 0, stdout: stepId.repeat(1_200), stderr: '' });
  await h.handle({ ...completed(1), stepId: 'a', output: out('a') } as Command);
  await h.handle({ ...completed(1), stepId: 'b', output: out('b') } as Command);
  const done = h.log.at(-1)!;
  assert.ok(done.type === 'run.completed', done.type);
  const expected = { a: out('a'), b: out('b') };
  assert.equal(done.data.output, undefined);
  assert.equal(done.data.outputBytes, Buffer.byteLength(JSON.stringify(expected)));
  // Every event stored fits; whoever folds the log (another replica, the gateway's view) has the output.
  const state = foldEvents(h.log)!;
  assert.equal(state.status, 'succeeded');
  assert.deepEqual(state.output, expected);
});

test('a report whose commit the coordinator makes sends it with the lock\'s first try, under the token drawn there; a try that lost commits after the wait', async () => {
  const refs = (stepId: string, token: number) => [{ id: `art_${stepId}_${token}`, name: 'output', version: 1, digest: 'sha256:00', size: 1, mediaType: 'application/json' }];
  const plain: number[] = [];
  const drawnFor: string[] = [];
  /** Whether the next try at the lock wins (false: held elsewhere, the hold waits and draws token 20). */
  let wins = true;
  let counter = 10;
  const locks = {
    withRunLock: async <T>(_id: string, fn: (token: number, signal: AbortSignal) => Promise<T>, draw?: RunLockDraw) => {
      const drawn = draw ? await draw({ key: 'mutex:lock', holder: wins ? 'me' : 'not-me', fence: 'fence' }) : ++counter;
      return fn(drawn ?? 20, new AbortController().signal);
    },
  } as unknown as RunLocks;
  const inlineCommits = {
    commit: async (req: { stepId: string; fencingToken: number }) => (plain.push(req.fencingToken), { ok: true as const, artifacts: refs(req.stepId, req.fencingToken) }),
    drawing: (req: { stepId: string }) => async (lock: { holder: string }) => {
      drawnFor.push(req.stepId);
      return lock.holder === 'me' ? { held: true as const, token: ++counter, response: { ok: true as const, artifacts: refs(req.stepId, counter) } } : { held: false as const };
    },
  } as unknown as CommandHandlerDeps['inlineCommits'];
  const steps = ['a', 'b'].map((id, i) => ({ id, tool: 'shell', command: `echo ${id}`, ...(i ? { needs: ['a'] } : {}) }));
  const h = harness(() => assert.fail('no commit goes to the artifact store'), { locks, inlineCommits });
  await h.handle({ ...submit, definition: { name: 'w', steps } } as Command);
  assert.deepEqual(drawnFor, [], 'a submission has no outputs: a plain draw');
  await h.handle({ ...completed(1), stepId: 'a' } as Command);
  wins = false;
  await h.handle({ ...completed(1), stepId: 'b' } as Command);
  const artifactsOf = (stepId: string) => h.log.flatMap((e) => (e.type === 'step.completed' && e.data.stepId === stepId ? (e.data as { artifacts?: Array<{ id: string }> }).artifacts!.map((a) => a.id) : []));
  assert.deepEqual(drawnFor, ['a', 'b']);
  assert.deepEqual(artifactsOf('a'), ['art_a_12'], 'committed with the try, under the token the commit drew (11 went to the submission)');
  assert.deepEqual(artifactsOf('b'), ['art_b_20'], 'the try lost: committed after the wait, under the token drawn then');
  assert.deepEqual(plain, [20]);
  assert.equal(h.log.at(-1)!.type, 'run.completed');
});
