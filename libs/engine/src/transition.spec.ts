import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunSubmitCommand, StepReport, WorkflowDefinition } from '@muse/contracts';
import { RunTransition, runAgent, type EngineDefaults } from './transition.js';
import { applyEvent, foldEvents, type RunState } from './state.js';
import { toRunView } from './view.js';

const defaults: EngineDefaults = { maxAttempts: 2, timeoutMs: 1000 };
const def: WorkflowDefinition = {
  name: 'diamond',
  steps: [
    { id: 'plan', agent: 'orchestrator', prompt: 'Plan {{ input.repo }}' },
    { id: 'lint', tool: 'shell', command: 'echo {{ input.repo }}', needs: ['plan'] },
    { id: 'sec', agent: 'reviewer', prompt: 'Check {{ steps.plan.output.text }}', needs: ['plan'] },
    { id: 'review', agent: 'reviewer', prompt: '{{ steps.lint.output.stdout }} {{ steps.sec.output.text }}', needs: ['lint', 'sec'] },
  ],
  output: '{{ steps.review.output.text }}',
};
const submit: RunSubmitCommand = {
  kind: 'run-submit', runId: 'run_1', project: 'p', workflow: { name: 'diamond', version: 1 }, definition: def,
  input: { repo: 'acme' }, submittedAt: '2026-01-01T00:00:00.000Z',
};
let clock = 0;
const now = () => new Date(Date.UTC(2026, 0, 1, 0, 0, clock++)).toISOString();

function report(stepId: string, attempt: number, outcome: StepReport['outcome'], extra: Partial<StepReport> = {}): StepReport {
  return { kind: 'step-report', runId: 'run_1', project: 'p', stepId, attempt, agentId: 'w1', outcome, at: now(), ...extra };
}

function step(state: RunState | undefined, r: StepReport) {
  const tx = new RunTransition(state, now);
  tx.report(r, defaults);
  return tx;
}

test('submission creates, starts and queues only the steps with no needs', () => {
  const tx = new RunTransition(undefined, now);
  tx.submit(submit, defaults);
  assert.deepEqual(tx.events.map((e) => e.type), ['run.created', 'run.started', 'step.queued']);
  assert.deepEqual(tx.events.map((e) => e.seq), [1, 2, 3]);
  const q = tx.events[2]!;
  assert.equal(q.type === 'step.queued' && q.data.jobId, 'run_1.plan.1');
  assert.equal(tx.state!.status, 'running');
  // a second submission of the same run is a no-op
  const again = new RunTransition(tx.state, now);
  again.submit(submit, defaults);
  assert.equal(again.events.length, 0);
});

test('a run goes through the diamond: fan-out after plan, join before review, output rendered', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  let s = t0.state;
  const log = [...t0.events];
  const apply = (r: StepReport) => {
    const tx = step(s, r);
    s = tx.state;
    log.push(...tx.events);
    return tx.events.map((e) => (e.type === 'step.queued' ? `queued:${e.data.stepId}` : e.type));
  };
  assert.deepEqual(apply(report('plan', 1, 'started')), ['step.started']);
  assert.deepEqual(apply(report('plan', 1, 'completed', { output: { text: 'P' } })), ['step.completed', 'queued:lint', 'queued:sec']);
  assert.deepEqual(apply(report('lint', 1, 'completed', { output: { stdout: 'L', exitCode: 0, stderr: '' } })), ['step.completed']);
  assert.deepEqual(apply(report('sec', 1, 'completed', { output: { text: 'S' } })), ['step.completed', 'queued:review']);
  assert.deepEqual(apply(report('review', 1, 'completed', { output: { text: 'R' } })), ['step.completed', 'run.completed']);
  assert.equal(s!.status, 'succeeded');
  assert.equal(s!.output, 'R');
  // the log folds back to the same state, with seq 1..n and no gaps
  assert.deepEqual(log.map((e) => e.seq), log.map((_, i) => i + 1));
  assert.deepEqual(foldEvents(log), s);
});

test('a run.completed that carries only its output size folds to the output the steps give, rendered or by step', () => {
  for (const definition of [def, { ...def, output: undefined }]) {
    const t0 = new RunTransition(undefined, now);
    t0.submit({ ...submit, definition }, defaults);
    let s = t0.state;
    const log = [...t0.events];
    for (const r of [
      report('plan', 1, 'completed', { output: { text: 'P' } }),
      report('lint', 1, 'completed', { output: { stdout: 'L', exitCode: 0, stderr: '' } }),
      report('sec', 1, 'completed', { output: { text: 'S' } }),
      report('review', 1, 'completed', { output: { text: 'R' } }),
    ]) {
      const tx = step(s, r);
      s = tx.state;
      log.push(...tx.events);
    }
    const done = log.at(-1)!;
    assert.equal(done.type, 'run.completed');
    const expected = definition.output === undefined ? { plan: { text: 'P' }, lint: { stdout: 'L', exitCode: 0, stderr: '' }, sec: { text: 'S' }, review: { text: 'R' } } : 'R';
    assert.deepEqual(s!.output, expected);
    // As the coordinator appends it when the output is too large for the event.
    const sized = { ...done, data: { outputBytes: 1_234_567 } } as typeof done;
    const folded = foldEvents([...log.slice(0, -1), sized])!;
    assert.equal(folded.status, 'succeeded');
    assert.deepEqual(folded.output, expected);
    assert.deepEqual(folded, s);
  }
});

test('a fan-out keeps its elements’ artifacts on them and gathers them on the step, in element order, when it ends', () => {
  const fanDef: WorkflowDefinition = { name: 'fan', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.xs' }] };
  const t0 = new RunTransition(undefined, now);
  t0.submit({ ...submit, definition: fanDef, input: { xs: ['x', 'y', 'z'] } }, defaults);
  let s = t0.state;
  const log = [...t0.events];
  const art = (name: string) => ({ id: `art_${name}`, name, version: 1, digest: `sha256:${name}`, size: 1, mediaType: 'text/plain' });
  for (const [index, name] of [[2, 'c'], [0, 'a'], [1, 'b']] as const) {
    assert.deepEqual(s!.steps.each!.artifacts, [], 'nothing gathered while the fan-out runs');
    const tx = new RunTransition(s, now);
    tx.report(report('each', 1, 'completed', { index, output: { stdout: name, exitCode: 0, stderr: '' } }), defaults, [art(name)]);
    s = tx.state;
    log.push(...tx.events);
  }
  assert.equal(s!.steps.each!.status, 'succeeded');
  assert.deepEqual(s!.steps.each!.artifacts.map((a) => a.name), ['a', 'b', 'c']);
  assert.deepEqual(s!.steps.each!.itemCounts, { succeeded: 3, open: 0, waiting: 0, firstPending: 3 });
  assert.deepEqual(foldEvents(log), s);
});

test('a transition never changes the state it started from, nor a fold its initial state, though each changes its own copies in place', () => {
  const fanDef: WorkflowDefinition = { name: 'fan', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: 'input.xs', concurrency: 2 }] };
  const t0 = new RunTransition(undefined, now);
  t0.submit({ ...submit, definition: fanDef, input: { xs: ['x', 'y', 'z', 'w'] } }, defaults);
  const start = t0.state!;
  const snapshot = structuredClone(start);
  // Several events on the same elements within one transition: started, completed, the next queued; a retry.
  const tx = new RunTransition(start, now);
  tx.report(report('each', 1, 'started', { index: 0 }), defaults);
  tx.report(report('each', 1, 'completed', { index: 0, output: { stdout: 'x', exitCode: 0, stderr: '' } }), defaults);
  tx.report(report('each', 1, 'failed', { index: 1, error: { code: 'MUSE_ERR_TOOL_FAILED', message: 'once', retryable: true } }), defaults);
  assert.deepEqual(start, snapshot, 'the state the transition started from');
  const mid = tx.state!;
  const midSnapshot = structuredClone(mid);
  const next = new RunTransition(mid, now);
  next.report(report('each', 1, 'completed', { index: 2, startedAt: now(), output: { stdout: 'z', exitCode: 0, stderr: '' } }), defaults);
  assert.deepEqual(mid, midSnapshot, 'a finished transition’s state, under the next transition');
  const log = [...t0.events, ...tx.events, ...next.events];
  assert.deepEqual(foldEvents(log), next.state);
  assert.deepEqual(foldEvents([...tx.events, ...next.events], start), next.state);
  assert.deepEqual(start, snapshot, 'a fold’s initial state');
  assert.deepEqual(next.state!.steps.each!.itemCounts, { succeeded: 2, open: 2, waiting: 0, firstPending: 4 });
});

test('fail ends a run still going with the error given; a finished run stays as it is', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const tx = new RunTransition(t0.state, now);
  const error = { code: 'MUSE_ERR_EVENT_TOO_LARGE', message: 'too large', retryable: false };
  tx.fail(error);
  assert.deepEqual(tx.events.map((e) => e.type), ['run.failed']);
  assert.equal(tx.state!.status, 'failed');
  assert.deepEqual(tx.state!.error, error);
  const again = new RunTransition(tx.state, now);
  again.fail(error);
  assert.equal(again.events.length, 0);
  const none = new RunTransition(undefined, now);
  none.fail(error);
  assert.equal(none.events.length, 0);
});

test('folding a duplicated event is a no-op', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const t1 = step(t0.state, report('plan', 1, 'completed', { output: { text: 'P' } }));
  const log = [...t0.events, ...t1.events];
  const once = foldEvents(log);
  const twice = foldEvents([...log.slice(0, 3), log[2]!, ...log.slice(3), log[4]!, log[0]!]);
  assert.deepEqual(twice, once);
  assert.equal(applyEvent(once, log[3]!), once);
});

test('stale and duplicate reports change nothing', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const done = step(t0.state, report('plan', 1, 'completed', { output: { text: 'P' } }));
  assert.equal(step(done.state, report('plan', 1, 'completed', { output: { text: 'other' } })).events.length, 0);
  assert.equal(step(done.state, report('plan', 1, 'started')).events.length, 0);
  assert.equal(step(done.state, report('plan', 7, 'failed')).events.length, 0);
  assert.equal(step(done.state, report('ghost', 1, 'completed')).events.length, 0);
});

test('a retryable failure queues the next attempt; the last attempt fails the run', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const err = { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'exit 1', retryable: true };
  const f1 = step(t0.state, report('plan', 1, 'failed', { error: err }));
  assert.deepEqual(f1.events.map((e) => e.type), ['step.failed', 'step.queued']);
  assert.equal(f1.state!.steps.plan!.attempts, 2);
  const f2 = step(f1.state, report('plan', 2, 'failed', { error: err }));
  assert.deepEqual(f2.events.map((e) => e.type), ['step.failed', 'run.failed']);
  assert.equal(f2.state!.status, 'failed');
  assert.equal(f2.state!.error!.code, 'MUSE_ERR_STEP_EXIT_NONZERO');
  assert.equal(f2.state!.steps.lint!.status, 'cancelled');
});

test('a non-retryable failure fails at once', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const f = step(t0.state, report('plan', 1, 'failed', { error: { code: 'MUSE_ERR_STEP_TEMPLATE', message: 'x', retryable: false } }));
  assert.deepEqual(f.events.map((e) => e.type), ['step.failed', 'run.failed']);
});

test('a template that cannot render fails the step without queueing it', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit({ ...submit, input: {} }, defaults);
  assert.deepEqual(t0.events.map((e) => e.type), ['run.created', 'run.started', 'step.failed', 'run.failed']);
  assert.match(t0.state!.error!.message, /input.repo/);
});

test('cancel ends the run and cancels open steps; cancelling a finished run does nothing', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const c = new RunTransition(t0.state, now);
  c.cancel({ kind: 'run-cancel', runId: 'run_1', project: 'p', reason: 'user' });
  assert.equal(c.state!.status, 'cancelled');
  assert.equal(c.state!.steps.plan!.status, 'cancelled');
  const c2 = new RunTransition(c.state, now);
  c2.cancel({ kind: 'run-cancel', runId: 'run_1', project: 'p' });
  assert.equal(c2.events.length, 0);
});

test('the view lists steps in definition order with status and attempts', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const v = toRunView(t0.state!);
  assert.deepEqual(v.steps.map((s) => [s.id, s.status, s.attempts]), [['plan', 'queued', 1], ['lint', 'pending', 0], ['sec', 'pending', 0], ['review', 'pending', 0]]);
  assert.equal(v.seq, 3);
});

test('runAgent: the agent of the latest started or finished step, never the coordinator or a child run', () => {
  const step = (id: string, agentId: string | undefined, at: string, role = 'executor') => ({ id, role, status: 'succeeded', attempts: 1, artifacts: [], finishedAt: at, ...(agentId ? { agentId } : {}) });
  const state = (steps: ReturnType<typeof step>[]) => ({ steps: Object.fromEntries(steps.map((s) => [s.id, s])) }) as unknown as RunState;
  assert.equal(runAgent(state([step('a', 'w1', '2026-01-01T00:00:01Z'), step('b', 'w2', '2026-01-01T00:00:02Z')])), 'w2');
  assert.equal(runAgent(state([step('a', 'w1', '2026-01-01T00:00:01Z'), step('b', 'coordinator', '2026-01-01T00:00:03Z'), step('c', 'run_child', '2026-01-01T00:00:04Z', 'workflow')])), 'w1');
  assert.equal(runAgent(state([step('a', undefined, '2026-01-01T00:00:01Z')])), undefined);
});

test('a final report carrying startedAt for a queued step records step.started at that time, then the outcome', () => {
  const t0 = new RunTransition(undefined, now);
  t0.submit(submit, defaults);
  const done = step(t0.state, report('plan', 1, 'completed', { output: { text: 'P' }, startedAt: '2026-01-01T00:00:00.500Z' }));
  assert.deepEqual(done.events.map((e) => e.type), ['step.started', 'step.completed', 'step.queued', 'step.queued']);
  const started = done.events[0]!;
  assert.equal(started.type === 'step.started' && started.data.startedAt, '2026-01-01T00:00:00.500Z');
  assert.equal(done.state!.steps.plan!.startedAt, '2026-01-01T00:00:00.500Z');
  assert.equal(done.state!.steps.plan!.agentId, 'w1');
  // The same report again (a redelivery) adds nothing; on a step already running, startedAt is ignored.
  assert.equal(step(done.state, report('plan', 1, 'completed', { output: { text: 'P' }, startedAt: '2026-01-01T00:00:00.500Z' })).events.filter((e) => e.type === 'step.started').length, 0);
  const running = step(t0.state, report('plan', 1, 'started'));
  assert.deepEqual(step(running.state, report('plan', 1, 'failed', { error: { code: 'MUSE_ERR_INTERNAL', message: 'x', retryable: true }, startedAt: '2026-01-01T00:00:00.500Z' })).events.map((e) => e.type).slice(0, 1), ['step.failed']);
  assert.deepEqual(foldEvents([...t0.events, ...done.events]), done.state);
});
