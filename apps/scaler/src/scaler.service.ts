/**
 * The Nest adapter around the scaling policy: every interval it takes (or
 * renews) the leader lease; the leader reads the queues and the heartbeats,
 * runs `evaluatePool` per role, tells the driver the desired sizes, publishes
 * each change as a `scaler.decision` event, mirrors the result into metrics
 * and writes the pool list to Redis for `/v1/pools`. A standby only renews
 * its claim and reads the leader's list.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { ScalerDecisionEvent } from '@muse/contracts';
import { LOGGER, MuseMetrics, type Logger } from '@muse/telemetry';
import type { PoolDriver } from './drivers/pool-driver.js';
import type { LeaderLease } from './leader-lease.js';
import { evaluatePool, toPoolView, type PoolRecord } from './pool-board.js';
import { agentsByRole, poolRoles } from './pool-observation.js';
import type { PoolList } from './pools.schema.js';
import { SCALER_SOURCES, type ScalerSources } from './scaler-sources.js';
import { policyFor, type PoolObservation, type PoolPolicyOverrides } from './scaling.policy.js';

export const SCALER_OPTIONS = Symbol('scaler.options');
export const SCALER_RUNTIME = Symbol('scaler.runtime');

/** Longest wait for a running evaluation on shutdown, in ms. */
const STOP_WAIT_MS = 2_000;

export interface ScalerOptions {
  /** Period of evaluation, in ms (`MUSE_SCALER_INTERVAL_MS`). */
  intervalMs: number;
  /** An agent whose last heartbeat is older than this is not counted, in ms. @default 10_000 */
  agentTtlMs: number;
  /** Per-role policy overrides over the defaults (from `MUSE_SCALER_CONFIG`). @default {} */
  overrides: PoolPolicyOverrides;
}

export interface ScalerRuntime {
  lease: Pick<LeaderLease, 'tick' | 'isLeader' | 'currentTerm' | 'release' | 'id'>;
  driver: PoolDriver;
}

@Injectable()
export class ScalerService implements OnApplicationBootstrap, OnModuleDestroy {
  private pools = new Map<string, PoolRecord>();
  private evaluatedAt: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** The term our pool records belong to: a new leadership starts from what runs, not from an old memory. */
  private term = 0;
  /** Completion totals per role at the previous evaluation, for the throughput policy. */
  private lastDone = new Map<string, { done: number; at: number }>();

  private readonly desired;
  private readonly actual;
  private readonly decisions;
  private readonly leaderGauge;

  constructor(
    @Inject(SCALER_SOURCES) private readonly sources: ScalerSources,
    @Inject(SCALER_OPTIONS) private readonly opts: ScalerOptions,
    @Inject(SCALER_RUNTIME) private readonly runtime: ScalerRuntime,
    @Inject(MuseMetrics) metrics: MuseMetrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.desired = metrics.gauge('muse_scaler_desired_workers', 'Workers each agent pool should have, per the scaling policy', ['role']);
    this.actual = metrics.gauge('muse_scaler_actual_workers', 'Agents serving each role with a fresh heartbeat', ['role']);
    this.decisions = metrics.counter('muse_scaler_decisions_total', 'Changes of a pool desired size, by direction', ['role', 'direction']);
    this.leaderGauge = metrics.gauge('muse_scaler_leader', '1 on the scaler replica holding the leader lease, else 0', []);
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
    const leader = this.runtime.lease.isLeader();
    await this.runtime.driver.close(leader).catch((err: unknown) => this.logger.warn({ err }, 'scaler driver close failed'));
    await this.runtime.lease.release().catch(() => undefined);
  }

  /** This replica's own view: the pools when it leads, else nothing evaluated. */
  list(): PoolList {
    return { evaluatedAt: this.evaluatedAt, leader: this.term > 0 ? this.runtime.lease.id : null, driver: this.runtime.driver.name, items: [...this.pools.values()].map(toPoolView) };
  }

  /** What `/v1/pools` answers on every replica: the leader's list from Redis (or our own while none is there). */
  async board(): Promise<PoolList> {
    return (await this.sources.readBoard().catch(() => null)) ?? this.list();
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
    const lease = await this.runtime.lease.tick();
    this.leaderGauge.set(lease.leader ? 1 : 0);
    if (!lease.leader) {
      if (this.term > 0) this.logger.warn({ holder: lease.holder }, 'scaler lost the leader lease; standing by');
      this.term = 0;
      this.pools = new Map();
      return;
    }
    if (lease.term !== this.term) {
      this.logger.info({ term: lease.term, replica: this.runtime.lease.id }, 'scaler is the leader');
      this.term = lease.term;
      this.pools = new Map();
      this.lastDone.clear();
    }

    const heartbeats = await this.sources.readHeartbeats();
    const nowMs = Date.now();
    const byRole = agentsByRole(heartbeats, nowMs, this.opts.agentTtlMs);
    const roles = poolRoles(this.pools.keys(), [...byRole.keys(), ...Object.keys(this.opts.overrides).filter((r) => r !== '*')]);
    const depths = await Promise.all(roles.map((role) => this.sources.queueDepth(role)));
    const now = new Date(nowMs);
    const next = new Map<string, PoolRecord>();
    for (const [i, role] of roles.entries()) {
      const depth = depths[i]!;
      const agents = byRole.get(role) ?? { agents: 0, busy: 0, done: 0 };
      const obs: PoolObservation = { waiting: depth.waiting, active: depth.active, delayed: depth.delayed, agents: agents.agents, busyAgents: agents.busy };
      if (agents.cpu !== undefined) obs.cpu = agents.cpu;
      if (agents.memory !== undefined) obs.memory = agents.memory;
      const prevDone = this.lastDone.get(role);
      if (prevDone && nowMs > prevDone.at) obs.completedPerMinute = Math.round((Math.max(0, agents.done - prevDone.done) * 60_000) / (nowMs - prevDone.at));
      this.lastDone.set(role, { done: agents.done, at: nowMs });

      const prev = this.pools.get(role);
      const driverNow = prev ? null : await this.driverCurrent(role);
      const policy = policyFor(role, this.opts.overrides);
      const { record, change } = evaluatePool(prev, role, policy, obs, now, driverNow ?? obs.agents);
      if (change) {
        this.decisions.inc({ role, direction: change.direction });
        this.logger.info(
          { role, from: change.from, to: change.to, direction: change.direction, need: change.need, reason: change.reason, queue: depth, agents: agents.agents, busy: agents.busy },
          'scaling decision',
        );
        const ev: ScalerDecisionEvent = {
          type: 'scaler.decision',
          role,
          from: change.from,
          to: change.to,
          direction: change.direction,
          reason: change.reason,
          need: change.need,
          policy: policy.kind,
          numbers: { waiting: obs.waiting, active: obs.active, delayed: obs.delayed, agents: obs.agents, busy: obs.busyAgents },
          leader: this.runtime.lease.id,
          term: lease.term,
          at: now.toISOString(),
        };
        if (obs.cpu !== undefined) ev.numbers.cpu = obs.cpu;
        if (obs.memory !== undefined) ev.numbers.memory = obs.memory;
        if (obs.completedPerMinute !== undefined) ev.numbers.completedPerMinute = obs.completedPerMinute;
        await this.sources.publishDecision(ev).catch((err: unknown) => this.logger.warn({ err, role }, 'scaler.decision not published'));
      }
      // Act only while the lease is surely ours: a replica paused past its TTL must not resize beside the new leader.
      if (this.runtime.lease.isLeader()) {
        try {
          await this.runtime.driver.scale(role, record.state.desired);
          record.driverActual = await this.runtime.driver.current(role);
        } catch (err) {
          this.logger.warn({ err, role, desired: record.state.desired }, 'scaler driver failed; retried next interval');
        }
      }
      next.set(role, record);
      this.desired.set({ role }, record.state.desired);
      this.actual.set({ role }, obs.agents);
    }
    this.pools = next;
    this.evaluatedAt = now.toISOString();
    if (this.runtime.lease.isLeader()) await this.sources.writeBoard(this.list());
  }

  private async driverCurrent(role: string): Promise<number | null> {
    try {
      return await this.runtime.driver.current(role);
    } catch (err) {
      this.logger.warn({ err, role }, 'scaler driver cannot say what runs');
      return null;
    }
  }
}

async function settleWithin(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
