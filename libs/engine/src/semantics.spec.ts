/** Durable semantics in the pure engine: retries and backoff, when/skip, needs.any, continueOnFailure, run timeout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ErrorBody, RunEvent, StepReport, WorkflowDefinition } from '@muse/contracts';
import { RunTransition, backoffDelay, DEFAULT_BACKOFF, type EngineDefaults } from './transition.js';
import { applyEvent, foldEvents, type RunState } from './state.js';
import { validateWorkflow } from './dag.js';

const defaults: EngineDefaults = { maxAttempts: 3, timeoutMs: 1000 };
const now = () => '2026-01-01T00:00:00.000Z';
const retryable: ErrorBody = { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'exit 1', retryable: true };

function start(def: WorkflowDefinition, input: Record<string, unknown> = {}) {
  const tx = new RunTransition(undefined, now, () => 0.5);
  tx.submit({ kind: 'run-submit', runId: 'r', project: 'p', workflow: { name: def.name, version: 1 }, definition: def, input, submittedAt: now() }, defaults);
  return { state: tx.state, log: [...tx.events] as RunEvent[] };
}

function feed(run: { state: RunState | undefined; log: RunEvent[] }, stepId: string, attempt: number, outcome: StepReport['outcome'], extra: Partial<StepReport> = {}): RunEvent[] {
  const tx = new RunTransition(run.state, now, () => 0.5);
  tx.report({ kind: 'step-report', runId: 'r', project: 'p', stepId, attempt, agentId: 'w', outcome, at: now(), ...extra }, defaults);
  run.state = tx.state;
  run.log.push(...tx.events);
  return tx.events;
}

const shell = (id: string, extra: Record<string, unknown> = {}) => ({ id, tool: 'shell' as const, command: `echo ${id}`, ...extra });
const summary = (evs: RunEvent[]) => evs.map((e) => ('stepId' in e.data ? `${e.type}:${(e.data as { stepId: string }).stepId}` : e.type));

test('backoff grows by factor up to maxMs, and jitter takes a random share off', () => {
  const b = { initialMs: 100, factor: 3, maxMs: 1000, jitter: 0 };
  assert.deepEqual([1, 2, 3, 4].map((n) => backoffDelay(b, n)), [100, 300, 900, 1000]);
  assert.equal(backoffDelay({ ...b, jitter: 0.5 }, 2, () => 1), 150);
  assert.equal(backoffDelay({ ...b, jitter: 0.5 }, 2, () => 0), 300);
  assert.equal(backoffDelay(DEFAULT_BACKOFF, 1), 1000);
});

test('a retried attempt is queued with the step backoff (over the workflow default) recorded in the event', () => {
  const run = start({
    name: 'w',
    retry: { maxAttempts: 5, backoff: { initialMs: 50 } },
    steps: [shell('a', { retry: { maxAttempts: 3, backoff: { initialMs: 200, factor: 2, jitter: 0.5 } } }), shell('b')],
  });
  const evs = feed(run, 'a', 1, 'failed', { error: retryable });
  const q = evs.find((e) => e.type === 'step.queued');
  assert.ok(q && q.type === 'step.queued');
  assert.deepEqual([q.data.attempt, q.data.jobId, q.data.delayMs], [2, 'r.a.2', 150]); // 200 * (1 - 0.5 * 0.5)
  const q3 = feed(run, 'a', 2, 'failed', { error: retryable }).find((e) => e.type === 'step.queued');
  assert.equal(q3?.type === 'step.queued' && q3.data.delayMs, 300);
  assert.deepEqual(summary(feed(run, 'a', 3, 'failed', { error: retryable })), ['step.failed:a', 'run.failed']);
  // b has no retry of its own: the workflow's policy (5 attempts, 50 ms) applies
  const run2 = start({ name: 'w', retry: { maxAttempts: 2, backoff: { initialMs: 50 } }, steps: [shell('b')] });
  const e2 = feed(run2, 'b', 1, 'failed', { error: retryable });
  assert.equal(e2.find((e) => e.type === 'step.queued')?.type === 'step.queued' && (e2.find((e) => e.type === 'step.queued') as { data: { delayMs?: number } }).data.delayMs, 50);
  assert.deepEqual(summary(feed(run2, 'b', 2, 'failed', { error: retryable })), ['step.failed:b', 'run.failed']);
});

test('non-retryable errors (bad input, budget, validation) never retry, whatever the policy', () => {
  const run = start({ name: 'w', steps: [shell('a', { retry: { maxAttempts: 10 } })] });
  const evs = feed(run, 'a', 1, 'failed', { error: { code: 'MUSE_ERR_REQUEST_INVALID', message: 'bad', retryable: false } });
  assert.deepEqual(summary(evs), ['step.failed:a', 'run.failed']);
  assert.equal(run.state!.steps.a!.attempts, 1);
});

test('when: false skips the step; a step whose every need was skipped is skipped; needs.any still runs', () => {
  const run = start(
    {
      name: 'w',
      steps: [
        shell('gate'),
        shell('deploy', { needs: ['gate'], when: 'input.env == "prod" && steps.gate.output.exitCode == 0' }),
        shell('notify', { needs: ['deploy'] }),
        shell('join', { needs: { any: ['deploy'] } }),
        shell('mixed', { needs: ['gate', 'deploy'] }),
      ],
    },
    { env: 'dev' },
  );
  const evs = feed(run, 'gate', 1, 'completed', { output: { exitCode: 0, stdout: '', stderr: '' } });
  assert.deepEqual(summary(evs), ['step.completed:gate', 'step.skipped:deploy', 'step.skipped:notify', 'step.queued:join', 'step.queued:mixed']);
  const skipped = evs.find((e) => e.type === 'step.skipped');
  assert.match(skipped?.type === 'step.skipped' ? skipped.data.reason : '', /when is false/);
  feed(run, 'join', 1, 'completed', { output: {} });
  assert.deepEqual(summary(feed(run, 'mixed', 1, 'completed', { output: {} })), ['step.completed:mixed', 'run.completed']);
  assert.equal(run.state!.status, 'succeeded');
  assert.deepEqual(foldEvents(run.log), run.state);
});

test('when: true runs the step; a when that cannot be evaluated fails the step (not retried)', () => {
  const ok = start({ name: 'w', steps: [shell('a', { when: 'input.n > 3' })] }, { n: 5 });
  assert.equal(ok.state!.steps.a!.status, 'queued');
  const bad = start({ name: 'w', steps: [shell('a', { when: 'input.missing.deep == 1' })] }, {});
  assert.equal(bad.state!.status, 'failed');
  assert.equal(bad.state!.steps.a!.error!.code, 'MUSE_ERR_STEP_CONDITION');
  const notBool = start({ name: 'w', steps: [shell('a', { when: 'input.n' })] }, { n: 5 });
  assert.match(notBool.state!.error!.message, /not a boolean/);
});

test('continueOnFailure: the run goes on past the failed step and succeeds; without it the run fails', () => {
  const run = start({ name: 'w', steps: [shell('flaky', { continueOnFailure: true, retry: { maxAttempts: 1 } }), shell('after', { needs: ['flaky'] })] });
  assert.deepEqual(summary(feed(run, 'flaky', 1, 'failed', { error: retryable })), ['step.failed:flaky', 'step.queued:after']);
  assert.deepEqual(summary(feed(run, 'after', 1, 'completed', { output: {} })), ['step.completed:after', 'run.completed']);
  assert.equal(run.state!.steps.flaky!.status, 'failed');
  assert.equal(run.state!.status, 'succeeded');
});

test('the run timeout fails a running run with MUSE_ERR_RUN_TIMEOUT and is a no-op once finished', () => {
  const run = start({ name: 'w', timeoutMs: 5000, steps: [shell('a')] });
  const tx = new RunTransition(run.state, now);
  tx.timeout({ kind: 'run-timeout', runId: 'r', project: 'p', timeoutMs: 5000 });
  assert.equal(tx.state!.status, 'failed');
  assert.equal(tx.state!.error!.code, 'MUSE_ERR_RUN_TIMEOUT');
  assert.equal(tx.state!.steps.a!.status, 'cancelled');
  const again = new RunTransition(tx.state, now);
  again.timeout({ kind: 'run-timeout', runId: 'r', project: 'p', timeoutMs: 5000 });
  assert.equal(again.events.length, 0);
});

test('a lost or timed-out attempt reported by the coordinator counts as a failed attempt; the late worker report is stale', () => {
  const run = start({ name: 'w', steps: [shell('a', { retry: { maxAttempts: 2, backoff: { initialMs: 0 } } })] });
  feed(run, 'a', 1, 'started');
  const tx = new RunTransition(run.state, now);
  tx.lost('a', 1, { code: 'MUSE_ERR_STEP_LOST', message: 'lost', retryable: true }, defaults);
  run.state = tx.state;
  assert.deepEqual(summary(tx.events), ['step.failed:a', 'step.queued:a']);
  assert.equal(feed(run, 'a', 1, 'completed', { output: {} }).length, 0, 'attempt 1 is over');
  assert.deepEqual(summary(feed(run, 'a', 2, 'completed', { output: {} })), ['step.completed:a', 'run.completed']);
});

test('registration rejects a bad when, a bad retry policy and a bad needs.any with precise paths', () => {
  const res = validateWorkflow({
    name: 'w',
    steps: [
      { id: 'a', tool: 'shell', command: 'x', when: 'input.x &&' },
      { id: 'b', tool: 'shell', command: 'x', when: 'nope == 1' },
      { id: 'c', tool: 'shell', command: 'x', when: '1 + 2' },
    ],
  });
  assert.equal(res.ok, false);
  const issues = (res as { issues: Array<{ path: string; stepId?: string; field?: string; message: string }> }).issues;
  assert.deepEqual(issues.map((i) => [i.path, i.stepId, i.field]), [
    ['steps.0.when', 'a', 'when'],
    ['steps.1.when', 'b', 'when'],
    ['steps.2.when', 'c', 'when'],
  ]);
  const any = validateWorkflow({ name: 'w', steps: [{ id: 'd', tool: 'shell', command: 'x', needs: { any: ['zz'] } }] });
  assert.deepEqual(any.ok ? [] : any.issues.map((i) => [i.path, i.stepId, i.field]), [['steps.0.needs.any.0', 'd', 'needs']]);
  assert.match(issues[2]!.message, /must give a bool, gives int/);
  const retry = validateWorkflow({ name: 'w', steps: [{ id: 'a', tool: 'shell', command: 'x', retry: { maxAttempts: 0, backoff: { factor: 0.5, bogus: 1 } } }] });
  assert.equal(retry.ok, false);
  const paths = (retry as { issues: Array<{ path: string }> }).issues.map((i) => i.path).sort();
  assert.deepEqual(paths, ['steps.0.retry.backoff', 'steps.0.retry.backoff.factor', 'steps.0.retry.maxAttempts']);
});

test('forEach: one job per element, at most `concurrency` open, templates see item and index, output in input order', () => {
  const run = start({
    name: 'w',
    steps: [
      shell('list'),
      { id: 'each', tool: 'shell', command: 'echo {{ index }}={{ item.name }}', needs: ['list'], forEach: 'steps.list.output.stdout.split(",").map(n, {"name": n})', concurrency: 2, retry: { maxAttempts: 2, backoff: { initialMs: 0 } } },
      shell('after', { needs: ['each'], command: 'echo {{ steps.each.output }}' }),
    ],
  });
  const evs = feed(run, 'list', 1, 'completed', { output: { exitCode: 0, stdout: 'a,b,c', stderr: '' } });
  assert.deepEqual(summary(evs), ['step.completed:list', 'step.expanded:each', 'step.queued:each', 'step.queued:each']);
  const queued = evs.filter((e) => e.type === 'step.queued').map((e) => (e.type === 'step.queued' ? [e.data.index, e.data.jobId] : []));
  assert.deepEqual(queued, [[0, 'r.each#0.1'], [1, 'r.each#1.1']]);
  const item = (index: number, attempt: number, outcome: StepReport['outcome'], extra: Partial<StepReport> = {}) => feed(run, 'each', attempt, outcome, { index, ...extra });
  // element 1 finishes first and frees a slot for element 2
  assert.deepEqual(item(1, 1, 'completed', { output: 'B' }).map((e) => e.type === 'step.queued' && e.data.index), [false, 2]);
  // element 0 fails once (retryable) and is queued again as attempt 2
  const retried = item(0, 1, 'failed', { error: retryable });
  assert.deepEqual(retried.map((e) => (e.type === 'step.queued' ? `${e.data.jobId}` : e.type)), ['step.failed', 'r.each#0.2']);
  assert.equal(item(0, 1, 'completed', { output: 'stale' }).length, 0, 'a stale attempt of an element changes nothing');
  item(2, 1, 'completed', { output: 'C' });
  const last = item(0, 2, 'completed', { output: 'A' });
  assert.deepEqual(summary(last), ['step.completed:each', 'step.queued:after']);
  assert.deepEqual(run.state!.steps.each!.output, ['A', 'B', 'C']);
  assert.equal(run.state!.steps.each!.status, 'succeeded');
  assert.deepEqual(foldEvents(run.log), run.state);
});

test('forEach: an element that fails for good fails the step; an empty list succeeds with []; a non-list fails', () => {
  const run = start({ name: 'w', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.xs', retry: { maxAttempts: 1 } }] }, { xs: [1, 2] });
  const evs = feed(run, 'each', 1, 'failed', { index: 1, error: retryable });
  assert.deepEqual(summary(evs), ['step.failed:each', 'run.failed']);
  assert.match(run.state!.steps.each!.error!.message, /element 1/);
  const empty = start({ name: 'w', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.xs' }] }, { xs: [] });
  assert.deepEqual([empty.state!.status, empty.state!.steps.each!.output], ['succeeded', []]);
  const notList = start({ name: 'w', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.xs' }] }, { xs: 'abc' });
  assert.equal(notList.state!.steps.each!.error!.code, 'MUSE_ERR_STEP_CONDITION');
});

test('forEach over 1,000 elements: about three events per element, bounded concurrency, output in order', () => {
  const n = 1000;
  const run = start({ name: 'w', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.xs', concurrency: 50 }] }, { xs: Array.from({ length: n }, (_, i) => i) });
  const t0 = Date.now();
  // finish elements out of order: always the most recently queued open one
  for (let guard = 0; run.state!.status === 'running' && guard < 10 * n; guard++) {
    const items = run.state!.steps.each!.items!;
    const open = items.map((it, i) => [it, i] as const).filter(([it]) => it.status === 'queued');
    assert.ok(open.length <= 50);
    const [, i] = open.at(-1)!;
    feed(run, 'each', 1, 'started', { index: i });
    feed(run, 'each', 1, 'completed', { index: i, output: i * 2 });
  }
  const ms = Date.now() - t0;
  assert.equal(run.state!.status, 'succeeded');
  assert.deepEqual(run.state!.steps.each!.output, Array.from({ length: n }, (_, i) => i * 2));
  assert.ok(run.log.length <= 3 * n + 10, `${run.log.length} events`);
  assert.ok(ms < 20_000, `took ${ms} ms`);
});

test('registration: forEach must give a list, item/index only in forEach steps, concurrency only with forEach', () => {
  const res = validateWorkflow({
    name: 'w',
    steps: [
      { id: 'a', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.n > 1' },
      { id: 'b', tool: 'shell', command: 'echo {{ item }}' },
    ],
  });
  assert.equal(res.ok, false);
  const issues = (res as { issues: Array<{ path: string; message: string }> }).issues;
  assert.deepEqual(issues.map((i) => i.path).sort(), ['steps.0.forEach', 'steps.1.command']);
  assert.match(issues.find((i) => i.path === 'steps.0.forEach')!.message, /must give a list, gives bool/);
  const conc = validateWorkflow({ name: 'w', steps: [{ id: 'c', tool: 'shell', command: 'x', concurrency: 3 }] });
  assert.deepEqual(conc.ok ? [] : conc.issues.map((i) => i.path), ['steps.0.concurrency']);
});

test('compensate: when the run fails, compensations of succeeded steps run one at a time in reverse completion order', () => {
  const undo = (id: string, extra: Record<string, unknown> = {}) => ({ tool: 'shell' as const, command: `undo ${id} {{ steps.${id}.output.stdout }}`, ...extra });
  const run = start({
    name: 'w',
    steps: [
      shell('a', { compensate: undo('a') }),
      shell('b', { compensate: undo('b', { retry: { maxAttempts: 2, backoff: { initialMs: 0 } } }) }),
      shell('c'),
      shell('d', { needs: ['a', 'b', 'c'], retry: { maxAttempts: 1 } }),
      shell('e', { needs: ['a'] }),
    ],
  });
  const out = (x: string) => ({ output: { exitCode: 0, stdout: x, stderr: '' } });
  feed(run, 'b', 1, 'completed', out('B'));
  feed(run, 'a', 1, 'completed', out('A')); // a completes after b: a is undone first
  const evs = feed(run, 'c', 1, 'completed', out('C'));
  assert.deepEqual(summary(evs), ['step.completed:c', 'step.queued:d']);
  const failing = feed(run, 'd', 1, 'failed', { error: retryable });
  assert.deepEqual(summary(failing), ['step.failed:d', 'run.compensating', 'step.queued:a~undo']);
  const comp = failing.find((e) => e.type === 'run.compensating');
  assert.deepEqual(comp?.type === 'run.compensating' && comp.data.order, ['a', 'b']);
  assert.equal(run.state!.steps.e!.status, 'cancelled', 'steps still going are not waited for');
  assert.equal(run.state!.status, 'running');
  assert.equal(feed(run, 'e', 1, 'completed', out('late')).length, 0, 'a late report of a cancelled step is stale');
  assert.equal(feed(run, 'a~undo', 1, 'completed', out('undone a')).map((e) => (e.type === 'step.queued' ? e.data.jobId : e.type)).join(','), 'step.completed,r.b~undo.1');
  // b's compensation fails once (retried under its own policy), then for good: reported, not dropped
  assert.deepEqual(summary(feed(run, 'b~undo', 1, 'failed', { error: retryable })), ['step.failed:b~undo', 'step.queued:b~undo']);
  assert.deepEqual(summary(feed(run, 'b~undo', 2, 'failed', { error: retryable })), ['step.failed:b~undo', 'run.failed']);
  const s = run.state!;
  assert.equal(s.status, 'failed');
  assert.equal(s.error!.code, 'MUSE_ERR_STEP_EXIT_NONZERO');
  assert.match(s.error!.message, /compensated 1 of 2 steps; 1 compensation\(s\) failed/);
  const details = s.error!.details as { stepId: string; compensations: Array<{ stepId: string; status: string; attempts: number }> };
  assert.equal(details.stepId, 'd');
  assert.deepEqual(details.compensations.map((c) => [c.stepId, c.status, c.attempts]), [['a', 'succeeded', 1], ['b', 'failed', 2]]);
  assert.deepEqual(foldEvents(run.log), s);
});

test('compensate: a compensation job renders the undone step output; no compensations means a plain failure', async () => {
  const { buildStepJob } = await import('./transition.js');
  const run = start({ name: 'w', steps: [shell('a', { compensate: { tool: 'shell', command: 'rm {{ steps.a.output.stdout }}' } }), shell('b', { needs: ['a'], retry: { maxAttempts: 1 } })] });
  feed(run, 'a', 1, 'completed', { output: { exitCode: 0, stdout: 'file.txt', stderr: '' } });
  feed(run, 'b', 1, 'failed', { error: retryable });
  const job = buildStepJob(run.state!, 'a~undo', 1, defaults);
  assert.deepEqual(job.ok && [job.job.command, job.job.role, job.job.stepId], ['rm file.txt', 'executor', 'a~undo']);
  const plain = start({ name: 'w', steps: [shell('a', { compensate: { tool: 'shell', command: 'x' } }), shell('b', { retry: { maxAttempts: 1 } })] });
  assert.deepEqual(summary(feed(plain, 'b', 1, 'failed', { error: retryable })), ['step.failed:b', 'run.failed']);
  const v = validateWorkflow({ name: 'w', steps: [{ id: 'a', tool: 'shell', command: 'x', compensate: { tool: 'shell', command: 'undo {{ steps.b.output.stdout }}' } }, shell('b')] });
  assert.deepEqual(v.ok ? [] : v.issues.map((i) => [i.path, i.stepId]), [['steps.0.compensate.command', 'a']]);
  const v2 = validateWorkflow({ name: 'w', steps: [{ id: 'a', tool: 'shell', command: 'x', compensate: { prompt: 'undo' } }] });
  assert.deepEqual(v2.ok ? [] : v2.issues.map((i) => i.path), ['steps.0.compensate.agent']);
});

test('approval gate: the run waits; approve records who and when and goes on; reject fails the step for good', () => {
  const def: WorkflowDefinition = { name: 'w', steps: [shell('build'), { id: 'gate', type: 'approval', needs: ['build'], timeoutMs: 60_000, onTimeout: 'approve' }, shell('ship', { needs: ['gate'] })] };
  const run = start(def);
  const evs = feed(run, 'build', 1, 'completed', { output: {} });
  assert.deepEqual(summary(evs), ['step.completed:build', 'step.waiting:gate']);
  const w = evs[1]!;
  assert.deepEqual(w.type === 'step.waiting' && w.data, { stepId: 'gate', timeoutMs: 60_000, onTimeout: 'approve' });
  assert.equal(run.state!.status, 'waiting');
  const tx = new RunTransition(run.state, now);
  tx.decide({ kind: 'approval-decision', runId: 'r', project: 'p', stepId: 'gate', decision: 'approve', comment: 'lgtm', by: 'key:alice', at: '2026-01-02T00:00:00.000Z' }, defaults);
  assert.deepEqual(summary(tx.events), ['step.completed:gate', 'step.queued:ship']);
  assert.deepEqual(tx.state!.steps.gate!.output, { decision: 'approve', by: 'key:alice', at: '2026-01-02T00:00:00.000Z', comment: 'lgtm' });
  assert.equal(tx.state!.status, 'running');
  const again = new RunTransition(tx.state, now);
  again.decide({ kind: 'approval-decision', runId: 'r', project: 'p', stepId: 'gate', decision: 'reject', by: 'timeout', at: now() }, defaults);
  assert.equal(again.events.length, 0, 'the first decision wins');

  const run2 = start(def);
  feed(run2, 'build', 1, 'completed', { output: {} });
  const rej = new RunTransition(run2.state, now);
  rej.decide({ kind: 'approval-decision', runId: 'r', project: 'p', stepId: 'gate', decision: 'reject', comment: 'no', by: 'key:bob', at: now() }, defaults);
  assert.deepEqual(summary(rej.events), ['step.failed:gate', 'run.failed']);
  assert.equal(rej.state!.error!.code, 'MUSE_ERR_APPROVAL_REJECTED');
  assert.match(rej.state!.error!.message, /rejected by key:bob: no/);
});

test('pause holds new steps (running ones finish) and shows the run waiting; resume queues what became ready', () => {
  const run = start({ name: 'w', steps: [shell('a'), shell('b', { needs: ['a'] })] });
  const p = new RunTransition(run.state, now);
  p.control({ kind: 'run-control', runId: 'r', project: 'p', action: 'pause', reason: 'maintenance' }, defaults);
  assert.deepEqual(summary(p.events), ['run.paused']);
  run.state = p.state;
  assert.equal(run.state!.status, 'waiting');
  assert.deepEqual(summary(feed(run, 'a', 1, 'completed', { output: {} })), ['step.completed:a']);
  assert.equal(run.state!.steps.b!.status, 'pending');
  const r = new RunTransition(run.state, now);
  r.control({ kind: 'run-control', runId: 'r', project: 'p', action: 'resume' }, defaults);
  assert.deepEqual(summary(r.events), ['run.resumed', 'step.queued:b']);
  assert.equal(r.state!.status, 'running');
});

test('retry re-drives a failed run from its failed steps: succeeded outputs are reused, the policy counts afresh, job ids stay unique', () => {
  const run = start({
    name: 'w',
    steps: [
      shell('paid'),
      { id: 'fan', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.xs', retry: { maxAttempts: 2, backoff: { initialMs: 0 } } },
      shell('last', { needs: ['paid', 'fan'], retry: { maxAttempts: 1 } }),
    ],
  }, { xs: ['x', 'y'] });
  feed(run, 'paid', 1, 'completed', { output: 'P' });
  feed(run, 'fan', 1, 'completed', { index: 0, output: 'X' });
  feed(run, 'fan', 1, 'failed', { index: 1, error: retryable });
  feed(run, 'fan', 2, 'failed', { index: 1, error: retryable });
  assert.equal(run.state!.status, 'failed');
  const tx = new RunTransition(run.state, now);
  tx.control({ kind: 'run-control', runId: 'r', project: 'p', action: 'retry' }, defaults);
  run.state = tx.state;
  run.log.push(...tx.events);
  assert.deepEqual(tx.events.map((e) => (e.type === 'step.queued' ? `${e.data.jobId}${e.data.delayMs ? '+delay' : ''}` : e.type)), ['run.retried', 'r.fan#1.3']);
  const retried = tx.events[0]!;
  assert.deepEqual(retried.type === 'run.retried' && retried.data.steps, ['fan', 'last']);
  assert.equal(run.state!.status, 'running');
  assert.equal(run.state!.steps.paid!.output, 'P', 'the paid step is not run again');
  assert.deepEqual(run.state!.steps.fan!.itemCounts, { succeeded: 1, open: 1, waiting: 0, firstPending: 2 }, 'the succeeded element is kept, the other queued again');
  // attempt 3 is the first of the re-drive: one more failure is allowed by maxAttempts 2
  assert.deepEqual(summary(feed(run, 'fan', 3, 'failed', { index: 1, error: retryable })), ['step.failed:fan', 'step.queued:fan']);
  assert.deepEqual(summary(feed(run, 'fan', 4, 'completed', { index: 1, output: 'Y' })), ['step.completed:fan', 'step.queued:last']);
  assert.deepEqual(run.state!.steps.fan!.output, ['X', 'Y']);
  assert.deepEqual(summary(feed(run, 'last', 1, 'completed', { output: 'L' })), ['step.completed:last', 'run.completed']);
  assert.deepEqual(foldEvents(run.log), run.state);
  // a succeeded run cannot be retried
  const no = new RunTransition(run.state, now);
  no.control({ kind: 'run-control', runId: 'r', project: 'p', action: 'retry' }, defaults);
  assert.equal(no.events.length, 0);
});

test('cancel with compensate: the succeeded steps are compensated, then the run ends cancelled; a plain cancel does not compensate', () => {
  const def: WorkflowDefinition = { name: 'w', steps: [shell('a', { compensate: { tool: 'shell', command: 'undo a' } }), shell('b', { needs: ['a'] })] };
  const run = start(def);
  feed(run, 'a', 1, 'completed', { output: {} });
  const tx = new RunTransition(run.state, now);
  tx.cancel({ kind: 'run-cancel', runId: 'r', project: 'p', reason: 'stop', compensate: true }, defaults);
  assert.deepEqual(summary(tx.events), ['run.compensating', 'step.queued:a~undo']);
  assert.equal(tx.state!.steps.b!.status, 'cancelled');
  run.state = tx.state;
  run.log.push(...tx.events);
  assert.deepEqual(summary(feed(run, 'a~undo', 1, 'completed', { output: {} })), ['step.completed:a~undo', 'run.cancelled']);
  assert.equal(run.state!.status, 'cancelled');
  assert.match(run.state!.error!.message, /stop \(compensated 1 of 1 steps\)/);
  assert.deepEqual(foldEvents(run.log), run.state);
  const plain = start(def);
  feed(plain, 'a', 1, 'completed', { output: {} });
  const c = new RunTransition(plain.state, now);
  c.cancel({ kind: 'run-cancel', runId: 'r', project: 'p' }, defaults);
  assert.deepEqual(summary(c.events), ['run.cancelled']);
});

test('a run carries its priority from submission into its log and state (the coordinator queues its jobs with it)', () => {
  const tx = new RunTransition(undefined, now);
  tx.submit({ kind: 'run-submit', runId: 'r', project: 'p', workflow: { name: 'w', version: 1 }, definition: { name: 'w', steps: [shell('a')] }, input: {}, priority: 2, submittedAt: now() }, defaults);
  const created = tx.events[0]!;
  assert.equal(created.type === 'run.created' && created.data.priority, 2);
  assert.equal(tx.state!.priority, 2);
  assert.equal(foldEvents(tx.events)!.priority, 2);
});

test('a rerun reuses the outputs it was given (step.reused) and runs the rest', () => {
  const tx = new RunTransition(undefined, now);
  const def: WorkflowDefinition = { name: 'w', steps: [shell('a'), shell('b', { needs: ['a'], command: 'echo {{ steps.a.output }}' })] };
  tx.submit({ kind: 'run-submit', runId: 'r2', project: 'p', workflow: { name: 'w', version: 1 }, definition: def, input: {}, rerunOf: { runId: 'r1', fromStep: 'b', outputs: { a: 'A' } }, submittedAt: now() }, defaults);
  assert.deepEqual(summary(tx.events), ['run.created', 'run.started', 'step.reused:a', 'step.queued:b']);
  assert.deepEqual(tx.state!.rerunOf, { runId: 'r1', fromStep: 'b' });
  assert.deepEqual([tx.state!.steps.a!.status, tx.state!.steps.a!.attempts, tx.state!.steps.a!.output], ['succeeded', 0, 'A']);
  assert.deepEqual(foldEvents(tx.events), tx.state);
});

test('a crash between appends: the redelivered command completes the decisions that were not appended', () => {
  const def: WorkflowDefinition = { name: 'w', steps: [shell('a'), shell('b', { needs: ['a'] }), shell('c', { needs: ['a'] })] };
  // the submission: only run.created reached the log
  const t0 = new RunTransition(undefined, now);
  const cmd = { kind: 'run-submit' as const, runId: 'r', project: 'p', workflow: { name: 'w', version: 1 }, definition: def, input: {}, submittedAt: now() };
  t0.submit(cmd, defaults);
  const created = foldEvents(t0.events.slice(0, 1))!;
  const again = new RunTransition(created, now);
  again.submit(cmd, defaults);
  assert.deepEqual(summary(again.events), ['run.started', 'step.queued:a']);
  // a's completion: only step.completed reached the log, not the queueing of b and c
  const t1 = new RunTransition(again.state, now);
  const report: StepReport = { kind: 'step-report', runId: 'r', project: 'p', stepId: 'a', attempt: 1, agentId: 'w', outcome: 'completed', at: now(), output: {} };
  t1.report(report, defaults);
  assert.deepEqual(summary(t1.events), ['step.completed:a', 'step.queued:b', 'step.queued:c']);
  const partial = applyEvent(again.state, t1.events[0]!);
  const redelivered = new RunTransition(partial, now);
  redelivered.report(report, defaults);
  assert.deepEqual(summary(redelivered.events), ['step.queued:b', 'step.queued:c']);
  // and on a settled state the same redelivery emits nothing
  const settled = new RunTransition(redelivered.state, now);
  settled.report(report, defaults);
  assert.equal(settled.events.length, 0);
});
