import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentHeartbeat, RunEvent, RunView } from '@muse/contracts';
import { createLogger, MuseMetrics } from '@muse/telemetry';
import type { LiveSources } from './live-sources.js';
import { LiveViewService } from './live-view.service.js';
import { SnapshotSchema } from './snapshot.schema.js';

/** Sources fed by hand: the service's wiring without NATS or Redis. */
function fakeSources(seed: RunView[] = []) {
  const fake = {
    onEvent: undefined as ((ev: RunEvent) => void) | undefined,
    onHeartbeat: undefined as ((hb: AgentHeartbeat) => void) | undefined,
    hash: [] as AgentHeartbeat[],
    depths: new Map<string, { waiting: number; active: number; delayed: number }>(),
    polledRoles: [] as string[],
    stopped: false,
    seedCalls: 0,
  };
  const sources: LiveSources = {
    subscribeRunEvents: async (cb) => {
      fake.onEvent = cb;
      return { stop: async () => void (fake.stopped = true) };
    },
    subscribeHeartbeats: (cb) => void (fake.onHeartbeat = cb),
    readHeartbeats: async () => fake.hash,
    queueDepth: async (role) => {
      fake.polledRoles.push(role);
      return fake.depths.get(role) ?? { waiting: 0, active: 0, delayed: 0 };
    },
    readRecentRuns: async () => {
      fake.seedCalls++;
      return { runs: seed, invalid: 0 };
    },
  };
  return { fake, sources };
}

const now = () => new Date().toISOString();

test('wires events, heartbeats, the poll and the seed into snapshot and metrics', async () => {
  const seeded: RunView = {
    id: 'old',
    project: 'p',
    workflow: { name: 'wf', version: 1 },
    status: 'succeeded',
    input: {},
    createdAt: now(),
    updatedAt: now(),
    seq: 5,
    steps: [{ id: 'a', status: 'succeeded', attempts: 1 }],
  };
  const { fake, sources } = fakeSources([seeded]);
  const metrics = new MuseMetrics('observability-spec');
  const svc = new LiveViewService(
    sources,
    { namespace: 'spec', pollIntervalMs: 60_000, seedRunsPerProject: 10, seedRetryMs: 60_000 },
    metrics,
    createLogger('observability-spec', 'silent'),
  );
  fake.depths.set('executor', { waiting: 3, active: 1, delayed: 0 });
  fake.hash.push({
    agentId: 'w1',
    roles: ['executor', 'gpu'],
    pid: 1,
    host: 'h',
    concurrency: 2,
    inFlight: 1,
    completed: 0,
    failed: 0,
    startedAt: now(),
    at: now(),
    version: 'x',
  });
  await svc.start();
  await svc.poll();

  const base = { project: 'p', at: now() };
  const created: RunEvent = {
    ...base,
    id: 'e1',
    runId: 'r1',
    seq: 1,
    type: 'run.created',
    data: { workflow: { name: 'wf', version: 1 }, definition: { name: 'wf', steps: [{ id: 'a', agent: 'executor', prompt: 'x' }] }, input: {} },
  };
  const started: RunEvent = { ...base, id: 'e2', runId: 'r1', seq: 2, type: 'run.started', data: {} };
  fake.onEvent!(created);
  fake.onEvent!(started);
  fake.onEvent!(started); // redelivered
  fake.onHeartbeat!({ ...fake.hash[0]!, agentId: 'w2', at: now() });

  const snap = SnapshotSchema.parse(svc.snapshot());
  assert.equal(fake.seedCalls, 1);
  assert.deepEqual(snap.runs.recent.map((r) => r.id).sort(), ['old', 'r1']);
  assert.equal(snap.runs.byStatus.succeeded, 1);
  assert.equal(snap.runs.byStatus.running, 1);
  assert.deepEqual(snap.agents.map((a) => a.agentId), ['w1', 'w2']);
  assert.deepEqual(snap.queues.find((q) => q.role === 'executor')?.waiting, 3);
  assert.equal(snap.totals.eventsSeen, 2);
  assert.equal(snap.totals.duplicatesIgnored, 1);

  // `gpu` was learnt from the heartbeat hash during the first poll; the next poll reads its queue.
  await svc.poll();
  assert.ok(fake.polledRoles.includes('gpu'));

  const text = await metrics.render();
  assert.match(text, /muse_runs_total\{status="started",service="observability-spec"\} 1/);
  assert.match(text, /muse_runs_total\{status="succeeded",service="observability-spec"\} 0/);
  assert.match(text, /muse_runs_active\{service="observability-spec"\} 1/);
  assert.match(text, /muse_queue_depth\{role="executor",state="waiting",service="observability-spec"\} 3/);
  assert.match(text, /muse_agents_alive\{service="observability-spec"\} 2/);
  assert.match(text, /muse_event_lag_seconds_count\{service="observability-spec"\} 2/);

  await svc.stop();
  assert.equal(fake.stopped, true);
  fake.onEvent!({ ...started, id: 'e3', seq: 3, type: 'run.completed', data: { output: null } });
  assert.equal(svc.snapshot().totals.eventsSeen, 2, 'nothing is taken after stop');
});

test('a failed seed is retried', async () => {
  const { fake, sources } = fakeSources();
  let fail = true;
  const flaky: LiveSources = {
    ...sources,
    readRecentRuns: async (n) => {
      if (fail) {
        fail = false;
        throw new Error('redis not yet up');
      }
      return sources.readRecentRuns(n);
    },
  };
  const svc = new LiveViewService(
    flaky,
    { namespace: 'spec', pollIntervalMs: 60_000, seedRunsPerProject: 10, seedRetryMs: 10 },
    new MuseMetrics('observability-spec-2'),
    createLogger('observability-spec', 'silent'),
  );
  await svc.start();
  for (let i = 0; i < 50 && fake.seedCalls === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(fake.seedCalls, 1);
  await svc.stop();
});
