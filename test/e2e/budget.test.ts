/**
 * Per-run budgets end to end: a cluster (every service its own process, real
 * NATS and Redis) with two agent workers of four slots each, so eight agent
 * steps of one run call the (deterministic, slowed-down) model at once. Each
 * call reserves its estimate in Redis before it runs and settles to its usage
 * after: whatever the interleaving, the run's settled tokens never pass the
 * limit by more than one call's reservation; the refused steps fail with
 * `MUSE_ERR_BUDGET_EXCEEDED` (not retried); and under
 * `onBudgetExceeded: wait` the run waits, visibly, until
 * `POST /v1/runs/{id}/budget` raises the limit, then finishes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { RunEvent, RunView } from '@muse/contracts';
import { countTokens } from '@muse/providers';
import { http, REDIS_URL, startTestCluster, waitForEvent, waitForRun, type TestCluster } from '../support/harness.js';

/** The output cap a call under a budget gets (and reserves beyond its prompt). */
const MAX_OUT = 40;
const AGENTS = 8;
const promptOf = (i: number) => `Agent ${i}: review module {{ input.module }} for risk`;
/** The most one call can reserve: its prompt (rendered) plus the output cap. */
const RESERVATION = Math.max(...Array.from({ length: AGENTS }, (_, i) => countTokens(promptOf(i).replace('{{ input.module }}', 'scheduler')))) + MAX_OUT;
/** Room for about three of the eight calls. */
const LIMIT = RESERVATION * 3 - 5;

const parallel = (name: string) => ({
  name,
  budget: { maxTokens: LIMIT },
  steps: Array.from({ length: AGENTS }, (_, i) => ({ id: `agent-${i}`, agent: 'reviewer', prompt: promptOf(i), continueOnFailure: true })),
});

interface Budget {
  spentTokens: number;
  reservedTokens: number;
  maxTokens: number;
}

describe('budgets: reservations keep parallel agents of one run within the limit', { timeout: 300_000 }, () => {
  let t: TestCluster;
  let redis: Redis;

  before(async () => {
    t = await startTestCluster({
      workers: 2,
      env: { MUSE_AGENT_CONCURRENCY: '4', MUSE_LOCAL_PROVIDER_DELAY_MS: '400', MUSE_BUDGET_MAX_OUTPUT_TOKENS: String(MAX_OUT) },
    });
    redis = new Redis(REDIS_URL);
    for (const name of ['parallel-a', 'parallel-b', 'parallel-c']) {
      const reg = await http(t.gateway, 'POST', '/v1/workflows', parallel(name));
      assert.equal(reg.status, 201, reg.text);
    }
  });

  after(async () => {
    redis?.disconnect();
    await t?.stop();
  });

  async function budgetOf(runId: string): Promise<Budget> {
    const h = await redis.hgetall(`${t.namespace}:run-budget:${runId}`);
    return { spentTokens: Number(h['spentTokens'] ?? 0), reservedTokens: Number(h['reservedTokens'] ?? 0), maxTokens: Number(h['maxTokens']) };
  }

  test(`${AGENTS} agents of one run in parallel never overshoot the limit by more than one reservation`, async () => {
    for (const name of ['parallel-a', 'parallel-b', 'parallel-c']) {
      const res = await http(t.gateway, 'POST', '/v1/runs', { workflow: name, input: { module: 'scheduler' } });
      assert.equal(res.status, 202, res.text);
      const run = await waitForRun(t.gateway, res.body.id, 60_000);
      // continueOnFailure: the run finishes whatever the budget refused.
      assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
      const ok = run.steps.filter((s) => s.status === 'succeeded');
      const refused = run.steps.filter((s) => s.status === 'failed');
      assert.equal(ok.length + refused.length, AGENTS);
      assert.ok(ok.length >= 1, 'some calls got through');
      assert.ok(refused.length >= 1, 'the budget refused some calls');
      for (const s of refused) {
        assert.equal(s.error?.code, 'MUSE_ERR_BUDGET_EXCEEDED');
        assert.equal(s.error?.retryable, false);
        assert.equal(s.attempts, 1, 'not retried');
      }

      // The calls overlapped: both workers ran steps, and more than one was running at once — by the workers'
      // own start and finish times (a step refused within MUSE_STARTED_REPORT_DELAY_MS is logged started and failed together).
      const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${run.id}/events`)).body.items;
      assert.equal(new Set(run.steps.map((s) => s.agent)).size, 2, 'both workers took steps');
      assert.equal(events.filter((e) => e.type === 'step.started').length, AGENTS, 'every attempt is logged started');
      const spans = run.steps.map((s) => [Date.parse(s.startedAt!), Date.parse(s.finishedAt!)] as const);
      const peak = Math.max(...spans.map(([at]) => spans.filter(([a, b]) => a <= at && at < b).length));
      assert.ok(peak >= 4, `calls ran in parallel (peak ${peak})`);

      const b = await budgetOf(run.id);
      const used = ok.reduce((n, s) => n + (s.output as { usage: { inputTokens: number; outputTokens: number } }).usage.inputTokens + (s.output as { usage: { outputTokens: number } }).usage.outputTokens, 0);
      assert.equal(b.maxTokens, LIMIT);
      assert.equal(b.reservedTokens, 0, 'every reservation settled');
      assert.equal(b.spentTokens, used, 'settled = the usage of the calls that ran');
      assert.equal(run.spend?.tokens, used);
      assert.deepEqual(run.spend?.limit, { maxTokens: LIMIT });
      assert.ok(b.spentTokens <= LIMIT + RESERVATION, `spent ${b.spentTokens} <= limit ${LIMIT} + one reservation ${RESERVATION}`);
      console.log(`${name}: ${ok.length} calls ran, ${refused.length} refused, ${b.spentTokens} tokens spent of ${LIMIT} (one reservation ${RESERVATION}), peak ${peak} in parallel`);
    }
  });

  test('onBudgetExceeded: wait — the run waits for POST /budget, then finishes', async () => {
    const def = {
      name: 'waits',
      budget: { maxTokens: 10, onBudgetExceeded: 'wait' },
      steps: [
        { id: 'first', agent: 'reviewer', prompt: 'Plan {{ input.module }}' },
        { id: 'second', agent: 'reviewer', prompt: 'Review {{ steps.first.output.text }}', needs: ['first'] },
      ],
    };
    const reg = await http(t.gateway, 'POST', '/v1/workflows', def);
    assert.equal(reg.status, 201, reg.text);
    const res = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'waits', input: { module: 'scheduler' } });
    assert.equal(res.status, 202, res.text);
    const id = res.body.id as string;
    await waitForEvent(t.gateway, id, (e) => e.type === 'budget.waiting', 30_000);
    let view = (await http<RunView>(t.gateway, 'GET', `/v1/runs/${id}`)).body;
    for (let i = 0; i < 50 && view.status !== 'waiting'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      view = (await http<RunView>(t.gateway, 'GET', `/v1/runs/${id}`)).body;
    }
    assert.equal(view.status, 'waiting');
    assert.match(view.reason ?? '', /waiting for budget/);
    const second = view.steps.find((s) => s.id === 'second')!;
    assert.equal(second.status, 'waiting');
    assert.equal(second.error?.code, 'MUSE_ERR_BUDGET_EXCEEDED');

    const bad = await http(t.gateway, 'POST', `/v1/runs/${id}/budget`, {});
    assert.equal(bad.status, 400);
    const raise = await http(t.gateway, 'POST', `/v1/runs/${id}/budget`, { addTokens: 1000 });
    assert.equal(raise.status, 202, raise.text);
    const done = await waitForRun(t.gateway, id, 30_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.steps.find((s) => s.id === 'second')!.attempts, 2, 'ran again as its next attempt');
    assert.deepEqual(done.spend?.limit, { maxTokens: 1010 });
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`)).body.items;
    assert.ok(events.some((e) => e.type === 'budget.raised'));
    const finished = await http(t.gateway, 'POST', `/v1/runs/${id}/budget`, { addTokens: 1 });
    assert.equal(finished.status, 409);
  });

  test('onBudgetExceeded: fail (the default) fails the step for good and the run with it', async () => {
    const def = {
      name: 'fails',
      budget: { maxTokens: 10 },
      steps: [
        { id: 'first', agent: 'reviewer', prompt: 'Plan {{ input.module }}' },
        { id: 'second', agent: 'reviewer', prompt: 'Review {{ steps.first.output.text }}', needs: ['first'] },
      ],
    };
    assert.equal((await http(t.gateway, 'POST', '/v1/workflows', def)).status, 201);
    const res = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'fails', input: { module: 'scheduler' } });
    const run = await waitForRun(t.gateway, res.body.id, 30_000);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'MUSE_ERR_BUDGET_EXCEEDED');
    const second = run.steps.find((s) => s.id === 'second')!;
    assert.equal(second.attempts, 1);
    assert.equal(second.error?.retryable, false);
  });
});
