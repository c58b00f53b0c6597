/**
 * The Nest adapter around the scaling policy: every interval it reads the
 * queues and the heartbeats, runs `evaluatePool` per role, mirrors the result
 * into metrics and logs each change. The foundation scaler only decides and
 * reports; the drivers that start and stop workers come later and will call
 * the same policy.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { LOGGER, MuseMetrics, type Logger } from '@muse/telemetry';
import { evaluatePool, toPoolView, type PoolRecord } from './pool-board.js';
import { agentsByRole, poolRoles } from './pool-observation.js';
import type { PoolList } from './pools.schema.js';
import { SCALER_SOURCES, type ScalerSources } from './scaler-sources.js';
import { policyFor, type PoolPolicyOverrides } from './scaling.policy.js';

export const SCALER_OPTIONS = Symbol('scaler.options');

/** Longest wait for a running evaluation on shutdown, in ms. */
const STOP_WAIT_MS = 2_000;

export interface ScalerOptions {
  /** Period of evaluation, in ms (`MUSE_SCALER_INTERVAL_MS`). */
  intervalMs: number;
  /** An agent whose last heartbeat is older than this is not counted, in ms. @default 10_000 */
  agentTtlMs: number;
  /** Per-role policy overrides over the defaults (see `PoolPolicyOverridesSchema`). @default {} */
  overrides: PoolPolicyOverrides;
}

@Injectable()
export class ScalerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly pools = new Map<string, PoolRecord>();
  private evaluatedAt: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  private readonly desired;
  private readonly actual;
  private readonly decisions;

  constructor(
    @Inject(SCALER_SOURCES) private readonly sources: ScalerSources,
    @Inject(SCALER_OPTIONS) private readonly opts: ScalerOptions,
    @Inject(MuseMetrics) metrics: MuseMetrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.desired = metrics.gauge('muse_scaler_desired_workers', 'Workers each agent pool should have, per the scaling policy', ['role']);
    this.actual = metrics.gauge('muse_scaler_actual_workers', 'Agents serving each role with a fresh heartbeat', ['role']);
    this.decisions = metrics.counter('muse_scaler_decisions_total', 'Changes of a pool desired size, by direction', ['role', 'direction']);
  }

  onApplicationBootstrap(): void {
    void this.evaluate();
    this.timer = setInterval(() => void this.evaluate(), this.opts.intervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    // An evaluation blocked on an unreachable Redis (ioredis queues commands while it reconnects)
    // must not hold shutdown until the hard exit: wait a little, then let the closers end it.
    await settleWithin(this.running, STOP_WAIT_MS);
  }

  list(): PoolList {
    return { evaluatedAt: this.evaluatedAt, items: [...this.pools.values()].map(toPoolView) };
  }

  /** One evaluation of every pool; one still running is not started again. */
  evaluate(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.running ??= this.evaluateOnce()
      .catch((err: unknown) => this.logger.warn({ err }, 'scaler evaluation failed; pools keep their last decision'))
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  private async evaluateOnce(): Promise<void> {
    const heartbeats = await this.sources.readHeartbeats();
    const byRole = agentsByRole(heartbeats, Date.now(), this.opts.agentTtlMs);
    const roles = poolRoles(this.pools.keys(), byRole.keys());
    const depths = await Promise.all(roles.map((role) => this.sources.queueDepth(role)));
    const now = new Date();
    roles.forEach((role, i) => {
      const depth = depths[i]!;
      const agents = byRole.get(role) ?? { agents: 0, busy: 0 };
      const obs = { waiting: depth.waiting, active: depth.active, delayed: depth.delayed, agents: agents.agents, busyAgents: agents.busy };
      const { record, change } = evaluatePool(this.pools.get(role), role, policyFor(role, this.opts.overrides), obs, now);
      this.pools.set(role, record);
      this.desired.set({ role }, record.state.desired);
      this.actual.set({ role }, obs.agents);
      if (change) {
        this.decisions.inc({ role, direction: change.direction });
        this.logger.info(
          { role, from: change.from, to: change.to, direction: change.direction, need: change.need, reason: change.reason, queue: depth, agents: agents.agents, busy: agents.busy },
          'scaling decision',
        );
      }
    });
    // Reordered so the list reads like the dashboard: default roles first.
    const ordered = new Map(roles.map((r) => [r, this.pools.get(r)!]));
    this.pools.clear();
    for (const [r, rec] of ordered) this.pools.set(r, rec);
    this.evaluatedAt = now.toISOString();
  }
}

async function settleWithin(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
