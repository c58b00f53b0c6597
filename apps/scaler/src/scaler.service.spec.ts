import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AgentHeartbeat } from '@muse/contracts';
import { createLogger, MuseMetrics } from '@muse/telemetry';
import { PoolListSchema } from './pools.schema.js';
import type { ScalerSources } from './scaler-sources.js';
import { ScalerService } from './scaler.service.js';

test('evaluates every pool from the sources and reports it in /v1/pools and metrics', async () => {
  const hash: AgentHeartbeat[] = [
    {
      agentId: 'w1',
      roles: ['executor', 'gpu'],
      pid: 1,
      host: 'h',
      concurrency: 4,
      inFlight: 2,
      completed: 0,
      failed: 0,
      startedAt: new Date().toISOString(),
      at: new Date().toISOString(),
      version: 'x',
    },
  ];
  const depths: Record<string, { waiting: number; active: number; delayed: number }> = { executor: { waiting: 35, active: 4, delayed: 2 } };
  const sources: ScalerSources = {
    readHeartbeats: async () => hash,
    queueDepth: async (role) => depths[role] ?? { waiting: 0, active: 0, delayed: 0 },
  };
  const metrics = new MuseMetrics('scaler-spec');
  const lines: unknown[] = [];
  const logger = createLogger('scaler-spec', 'info');
  const svc = new ScalerService(sources, { intervalMs: 60_000, agentTtlMs: 10_000, overrides: {} }, metrics, Object.assign(Object.create(logger), {
    info: (obj: unknown) => void lines.push(obj),
    warn: (obj: unknown) => void lines.push(obj),
  }));
  await svc.evaluate();

  const list = PoolListSchema.parse(svc.list());
  assert.deepEqual(list.items.map((p) => p.role), ['orchestrator', 'optimizer', 'reviewer', 'executor', 'gpu']);
  const exec = list.items.find((p) => p.role === 'executor')!;
  assert.deepEqual([exec.actual, exec.busy, exec.desired, exec.min, exec.max], [1, 1, 5, 1, 8]);
  assert.deepEqual(exec.queue, { waiting: 35, active: 4, delayed: 2 });
  assert.deepEqual([exec.lastDecision.from, exec.lastDecision.to, exec.lastDecision.direction], [1, 5, 'up']);
  const orch = list.items.find((p) => p.role === 'orchestrator')!;
  assert.deepEqual([orch.actual, orch.desired, orch.lastDecision.from], [0, 1, 0]);

  const text = await metrics.render();
  assert.match(text, /muse_scaler_desired_workers\{role="executor",service="scaler-spec"\} 5/);
  assert.match(text, /muse_scaler_actual_workers\{role="executor",service="scaler-spec"\} 1/);
  assert.match(text, /muse_scaler_decisions_total\{role="executor",direction="up",service="scaler-spec"\} 1/);
  // executor 1 -> 5, and each of the three agent-less pools 0 -> 1 (gpu has w1, busy: need 1, no change).
  assert.equal(lines.length, 1 + 3);
  assert.ok(lines.every((l) => typeof l === 'object' && l !== null && 'role' in l && 'from' in l && 'to' in l && 'reason' in l));

  // Nothing changed: no new decision, no new log line.
  await svc.evaluate();
  assert.equal(lines.length, 4);

  // A failing source keeps the last decisions and logs a warning.
  sources.readHeartbeats = async () => {
    throw new Error('redis down');
  };
  await svc.evaluate();
  assert.equal(PoolListSchema.parse(svc.list()).items.find((p) => p.role === 'executor')!.desired, 5);
  assert.equal(lines.length, 5);

  await svc.onModuleDestroy();
});
