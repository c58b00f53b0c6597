/**
 * Property-based tests (fast-check) of the fold and the decisions: whatever
 * order concurrent steps report in, and however often a report or an event
 * is redelivered, the run ends in the same state.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { ErrorBody, RunEvent, StepReport, WorkflowDefinition } from '@muse/contracts';
import { RunTransition, type EngineDefaults } from './transition.js';
import { countItems, foldEvents, type RunState } from './state.js';

const defaults: EngineDefaults = { maxAttempts: 3, timeoutMs: 1000 };
const now = () => '2026-01-01T00:00:00.000Z';
const sh = (id: string, extra: Record<string, unknown> = {}) => ({ id, tool: 'shell' as const, command: `echo ${id}`, ...extra });

/** Branches, a join, a skip-tolerant join, retries with backoff, a step allowed to fail, a fan-out and compensations. */
const def: WorkflowDefinition = {
  name: 'prop',
  retry: { maxAttempts: 3, backoff: { initialMs: 10, jitter: 0 } },
  steps: [
    sh('a', { compensate: { tool: 'shell', command: 'undo a' } }),
    sh('b', { needs: ['a'], when: 'input.flag' }),
    sh('c', { needs: ['a'] }),
    sh('d', { needs: ['b', 'c'] }),
    sh('e', { needs: { any: ['b'] } }),
    sh('f', { needs: ['c'], continueOnFailure: true }),
    sh('h', { needs: ['a'], forEach: 'input.xs', concurrency: 2, command: 'echo {{ item }}', compensate: { tool: 'shell', command: 'undo h' } }),
    sh('g', { needs: ['d', 'e', 'f', 'h'] }),
  ],
};
const ids = def.steps.map((s) => s.id);
const retryable: ErrorBody = { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'exit 1', retryable: true };
const fatal: ErrorBody = { code: 'MUSE_ERR_REQUEST_INVALID', message: 'bad', retryable: false };

/** What happens to each attempt of each step: 'ok', 'retry' (retryable failure) or 'fatal'. */
type Fate = 'ok' | 'retry' | 'fatal';
const fatesArb = fc.record(Object.fromEntries(ids.map((id) => [id, fc.array(fc.constantFrom<Fate>('ok', 'retry', 'retry', 'fatal'), { minLength: 3, maxLength: 3 })])) as Record<string, fc.Arbitrary<Fate[]>>);

interface Outcome { state: RunState; log: RunEvent[]; delivered: number }

/**
 * Drives a run to its end: `choices` pick which open step reports next and
 * when an earlier report is delivered again (a redelivery).
 */
function drive(flag: boolean, fates: Record<string, Fate[]>, choices: number[]): Outcome {
  const t0 = new RunTransition(undefined, now, () => 0);
  t0.submit({ kind: 'run-submit', runId: 'r', project: 'p', workflow: { name: 'prop', version: 1 }, definition: def, input: { flag, xs: [1, 2, 3] }, submittedAt: now() }, defaults);
  let state = t0.state!;
  const log: RunEvent[] = [...t0.events];
  const sent: StepReport[] = [];
  let i = 0;
  let redelivered = false;
  const deliver = (r: StepReport) => {
    const tx = new RunTransition(state, now, () => 0);
    tx.report(r, defaults);
    state = tx.state!;
    log.push(...tx.events);
    // The fan-out's kept counts are what counting its elements gives, after every fold.
    for (const st of Object.values(state.steps)) if (st.items) assert.deepEqual(st.itemCounts, countItems(st.items), `counts of ${st.id} after ${r.outcome} of element ${r.index}`);
  };
  for (let guard = 0; guard < 500 && state.status === 'running'; guard++) {
    const c = choices[i++ % choices.length]! + guard;
    if (sent.length > 0 && c % 3 === 0 && !redelivered) {
      deliver(sent[c % sent.length]!); // a duplicate or stale redelivery
      redelivered = true; // never twice in a row, so the run always moves on
      continue;
    }
    redelivered = false;
    // Open units of work: steps (and compensations) queued or running, and the open elements of a fan-out.
    const open: Array<{ id: string; index?: number; status: string; attempts: number }> = [];
    for (const st of Object.values(state.steps)) {
      if (st.items && st.status === 'running') {
        st.items.forEach((it, index) => {
          if (it.status === 'queued' || it.status === 'running') open.push({ id: st.id, index, status: it.status, attempts: it.attempts });
        });
      } else if (st.status === 'queued' || st.status === 'running') open.push({ id: st.id, status: st.status, attempts: st.attempts });
    }
    if (open.length === 0) break;
    const u = open[c % open.length]!;
    const base = { kind: 'step-report' as const, runId: 'r', project: 'p', stepId: u.id, attempt: u.attempts, agentId: 'w', at: now(), ...(u.index !== undefined ? { index: u.index } : {}) };
    let r: StepReport;
    if (u.status === 'queued') r = { ...base, outcome: 'started' };
    else {
      const fate = u.index !== undefined && u.index !== 1 ? 'ok' : (fates[u.id.replace('~undo', '')]![u.attempts - 1] ?? 'ok');
      r = fate === 'ok' ? { ...base, outcome: 'completed', output: { exitCode: 0, stdout: `${u.id}@${u.attempts}`, stderr: '' } } : { ...base, outcome: 'failed', error: fate === 'retry' ? retryable : fatal };
    }
    sent.push(r);
    deliver(r);
  }
  return { state, log, delivered: sent.length };
}

test('any interleaving and duplication of a valid report sequence gives the same final state', () => {
  fc.assert(
    fc.property(fc.boolean(), fatesArb, fc.array(fc.nat(1000), { minLength: 1, maxLength: 40 }), fc.array(fc.nat(1000), { minLength: 1, maxLength: 40 }), (flag, fates, x, y) => {
      const one = drive(flag, fates, x);
      const two = drive(flag, fates, y);
      assert.notEqual(one.state.status, 'running', 'the run ended');
      assert.notEqual(two.state.status, 'running', `the run ended: ${JSON.stringify(Object.values(two.state.steps).map((st) => [st.id, st.status, st.attempts]))} after ${two.delivered}`);
      assert.equal(one.state.status, two.state.status);
      if (one.state.status === 'succeeded') {
        // A successful run is the same whatever the order: every step, attempt and output.
        assert.deepEqual(one.state.output, two.state.output);
        for (const id of ids) {
          const [s1, s2] = [one.state.steps[id]!, two.state.steps[id]!];
          assert.deepEqual([s1.status, s1.attempts, s1.output], [s2.status, s2.attempts, s2.output], `step ${id}`);
        }
      } else {
        // A fatal failure ends the run while parallel branches are in flight: which of them had
        // finished depends on timing (the rest are cancelled), but what did finish agrees.
        assert.equal(one.state.error?.retryable, false);
        for (const id of ids) {
          const [s1, s2] = [one.state.steps[id]!, two.state.steps[id]!];
          if (s1.status === 'succeeded' && s2.status === 'succeeded') assert.deepEqual([s1.attempts, s1.output], [s2.attempts, s2.output], `step ${id}`);
        }
        // Every step that succeeded and has a compensation was compensated (or its compensation's failure reported).
        for (const o of [one, two]) {
          const undone = (o.state.compensation?.order ?? []).slice().sort();
          const succeeded = ['a', 'h'].filter((id) => o.state.steps[id]!.status === 'succeeded').sort();
          assert.deepEqual(undone, succeeded);
          for (const id of undone) assert.ok(['succeeded', 'failed'].includes(o.state.steps[`${id}~undo`]!.status));
        }
      }
      // The log folds back to the state, with seq 1..n and no gaps.
      assert.deepEqual(foldEvents(one.log), one.state);
      assert.deepEqual(one.log.map((e) => e.seq), one.log.map((_, k) => k + 1));
    }),
    { numRuns: 300 },
  );
});

test('folding a log with any events delivered again (duplicates, late copies) gives the same state', () => {
  fc.assert(
    fc.property(fc.boolean(), fatesArb, fc.array(fc.nat(1000), { minLength: 1, maxLength: 20 }), fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 30 }), (flag, fates, choices, dups) => {
      const { state, log } = drive(flag, fates, choices);
      const noisy = [...log];
      // Insert copies of already-delivered events after their first delivery.
      for (const [a, b] of dups) {
        const ev = log[a % log.length]!;
        const first = noisy.indexOf(ev);
        noisy.splice(first + 1 + (b % (noisy.length - first)), 0, ev);
      }
      assert.deepEqual(foldEvents(noisy), state);
    }),
    { numRuns: 300 },
  );
});
