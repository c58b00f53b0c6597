/**
 * Dispatch by capability (specialization) end to end: a step that `requires` capabilities goes only to agents that
 * declare them; with none live it waits in its queue and its view says why; steps without requirements spread over
 * every agent of the role (the shared queue: the least loaded takes the next job).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent, RunView } from '@muse/contracts';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

describe('specialization: requires / MUSE_AGENT_CAPABILITIES', { timeout: 180_000 }, () => {
  let t: TestCluster;
  before(async () => {
    t = await startTestCluster({ workers: 2, instanceEnv: { 'agent-worker-2': { MUSE_AGENT_CAPABILITIES: 'gpu,python' } } });
  });
  after(() => t?.stop());

  const events = async (id: string) => (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`)).body.items;
  const startedBy = (evs: RunEvent[], stepId: string) => evs.flatMap((e) => (e.type === 'step.started' && e.data.stepId === stepId ? [e.data.agentId] : []));

  test('steps that require gpu run only on the agent that has it; the others spread over both agents', async () => {
    const definition = {
      name: 'render',
      steps: [
        { id: 'frames', tool: 'shell', command: 'sleep 0.2; echo frame {{ item }}', forEach: '[1, 2, 3, 4, 5, 6]', concurrency: 6, requires: ['gpu'] },
        { id: 'plain', tool: 'shell', command: 'sleep 0.2; echo {{ item }}', forEach: '[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]', concurrency: 12 },
        { id: 'both', tool: 'shell', command: 'echo gpu and python', requires: ['python', 'gpu'], needs: ['frames'] },
      ],
    };
    const sub = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition });
    assert.equal(sub.status, 202, sub.text);
    const run = await waitForRun(t.gateway, sub.body.id, 60_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const evs = await events(run.id);
    assert.deepEqual([...new Set(startedBy(evs, 'frames'))], ['agent-worker-2'], 'gpu steps ran only where gpu is');
    assert.deepEqual(startedBy(evs, 'both'), ['agent-worker-2']);
    assert.deepEqual([...new Set(startedBy(evs, 'plain'))].sort(), ['agent-worker-1', 'agent-worker-2'], 'plain steps went to both agents');
    const q = evs.find((e) => e.type === 'step.queued' && e.data.stepId === 'both');
    assert.ok(q?.type === 'step.queued');
    assert.equal(run.steps.find((s) => s.id === 'both')!.queue, 'executor+gpu+python');
    const agents = (await http<{ items: Array<{ agentId: string; capabilities?: string[] }> }>(t.gateway, 'GET', '/v1/agents')).body.items;
    assert.deepEqual(agents.find((a) => a.agentId === 'agent-worker-2')?.capabilities, ['gpu', 'python']);
  });

  test('a step requiring what no live agent has waits, queued, with the reason in its view', async () => {
    const definition = { name: 'needs-tpu', steps: [{ id: 'train', tool: 'shell', command: 'echo never', requires: ['tpu'] }] };
    const sub = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition });
    assert.equal(sub.status, 202, sub.text);
    let view: RunView | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      view = (await http<RunView>(t.gateway, 'GET', `/v1/runs/${sub.body.id}`)).body;
      if (view.steps[0]!.status === 'queued' && view.steps[0]!.reason) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(view!.steps[0]!.status, 'queued');
    assert.match(view!.steps[0]!.reason ?? '', /no live agent of role "executor" has the capabilities tpu/);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal((await http<RunView>(t.gateway, 'GET', `/v1/runs/${sub.body.id}`)).body.steps[0]!.status, 'queued', 'nobody took it');
    const cancel = await http(t.gateway, 'POST', `/v1/runs/${sub.body.id}/cancel`, { reason: 'no tpu here' });
    assert.equal(cancel.status, 202, cancel.text);
    assert.equal((await waitForRun(t.gateway, sub.body.id, 20_000)).status, 'cancelled');
  });

  test('requires is checked at registration', async () => {
    const bad = await http(t.gateway, 'POST', '/v1/workflows', { name: 'bad-req', steps: [{ id: 'a', tool: 'shell', command: 'true', requires: ['GPU!'] }] });
    assert.equal(bad.status, 400);
    assert.match(bad.text, /steps\.0\.requires\.0/);
  });
});
