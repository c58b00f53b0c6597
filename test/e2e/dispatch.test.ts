/**
 * Dispatch strategies end to end (MUSE_DISPATCH), three agent workers on real NATS and Redis, observed in which
 * agent started what (`step.started` events): `round-robin` takes turns, `affinity` keeps a run's chain on one agent,
 * `least-loaded` spreads a burst, an idle agent steals the backlog of an overloaded one (and says so in its metrics),
 * and the queue of an agent killed with SIGKILL is adopted by the others so every step still runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent, RunView } from '@muse/contracts';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const AGENTS = ['agent-worker-1', 'agent-worker-2', 'agent-worker-3'];

describe('dispatch: round-robin, least-loaded, affinity, work stealing', { timeout: 240_000 }, () => {
  let t: TestCluster;
  before(async () => {
    t = await startTestCluster({
      workers: 3,
      env: {
        MUSE_DISPATCH: 'executor=round-robin,optimizer=affinity,reviewer=least-loaded',
        MUSE_AGENT_CONCURRENCY: '2',
        MUSE_HEARTBEAT_MS: '500',
        // Three heartbeats: a silent agent stops getting work and its queue is adopted after this long.
        MUSE_AGENT_TTL_MS: '1500',
        MUSE_JOB_LOCK_MS: '2000',
        MUSE_STEP_WATCH_MS: '1000',
        MUSE_STEAL_INTERVAL_MS: '200',
      },
    });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const agents = (await http<{ items: Array<{ agentId: string }> }>(t.gateway, 'GET', '/v1/agents')).body.items;
      if (AGENTS.every((a) => agents.some((x) => x.agentId === a))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('the three agents did not all register');
  });
  after(() => t?.stop());

  const run = async (definition: unknown, timeoutMs = 60_000): Promise<{ view: RunView; events: RunEvent[] }> => {
    const sub = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition });
    assert.equal(sub.status, 202, sub.text);
    const view = await waitForRun(t.gateway, sub.body.id, timeoutMs);
    assert.equal(view.status, 'succeeded', JSON.stringify(view.error ?? view.steps));
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${view.id}/events`)).body.items;
    return { view, events };
  };
  /** Who started each attempt of `stepId` (every element of a forEach). */
  const startedBy = (events: RunEvent[], stepId: string) => events.flatMap((e) => (e.type === 'step.started' && e.data.stepId === stepId && e.data.agentId !== 'coordinator' ? [e.data.agentId] : []));
  const tally = (ids: string[]) => Object.fromEntries(AGENTS.map((a) => [a, ids.filter((x) => x === a).length]));
  const steals = async (): Promise<number> => {
    let n = 0;
    for (const name of AGENTS) {
      const p = t.cluster.get(name);
      if (!p.running) continue;
      const text = await (await fetch(`${p.url}/metrics`)).text();
      for (const m of text.matchAll(/^muse_worker_steals_total\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
    }
    return n;
  };

  test('round-robin: six executor steps go two to each agent, in turn', async () => {
    const { events } = await run({ name: 'rr', steps: [{ id: 'each', tool: 'shell', command: 'echo {{ item }}', forEach: '[1, 2, 3, 4, 5, 6]', concurrency: 6 }] });
    assert.deepEqual(tally(startedBy(events, 'each')), { 'agent-worker-1': 2, 'agent-worker-2': 2, 'agent-worker-3': 2 });
  });

  test('affinity: a chain of optimizer steps stays on the agent that ran its first step', async () => {
    const steps = ['a', 'b', 'c', 'd', 'e'].map((id, i) => ({ id, agent: 'optimizer', tool: 'shell', command: `echo ${id}`, ...(i > 0 ? { needs: [['a', 'b', 'c', 'd', 'e'][i - 1]!] } : {}) }));
    const { events } = await run({ name: 'affine', steps });
    const agents = steps.map((s) => startedBy(events, s.id)[0]);
    assert.equal(new Set(agents).size, 1, `one agent for the whole chain: ${agents}`);
  });

  test('least-loaded: a burst of reviewer steps spreads over every agent', async () => {
    const { events } = await run({ name: 'burst', steps: [{ id: 'review', agent: 'reviewer', tool: 'shell', command: 'sleep 0.5; echo {{ item }}', forEach: '[1, 2, 3, 4, 5, 6]', concurrency: 6 }] });
    const counts = tally(startedBy(events, 'review'));
    for (const a of AGENTS) assert.ok(counts[a]! >= 1, `every agent took part: ${JSON.stringify(counts)}`);
  });

  test('work stealing: a fan-out pinned to one agent by affinity is shared by the idle agents', async () => {
    const before = await steals();
    const { events } = await run({
      name: 'pinned',
      steps: [
        { id: 'checkout', agent: 'optimizer', tool: 'shell', command: 'echo checked out' },
        { id: 'edit', agent: 'optimizer', tool: 'shell', command: 'sleep 0.8; echo {{ item }}', needs: ['checkout'], forEach: '[1, 2, 3, 4, 5, 6, 7, 8]', concurrency: 8 },
      ],
    });
    const owner = startedBy(events, 'checkout')[0]!;
    const edits = startedBy(events, 'edit');
    assert.equal(edits.length, 8);
    assert.ok(edits.includes(owner), 'the agent with the workspace ran some');
    assert.ok(edits.some((a) => a !== owner), `others stole from its backlog: ${JSON.stringify(tally(edits))}`);
    assert.ok((await steals()) > before, 'muse_worker_steals_total counted the steals');
  });

  test('an agent killed with SIGKILL: its queued and running steps are adopted by the others and the run succeeds', async () => {
    const sub = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', {
      definition: { name: 'orphans', steps: [{ id: 'work', tool: 'shell', command: 'sleep 1.5; echo {{ item }}', forEach: '[1, 2, 3, 4, 5, 6, 7, 8, 9]', concurrency: 9 }] },
    });
    assert.equal(sub.status, 202, sub.text);
    const victim = 'agent-worker-3';
    // Round-robin gives each agent three: two running (concurrency 2) and one waiting on its own queue.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const evs = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${sub.body.id}/events`)).body.items;
      if (startedBy(evs, 'work').includes(victim)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await t.cluster.get(victim).kill('SIGKILL');
    const view = await waitForRun(t.gateway, sub.body.id, 90_000);
    assert.equal(view.status, 'succeeded', JSON.stringify(view.error ?? view.steps));
    const evs = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${view.id}/events`)).body.items;
    const done = evs.filter((e) => e.type === 'step.completed' && e.data.stepId === 'work' && e.data.index !== undefined);
    assert.equal(done.length, 9, 'every element finished');
    assert.ok(done.every((e) => e.type === 'step.completed' && e.data.agentId !== victim), 'none finished on the dead agent');
    await t.cluster.restart(victim);
  });
});
