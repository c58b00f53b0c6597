/** Budgets (`budget.waiting`, `budget.raised`), spend in the view, and replays (`replayOf`, divergence) in the engine. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promptTemplateHash, type RunSubmitCommand, type StepReport, type WorkflowDefinition } from '@muse/contracts';
import { buildStepJob, RunTransition, type EngineDefaults } from './transition.js';
import { foldEvents, type RunState } from './state.js';
import { toRunView } from './view.js';

const defaults: EngineDefaults = { maxAttempts: 3, timeoutMs: 1000 };
let clock = 0;
const now = () => new Date(Date.UTC(2026, 0, 1, 0, 0, clock++)).toISOString();

function definition(onBudgetExceeded?: 'fail' | 'wait'): WorkflowDefinition {
  return {
    name: 'budgeted',
    budget: { maxTokens: 100, maxCost: 1, ...(onBudgetExceeded ? { onBudgetExceeded } : {}) },
    steps: [
      { id: 'a', agent: 'reviewer', prompt: 'Plan {{ input.repo }}', temperature: 0.3 },
      { id: 'fan', agent: 'reviewer', prompt: 'Item {{ item }}', forEach: 'input.items', concurrency: 2, needs: ['a'], seed: 7 },
    ],
  };
}

function submitted(def: WorkflowDefinition, extra: Partial<RunSubmitCommand> = {}): RunTransition {
  const tx = new RunTransition(undefined, now);
  tx.submit({ kind: 'run-submit', runId: 'run_b', project: 'p', workflow: { name: def.name, version: 3 }, definition: def, input: { repo: 'acme', items: ['x', 'y'] }, submittedAt: now(), ...extra }, defaults);
  return tx;
}

function report(state: RunState, stepId: string, attempt: number, outcome: StepReport['outcome'], extra: Partial<StepReport> = {}): RunTransition {
  const tx = new RunTransition(state, now);
  tx.report({ kind: 'step-report', runId: 'run_b', project: 'p', stepId, attempt, agentId: 'w1', outcome, at: now(), ...extra }, defaults);
  return tx;
}

const exceeded = { code: 'MUSE_ERR_BUDGET_EXCEEDED', message: 'run run_b has used its token budget', retryable: false };
const agentOutput = (tokens: number, cost: number) => ({ text: 't', model: 'm', provider: 'oa', usage: { inputTokens: tokens - 1, outputTokens: 1 }, cost, call: { requestHash: 'sha256:x', seed: 1, temperature: 0, topP: 1 } });

test('agent jobs carry sampling parameters, the template hash, the definition version and the budget in force', () => {
  const tx = submitted(definition());
  const job = buildStepJob(tx.state!, 'a', 1, defaults);
  assert.ok(job.ok);
  assert.equal(job.job.temperature, 0.3);
  assert.equal(job.job.topP, undefined);
  assert.equal(job.job.seed, undefined, 'unpinned: the worker derives it');
  assert.equal(job.job.promptTemplateHash, promptTemplateHash('Plan {{ input.repo }}'));
  assert.equal(job.job.definitionVersion, 3);
  assert.deepEqual(job.job.budget, { maxTokens: 100, maxCost: 1 });
  assert.equal(job.job.replay, undefined);
});

test('fail (the default): a budget refusal fails the step for good and the run with it', () => {
  let tx = submitted(definition());
  tx = report(tx.state!, 'a', 1, 'failed', { error: exceeded });
  assert.deepEqual(tx.events.map((e) => e.type), ['step.failed', 'run.failed']);
  assert.equal(tx.state!.error?.code, 'MUSE_ERR_BUDGET_EXCEEDED');
});

test('wait: the step waits (run waiting, with the reason) until budget.raised queues its next attempt with the raised limit', () => {
  let tx = submitted(definition('wait'));
  const log = [...tx.events];
  tx = report(tx.state!, 'a', 1, 'failed', { error: exceeded });
  log.push(...tx.events);
  assert.deepEqual(tx.events.map((e) => e.type), ['budget.waiting']);
  let view = toRunView(tx.state!);
  assert.equal(view.status, 'waiting');
  assert.match(view.steps[0]!.reason!, /^waiting for budget/);
  assert.match(view.reason!, /step "a" \(waiting for budget/);

  const raise = new RunTransition(tx.state, now);
  raise.raiseBudget({ kind: 'run-budget', runId: 'run_b', project: 'p', addTokens: 50 }, defaults);
  assert.deepEqual(raise.events.map((e) => [e.type, e.type === 'step.queued' ? e.data.attempt : undefined]), [['budget.raised', undefined], ['step.queued', 2]]);
  const q = raise.events[1]!;
  assert.equal(q.type === 'step.queued' ? q.data.delayMs : 'x', undefined, 'no retry backoff after a raise');
  const job = buildStepJob(raise.state!, 'a', 2, defaults);
  assert.ok(job.ok);
  assert.deepEqual(job.job.budget, { maxTokens: 150, maxCost: 1, onBudgetExceeded: 'wait' });
  view = toRunView(raise.state!);
  assert.equal(view.status, 'running');
  assert.deepEqual(view.spend?.limit, { maxTokens: 150, maxCost: 1 });

  // A raise of nothing, or of a finished run, is a no-op; folding the log again gives the same state.
  const none = new RunTransition(raise.state, now);
  none.raiseBudget({ kind: 'run-budget', runId: 'run_b', project: 'p' }, defaults);
  assert.equal(none.events.length, 0);
  assert.deepEqual(foldEvents([...log, ...raise.events]), raise.state);
});

test('wait in a forEach: the waiting elements are raised together, and spend adds up per step, agent and provider', () => {
  let tx = submitted(definition('wait'));
  const log = [...tx.events];
  const push = (t: RunTransition) => (log.push(...t.events), t);
  tx = push(report(tx.state!, 'a', 1, 'completed', { output: agentOutput(10, 0.01) }));
  assert.ok(tx.events.some((e) => e.type === 'step.expanded'));
  tx = push(report(tx.state!, 'fan', 1, 'failed', { index: 0, error: exceeded }));
  tx = push(report(tx.state!, 'fan', 1, 'failed', { index: 1, error: exceeded }));
  let view = toRunView(tx.state!);
  assert.equal(view.status, 'waiting');
  assert.match(view.steps[1]!.reason!, /^2 element\(s\) waiting for budget/);
  assert.deepEqual(tx.state!.steps.fan!.itemCounts, { succeeded: 0, open: 0, waiting: 2, firstPending: 2 }, 'waiting elements are not open');
  const raise = new RunTransition(tx.state, now);
  raise.raiseBudget({ kind: 'run-budget', runId: 'run_b', project: 'p', addTokens: 10 }, defaults);
  push(raise);
  assert.deepEqual(raise.events.filter((e) => e.type === 'step.queued').map((e) => e.type === 'step.queued' && [e.data.index, e.data.attempt]), [[0, 2], [1, 2]]);
  tx = raise;
  assert.deepEqual(tx.state!.steps.fan!.itemCounts, { succeeded: 0, open: 2, waiting: 0, firstPending: 2 });
  tx = push(report(tx.state!, 'fan', 2, 'completed', { index: 0, output: agentOutput(5, 0.002) }));
  tx = push(report(tx.state!, 'fan', 2, 'completed', { index: 1, output: agentOutput(5, 0.002) }));
  assert.equal(tx.state!.status, 'succeeded');
  view = toRunView(tx.state!);
  assert.equal(view.spend!.tokens, 20);
  assert.ok(Math.abs(view.spend!.cost - 0.014) < 1e-12);
  assert.deepEqual(view.spend!.byStep, { a: { tokens: 10, cost: 0.01 }, fan: { tokens: 10, cost: 0.004 } });
  assert.deepEqual(Object.keys(view.spend!.byProvider), ['oa']);
  assert.deepEqual(Object.keys(view.spend!.byAgent), ['w1']);
  assert.deepEqual(foldEvents(log), tx.state);
});

test("a failed attempt's spend counts in the run's spend, by step, agent and provider; folding the log again gives the same", () => {
  let tx = submitted(definition('wait'));
  const log = [...tx.events];
  const push = (t: RunTransition) => (log.push(...t.events), t);
  // A tool loop ran past maxToolCalls after spending; then a budget refusal after earlier calls; then a completion.
  const tooMany = { code: 'MUSE_ERR_TOOL_CALLS_EXCEEDED', message: 'too many', retryable: true };
  tx = push(report(tx.state!, 'a', 1, 'failed', { error: tooMany, spent: { inputTokens: 6, outputTokens: 2, cost: 0.003, provider: 'an' } }));
  const failed = tx.events.find((e) => e.type === 'step.failed');
  assert.deepEqual(failed?.type === 'step.failed' && failed.data.spent, { inputTokens: 6, outputTokens: 2, cost: 0.003, provider: 'an' });
  tx = push(report(tx.state!, 'a', 2, 'failed', { error: exceeded, spent: { inputTokens: 3, outputTokens: 1 } }));
  assert.deepEqual(tx.events.map((e) => e.type), ['budget.waiting']);
  const raise = new RunTransition(tx.state, now);
  raise.raiseBudget({ kind: 'run-budget', runId: 'run_b', project: 'p', addTokens: 50 }, defaults);
  tx = push(raise);
  tx = push(report(tx.state!, 'a', 3, 'completed', { output: agentOutput(10, 0.01) }));
  const view = toRunView(tx.state!);
  assert.equal(view.spend!.tokens, 8 + 4 + 10);
  assert.ok(Math.abs(view.spend!.cost - 0.013) < 1e-12);
  assert.deepEqual(view.spend!.byStep, { a: view.spend!.byStep.a });
  assert.equal(view.spend!.byStep.a!.tokens, 22);
  assert.deepEqual(view.spend!.byAgent, { w1: view.spend!.byStep.a });
  assert.deepEqual(Object.fromEntries(Object.entries(view.spend!.byProvider).map(([k, v]) => [k, v.tokens])), { an: 8, unknown: 4, oa: 10 });
  // A failure that spent nothing adds nothing.
  const quiet = report(tx.state!, 'fan', 1, 'failed', { index: 0, error: tooMany });
  assert.equal(toRunView(quiet.state!).spend!.tokens, 22);
  assert.deepEqual(foldEvents(log), tx.state);
});

test('a replay carries the recording of each step key to its jobs, spends nothing, and the view names the first divergence', () => {
  const def = definition();
  let tx = submitted(def, { replayOf: { runId: 'run_orig', recordings: { a: 'art_a', 'fan#1': 'art_f1' } } });
  const job = buildStepJob(tx.state!, 'a', 1, defaults);
  assert.ok(job.ok);
  assert.deepEqual(job.job.replay, { runId: 'run_orig', recording: 'art_a' });
  tx = report(tx.state!, 'a', 1, 'completed', { output: { ...agentOutput(10, 0.01), call: { requestHash: 'sha256:x', seed: 1, temperature: 0, topP: 1, replayed: true } } });
  const f0 = buildStepJob(tx.state!, 'fan', 1, defaults, 0);
  const f1 = buildStepJob(tx.state!, 'fan', 1, defaults, 1);
  assert.ok(f0.ok && f1.ok);
  assert.deepEqual(f0.job.replay, { runId: 'run_orig' }, 'no recording for this element');
  assert.deepEqual(f1.job.replay, { runId: 'run_orig', recording: 'art_f1' });
  assert.equal(f1.job.seed, 7, 'a pinned seed stays');
  assert.equal(toRunView(tx.state!).spend?.tokens ?? 0, 0, 'replayed calls spent nothing');
  const diverged = { code: 'MUSE_ERR_REPLAY_DIVERGED', message: 'differs', retryable: false, details: { stepId: 'fan', expectedHash: 'sha256:a', actualHash: 'sha256:b', diff: [{ field: 'promptTemplateHash' }] } };
  tx = report(tx.state!, 'fan', 1, 'failed', { index: 0, error: diverged });
  const view = toRunView(tx.state!);
  assert.equal(view.status, 'failed');
  assert.equal(view.replay?.of, 'run_orig');
  assert.deepEqual(view.replay?.divergence, { stepId: 'fan', index: 0, expectedHash: 'sha256:a', actualHash: 'sha256:b', diff: [{ field: 'promptTemplateHash' }] });
});
