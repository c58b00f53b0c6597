/**
 * The crash test: many runs of a 10-step workflow (branches, a fan-out,
 * retries) on two coordinator replicas and two workers, while the test
 * SIGKILLs a coordinator, an agent worker or the gateway at random moments
 * and restarts it. Every accepted run must end with the right result, and
 * no attempt's side effect may happen twice: every shell step appends
 * `<run> <step> <attempt>` to a ledger in the run's workspace.
 *
 * Sized for a 2-core machine shared with others: MUSE_CRASH_RUNS (default
 * 200) runs, a kill every 2-5 s for the first 100 s (each kind in turn, at
 * random moments), then every accepted run must finish; bounded at 6
 * minutes, about 2 to 3 minutes on this machine.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunEvent, RunView } from '@muse/contracts';
import { bearer, http, startTestCluster, TERMINAL, type TestCluster } from '../support/harness.js';

const RUNS = Number(process.env.MUSE_CRASH_RUNS ?? 200);
/** Processes are killed during this long from the start (or until every run finished), in ms. */
const CHAOS_MS = 100_000;
/** Every accepted run must have finished by then, in ms from the start (the kills stopped at CHAOS_MS at the latest). */
const DEADLINE_MS = 6 * 60_000;
const YAML = { 'content-type': 'application/yaml' };
const LEDGER = 'echo \\"$MUSE_RUN_ID $MUSE_STEP_ID $MUSE_ATTEMPT\\" >> ledger.log';

const WORKFLOW = [
  'name: crashy',
  'retry: { maxAttempts: 6, backoff: { initialMs: 200, factor: 2, maxMs: 2000, jitter: 0.5 } }',
  'steps:',
  '  - id: start',
  '    tool: shell',
  `    command: "${LEDGER}; echo started {{ input.n }}"`,
  '  - id: plan',
  '    agent: orchestrator',
  '    prompt: "Plan run {{ input.n }}"',
  '  - id: flaky',
  '    tool: shell',
  `    command: "${LEDGER}; test -f flaky.ok || { touch flaky.ok; exit 1; }; echo recovered"`,
  '    needs: [start]',
  '  - id: even',
  '    tool: shell',
  `    command: "${LEDGER}; echo even"`,
  '    needs: [start]',
  `    when: 'input.parity == "even"'`,
  '  - id: odd',
  '    tool: shell',
  `    command: "${LEDGER}; echo odd"`,
  '    needs: [start]',
  `    when: 'input.parity == "odd"'`,
  '  - id: merge',
  '    tool: shell',
  `    command: "${LEDGER}; printf {{ input.parity }}"`,
  '    needs: { any: [even, odd] }',
  '  - id: fan',
  '    tool: shell',
  `    command: "echo \\"$MUSE_RUN_ID fan#{{ index }} $MUSE_ATTEMPT\\" >> ledger.log; echo item {{ item }}"`,
  '    needs: [start]',
  '    forEach: input.items',
  '    concurrency: 2',
  '  - id: review',
  '    agent: reviewer',
  '    prompt: "Review {{ steps.plan.output.text }} after {{ steps.flaky.output.stdout }}"',
  '    needs: [plan, flaky]',
  '  - id: check',
  '    tool: shell',
  `    command: "${LEDGER}; echo checked"`,
  '    needs: [fan, merge]',
  '  - id: final',
  '    tool: shell',
  `    command: "${LEDGER}; printf done-{{ input.n }}-{{ steps.merge.output.stdout }}"`,
  '    needs: [review, check]',
  'output: "{{ steps.final.output.stdout }}"',
].join('\n');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('crash test: SIGKILLed coordinators, workers and gateway lose no run and repeat no attempt', { timeout: DEADLINE_MS + 120_000 }, () => {
  let t: TestCluster;

  before(async () => {
    t = await startTestCluster({
      workers: 2,
      coordinators: 2,
      env: {
        MUSE_JOB_LOCK_MS: '2000',
        MUSE_HEARTBEAT_MS: '500',
        MUSE_STEP_WATCH_MS: '1000',
        MUSE_RUN_LOCK_TTL_MS: '3000',
        MUSE_COMMAND_ACK_WAIT_MS: '3000',
        MUSE_AGENT_CONCURRENCY: '4',
        LOG_LEVEL: 'warn',
      },
    });
  });

  after(async () => {
    await t?.stop();
  });

  test(`${RUNS} runs while processes are killed at random`, async () => {
    const auth = bearer(t.apiKey);
    const gw = () => t.cluster.url('gateway');
    const call = async <T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
      try {
        return await http<T>(gw(), method, path, body, { ...auth, ...headers });
      } catch {
        return undefined; // the gateway is down (being restarted)
      }
    };
    assert.equal((await call('POST', '/v1/workflows', WORKFLOW, YAML))?.status, 201);

    const started = Date.now();
    const accepted = new Map<string, { n: number; parity: string }>();
    let stopKilling = false;
    const kills: string[] = [];

    // The killer: one process at a time, SIGKILL, a pause, a restart.
    const victims = ['coordinator-1', 'agent-worker-1', 'gateway', 'coordinator-2', 'agent-worker-2'];
    const killer = (async () => {
      await sleep(1500);
      while (!stopKilling && Date.now() - started < CHAOS_MS) {
        const victim = victims[kills.length % victims.length]!; // each kind in turn, at random moments
        const p = t.cluster.get(victim);
        if (p.running) {
          await p.kill('SIGKILL');
          kills.push(victim);
          await sleep(300 + Math.random() * 1200);
          await t.cluster.restart(victim);
        }
        await sleep(1500 + Math.random() * 2000);
      }
    })();

    // Submissions, each with an Idempotency-Key so a retry after a gateway death cannot start it twice.
    for (let n = 0; n < RUNS; n++) {
      const input = { n, parity: n % 2 === 0 ? 'even' : 'odd', items: [n, n + 1, n + 2] };
      for (let tries = 0; ; tries++) {
        const res = await call('POST', '/v1/runs', { workflow: 'crashy', input }, { 'idempotency-key': `crash-${n}` });
        if (res?.status === 202 || res?.status === 200) {
          accepted.set(res.body.id, { n, parity: input.parity });
          break;
        }
        assert.ok(tries < 200, `run ${n} could not be submitted: ${res?.status} ${res?.text}`);
        await sleep(250);
      }
      if (n % 10 === 9) await sleep(200); // spread the load a little
    }

    // Wait for every accepted run to finish (or the deadline).
    const views = new Map<string, RunView>();
    let lastFinishedAt = Date.now();
    while (Date.now() - started < DEADLINE_MS && views.size < accepted.size) {
      for (const id of accepted.keys()) {
        if (views.has(id)) continue;
        const res = await call<RunView>('GET', `/v1/runs/${id}`);
        if (res?.status === 200 && TERMINAL.includes(res.body.status)) {
          views.set(id, res.body);
          lastFinishedAt = Date.now();
        }
      }
      if (views.size === accepted.size) stopKilling = true;
      if (views.size < accepted.size) await sleep(1000);
    }
    stopKilling = true;
    await killer;
    // Everything back up for the read-out.
    for (const v of victims) if (!t.cluster.get(v).running) await t.cluster.restart(v);

    let completed = 0;
    let wrong = 0;
    let duplicated = 0;
    let stuckMs = 0;
    let stuckRun = '';
    const wrongSamples: string[] = [];
    for (const [id, { n, parity }] of accepted) {
      const v = views.get(id);
      if (!v) continue;
      const fan = v.steps.find((s) => s.id === 'fan')?.output as unknown[] | undefined;
      const skipped = v.steps.find((s) => s.id === (parity === 'even' ? 'odd' : 'even'))?.status;
      if (v.status === 'succeeded' && v.output === `done-${n}-${parity}` && fan?.length === 3 && skipped === 'skipped') completed++;
      else {
        wrong++;
        if (wrongSamples.length < 3) wrongSamples.push(JSON.stringify({ id, status: v.status, output: v.output, error: v.error }));
      }
      const ledger = join(t.dataDir, 'workspaces', id, 'ledger.log');
      const lines = existsSync(ledger) ? readFileSync(ledger, 'utf8').trim().split('\n') : [];
      duplicated += lines.length - new Set(lines).size;
      const events = (await call<{ items: RunEvent[] }>('GET', `/v1/runs/${id}/events`))?.body.items ?? [];
      for (let i = 1; i < events.length; i++) {
        const gap = Date.parse(events[i]!.at) - Date.parse(events[i - 1]!.at);
        if (gap > stuckMs) [stuckMs, stuckRun] = [gap, id];
      }
    }
    const lost = accepted.size - views.size;
    const unfinished = [...accepted.keys()].filter((id) => !views.has(id));
    if (unfinished.length > 0) {
      const last = await Promise.all(unfinished.slice(0, 3).map((id) => call<RunView>('GET', `/v1/runs/${id}`)));
      console.log(`unfinished runs (last finish ${Date.now() - lastFinishedAt} ms ago): ${last.map((r) => JSON.stringify({ id: r?.body.id, status: r?.body.status, steps: r?.body.steps.map((x) => `${x.id}:${x.status}:${x.attempts}`) })).join(' ')}`);
    }
    const elapsed = Date.now() - started;
    console.log(
      `crash test: accepted=${accepted.size} completed=${completed} wrong=${wrong} duplicated=${duplicated} lost=${lost} ` +
        `kills=${kills.length} (${['coordinator', 'agent-worker', 'gateway'].map((s) => `${s}:${kills.filter((k) => k.startsWith(s)).length}`).join(' ')}) ` +
        `longest-stuck=${stuckMs}ms (${stuckRun}) elapsed=${elapsed}ms`,
    );
    assert.equal(accepted.size, RUNS);
    assert.equal(lost, 0, 'every accepted run reached a terminal state');
    assert.equal(duplicated, 0, 'no attempt of a step ran its side effect twice');
    assert.equal(wrong, 0, `every run has the right result: ${wrongSamples.join(' ')}`);
    assert.equal(completed, RUNS);
    assert.ok(kills.some((k) => k.startsWith('coordinator')) && kills.some((k) => k.startsWith('agent-worker')) && kills.includes('gateway'), `each kind of process was killed: ${kills.join(', ')}`);
  });
});
