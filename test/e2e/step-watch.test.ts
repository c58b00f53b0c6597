/**
 * The coordinator's step watches end to end: a step waiting in a queue no live
 * agent serves is looked at less and less often (MUSE_STEP_WATCH_WAITING_MAX_MS),
 * and once an agent takes it and dies, the lost attempt is still noticed and
 * retried, the watch back at its full rate.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { museNames, stepJobId, type RunEvent } from '@muse/contracts';
import { REDIS_URL, http, startTestCluster, waitForEvent, waitForRun, type TestCluster } from '../support/harness.js';

const WATCH_MS = 500;
const WAITING_MAX_MS = 2_000;
const LOCK_MS = 2_000;

describe('step watches', { timeout: 180_000 }, () => {
  let t: TestCluster;

  before(async () => {
    t = await startTestCluster({
      workers: 2,
      env: { MUSE_JOB_LOCK_MS: String(LOCK_MS), MUSE_HEARTBEAT_MS: '500', MUSE_STEP_WATCH_MS: String(WATCH_MS), MUSE_STEP_WATCH_WAITING_MAX_MS: String(WAITING_MAX_MS) },
      // The second worker alone serves the `late` role; it is stopped until the step has waited a while.
      instanceEnv: { 'agent-worker-2': { MUSE_AGENT_ROLES: 'late' } },
    });
    await t.cluster.get('agent-worker-2').stop();
  });

  after(async () => {
    await t?.stop();
  });

  test('a waiting step is watched with back-off; taken, then lost with its worker, it is failed as lost and retried', async () => {
    const reg = await http(t.gateway, 'POST', '/v1/workflows', {
      name: 'late-step',
      steps: [{ id: 'slow', tool: 'shell', agent: 'late', command: 'if [ "$MUSE_ATTEMPT" = 1 ]; then sleep 60; fi; echo done', retry: { maxAttempts: 2, backoff: { initialMs: 100 } } }],
    });
    assert.ok(reg.status === 201 || reg.status === 200, reg.text);
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'late-step', input: {} });
    assert.equal(sub.status, 202, sub.text);
    const runId = sub.body.id as string;

    // Waiting with no agent for its role: at one check per WATCH_MS this would be ~16 watches; with the back-off
    // (0.5, 1, 2, 2, … s apart) about 5.
    const waitedMs = 8_000;
    await new Promise((r) => setTimeout(r, waitedMs));
    const names = museNames(t.namespace);
    const redis = new Redis(REDIS_URL);
    let watches: number;
    try {
      // The attempt's watch counts its looks (`n`, the next one's number).
      const data = await redis.hget(names.stepWatchDataKey, stepJobId(runId, 'slow', 1));
      assert.ok(data, 'the waiting attempt is watched');
      watches = (JSON.parse(data) as { n: number }).n;
    } finally {
      redis.disconnect();
    }
    assert.ok(watches >= 3 && watches <= Math.ceil(waitedMs / WAITING_MAX_MS) + 3, `${watches} watches in ${waitedMs} ms of waiting`);

    // An agent for the role comes, takes the step and dies with it.
    await t.cluster.restart('agent-worker-2');
    await waitForEvent(t.gateway, runId, (e) => e.type === 'step.started' && e.data.attempt === 1, 30_000);
    await t.cluster.get('agent-worker-2').kill('SIGKILL');
    const killedAt = Date.now();
    await t.cluster.restart('agent-worker-2');

    const lost = (await waitForEvent(t.gateway, runId, (e) => e.type === 'step.failed' && e.data.attempt === 1, 60_000)) as Extract<RunEvent, { type: 'step.failed' }>;
    assert.equal(lost.data.error.code, 'MUSE_ERR_STEP_LOST');
    // Noticed at the running rate, not the waiting one: the lock's lapse, the restarted worker's stall check, one watch period, and slack.
    const noticedMs = Date.parse(lost.at) - killedAt;
    assert.ok(noticedMs < LOCK_MS * 2 + WATCH_MS * 2 + 5_000, `the lost attempt was noticed ${noticedMs} ms after the kill`);

    const done = await waitForRun(t.gateway, runId, 60_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.steps[0]?.attempts, 2);
  });
});
