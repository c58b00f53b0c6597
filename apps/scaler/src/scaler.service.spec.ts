import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentHeartbeat, PoolList, ScalerDecisionEvent } from '@muse/contracts';
import { createLogger, MuseMetrics } from '@muse/telemetry';
import type { PoolDriver } from './drivers/pool-driver.js';
import type { LeaseState } from './leader-lease.js';
import { PoolListSchema } from './pools.schema.js';
import type { ScalerSources } from './scaler-sources.js';
import { ScalerService, type ScalerRuntime } from './scaler.service.js';

const hb = (agentId: string, roles: string[], inFlight: number): AgentHeartbeat => ({
  agentId,
  roles,
  pid: 1,
  host: 'h',
  concurrency: 4,
  inFlight,
  completed: 0,
  failed: 0,
  startedAt: new Date().toISOString(),
  at: new Date().toISOString(),
  version: 'x',
});

function rig(opts: { leader: () => boolean; driverStart?: Record<string, number> }) {
  const hash: AgentHeartbeat[] = [hb('w1', ['executor', 'gpu'], 2)];
  const depths: Record<string, { waiting: number; active: number; delayed: number }> = { executor: { waiting: 35, active: 4, delayed: 2 } };
  const published: ScalerDecisionEvent[] = [];
  const boards: PoolList[] = [];
  const sources: ScalerSources = {
    readHeartbeats: async () => hash,
    queueDepth: async (role) => depths[role] ?? { waiting: 0, active: 0, delayed: 0 },
    writeBoard: async (l) => void boards.push(l),
    readBoard: async () => boards.at(-1) ?? null,
    publishDecision: async (ev) => void published.push(ev),
  };
  const scaled: Array<[string, number]> = [];
  const running = new Map(Object.entries(opts.driverStart ?? {}));
  const driver: PoolDriver = {
    name: 'local',
    current: async (role) => running.get(role) ?? 0,
    scale: async (role, n) => {
      scaled.push([role, n]);
      running.set(role, n);
    },
    close: async () => undefined,
  };
  let term = 0;
  const runtime: ScalerRuntime = {
    lease: {
      id: 'replica-a',
      tick: async (): Promise<LeaseState> => (opts.leader() ? { leader: true, term: (term ||= 7), holder: 'replica-a' } : { leader: false, term: 0, holder: 'other' }),
      isLeader: () => opts.leader(),
      currentTerm: () => (opts.leader() ? 7 : 0),
      release: async () => undefined,
    },
    driver,
  };
  const metrics = new MuseMetrics('scaler-spec');
  const lines: unknown[] = [];
  const logger = createLogger('scaler-spec', 'silent');
  const svc = new ScalerService(
    sources,
    { intervalMs: 60_000, agentTtlMs: 10_000, overrides: { '*': { min: 0 }, executor: { min: 1 } } },
    runtime,
    metrics,
    Object.assign(Object.create(logger), { info: (obj: unknown) => void lines.push(obj), warn: (obj: unknown) => void lines.push(obj) }),
  );
  return { svc, sources, hash, depths, published, boards, scaled, metrics, lines };
}

test('the leader evaluates every pool, drives the driver, publishes decisions and writes the board', async () => {
  const r = rig({ leader: () => true });
  await r.svc.evaluate();

  const list = PoolListSchema.parse(await r.svc.board());
  assert.equal(list.leader, 'replica-a');
  assert.equal(list.driver, 'local');
  assert.deepEqual(list.items.map((p) => p.role), ['orchestrator', 'optimizer', 'reviewer', 'executor', 'gpu']);
  const exec = list.items.find((p) => p.role === 'executor')!;
  // The pool started from what the driver ran (0), not from the one multi-role agent.
  assert.deepEqual([exec.actual, exec.busy, exec.desired, exec.min, exec.max, exec.driverActual], [1, 1, 5, 1, 8, 5]);
  assert.deepEqual(exec.queue, { waiting: 35, active: 4, delayed: 2 });
  assert.deepEqual([exec.lastDecision.from, exec.lastDecision.to, exec.lastDecision.direction], [0, 5, 'up']);
  assert.equal(exec.decisions.length, 1);
  assert.equal(exec.policy.kind, 'queueDepth');
  // gpu: one busy agent, need 1, min 0: from 0 to 1.
  assert.deepEqual(r.scaled, [
    ['orchestrator', 0],
    ['optimizer', 0],
    ['reviewer', 0],
    ['executor', 5],
    ['gpu', 1],
  ]);
  assert.deepEqual(
    r.published.map((e) => [e.role, e.from, e.to, e.direction, e.term, e.leader]),
    [
      ['executor', 0, 5, 'up', 7, 'replica-a'],
      ['gpu', 0, 1, 'up', 7, 'replica-a'],
    ],
  );
  assert.deepEqual(r.published[0]!.numbers, { waiting: 35, active: 4, delayed: 2, agents: 1, busy: 1 });
  assert.match(r.published[0]!.reason, /35 waiting, 1 of 1 agents busy: need 5/);

  const text = await r.metrics.render();
  assert.match(text, /muse_scaler_desired_workers\{role="executor",service="scaler-spec"\} 5/);
  assert.match(text, /muse_scaler_actual_workers\{role="executor",service="scaler-spec"\} 1/);
  assert.match(text, /muse_scaler_decisions_total\{role="executor",direction="up",service="scaler-spec"\} 1/);
  assert.match(text, /muse_scaler_leader\{service="scaler-spec"\} 1/);

  // Nothing changed: no new decision.
  await r.svc.evaluate();
  assert.equal(r.published.length, 2);

  // A failing source keeps the last decisions and logs a warning.
  const before = r.lines.length;
  r.sources.readHeartbeats = async () => {
    throw new Error('redis down');
  };
  await r.svc.evaluate();
  assert.equal(PoolListSchema.parse(await r.svc.board()).items.find((p) => p.role === 'executor')!.desired, 5);
  assert.equal(r.lines.length, before + 1);
  await r.svc.onModuleDestroy();
});

test('a standby neither drives nor publishes nor writes; it serves the leader board', async () => {
  const r = rig({ leader: () => false });
  await r.svc.evaluate();
  await r.svc.evaluate();
  assert.deepEqual([r.scaled.length, r.published.length, r.boards.length], [0, 0, 0]);
  const own = PoolListSchema.parse(await r.svc.board());
  assert.deepEqual([own.leader, own.items.length], [null, 0]);
  await r.svc.onModuleDestroy();
});

test('a new leader continues from what the driver runs: no double scaling', async () => {
  // The old leader started 5 executors; the queue still asks for 5.
  const r = rig({ leader: () => true, driverStart: { executor: 5, gpu: 1 } });
  await r.svc.evaluate();
  assert.deepEqual(r.published, [], 'nothing to change');
  assert.deepEqual(r.scaled.find(([role]) => role === 'executor'), ['executor', 5]);
  await r.svc.onModuleDestroy();
});
