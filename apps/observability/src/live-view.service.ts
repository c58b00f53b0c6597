/**
 * The Nest adapter around the snapshot reducer: it wires the live inputs
 * (run events, heartbeats, a one-second poll of the agent hash and the queue
 * depths) into the state, mirrors outcomes into Prometheus, and answers
 * snapshots. The rules live in `snapshot.reducer.ts`.
 */
import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import type { AgentHeartbeat, RunEvent } from '@muse/contracts';
import type { Subscription$ } from '@muse/messaging';
import { LOGGER, MuseMetrics, type Logger } from '@muse/telemetry';
import { LIVE_SOURCES, type LiveSources } from './live-sources.js';
import {
  RUN_OUTCOMES,
  STEP_OUTCOMES,
  activeRunCount,
  applyHeartbeat,
  applyRunEvent,
  buildSnapshot,
  buildSpend,
  createLiveState,
  eventLagSeconds,
  knownRoles,
  liveAgentCount,
  pruneAgents,
  recordQueueDepth,
  seedRun,
  snapshotRun,
  type LiveState,
  type LiveStateOptions,
} from './snapshot.reducer.js';
import type { Snapshot, SnapshotEvent, SnapshotRun } from './snapshot.schema.js';

/**
 * What changed, for the live push (`/v1/live`): one applied run event with
 * its run as it now stands, or a finished poll (agents, queue depths).
 */
export type LiveChange = { kind: 'event'; event: SnapshotEvent; run: SnapshotRun | undefined } | { kind: 'poll' };
export type LiveListener = (change: LiveChange) => void;

export const LIVE_VIEW_OPTIONS = Symbol('observability.live-view-options');

export interface LiveViewOptions {
  namespace: string;
  /** Period of the agent-hash and queue-depth poll, in ms. @default 1_000 */
  pollIntervalMs: number;
  /** Runs read per project from the read model at start. @default 1_000 */
  seedRunsPerProject: number;
  /** Wait before retrying a failed seed, in ms. @default 5_000 */
  seedRetryMs: number;
  state?: Partial<LiveStateOptions>;
}

export const DEFAULT_LIVE_VIEW_OPTIONS: Omit<LiveViewOptions, 'namespace'> = {
  pollIntervalMs: 1_000,
  seedRunsPerProject: 1_000,
  seedRetryMs: 5_000,
};

const QUEUE_STATES = ['waiting', 'active', 'delayed'] as const;

/** Longest wait for a running poll on shutdown, in ms. */
const STOP_WAIT_MS = 2_000;

@Injectable()
export class LiveViewService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly state: LiveState;
  private subscription: Subscription$ | undefined;
  private timer: NodeJS.Timeout | undefined;
  private seedTimer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;
  private readonly listeners = new Set<LiveListener>();

  private readonly runsTotal;
  private readonly stepsTotal;
  private readonly runsActive;
  private readonly queueDepth;
  private readonly agentsAlive;
  private readonly eventLag;

  constructor(
    @Inject(LIVE_SOURCES) private readonly sources: LiveSources,
    @Inject(LIVE_VIEW_OPTIONS) private readonly opts: LiveViewOptions,
    @Inject(MuseMetrics) metrics: MuseMetrics,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.state = createLiveState(opts.namespace, new Date(), opts.state);
    this.runsTotal = metrics.counter('muse_runs_total', 'Runs started and finished, by outcome, as seen live by observability', ['status']);
    this.stepsTotal = metrics.counter('muse_steps_total', 'Step attempts finished, by outcome (retried = failed with attempts left)', ['outcome']);
    this.runsActive = metrics.gauge('muse_runs_active', 'Runs not in a terminal status (pending, running, waiting)');
    this.queueDepth = metrics.gauge('muse_queue_depth', 'Step jobs in each agent role queue, by BullMQ state', ['role', 'state']);
    this.agentsAlive = metrics.gauge('muse_agents_alive', 'Agents whose last heartbeat is fresh');
    this.eventLag = metrics.histogram('muse_event_lag_seconds', 'Time from a run event being appended to observability receiving it, in seconds');
    // Zero every series up front so dashboards and rate() see them before the first event.
    for (const s of RUN_OUTCOMES) this.runsTotal.inc({ status: s }, 0);
    for (const o of STEP_OUTCOMES) this.stepsTotal.inc({ outcome: o }, 0);
    this.runsActive.set(0);
    this.agentsAlive.set(0);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.start();
  }

  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  /**
   * Subscribes first and seeds second: an event appended while the seed is
   * read arrives live, and a view no newer than what the state holds is
   * ignored, so nothing falls in between.
   */
  async start(): Promise<void> {
    this.sources.subscribeHeartbeats((hb) => this.onHeartbeat(hb));
    this.subscription = await this.sources.subscribeRunEvents((ev) => this.onEvent(ev));
    void this.seed();
    void this.poll();
    this.timer = setInterval(() => void this.poll(), this.opts.pollIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.seedTimer) clearTimeout(this.seedTimer);
    await this.subscription?.stop();
    this.subscription = undefined;
    // A poll blocked on an unreachable Redis (ioredis queues commands while it reconnects)
    // must not hold shutdown until the hard exit: wait a little, then let the closers end it.
    await settleWithin(this.polling, STOP_WAIT_MS);
  }

  snapshot(now = new Date()): Snapshot {
    return buildSnapshot(this.state, now);
  }

  /** The small, always-current part of the snapshot: run counts, totals, spend (sent with every pushed event). */
  counters(): Pick<Snapshot, 'totals' | 'spend'> & { runs: Pick<Snapshot['runs'], 'byStatus' | 'active'> } {
    return {
      runs: { byStatus: { ...this.state.byStatus }, active: activeRunCount(this.state) },
      totals: { since: this.state.since, ...this.state.totals },
      spend: buildSpend(this.state),
    };
  }

  /** Calls `listener` after every applied event and every poll, synchronously; returns the unsubscribe. */
  listen(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private notify(change: LiveChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (err) {
        this.logger.warn({ err }, 'live listener failed');
      }
    }
  }

  onEvent(ev: RunEvent): void {
    if (this.stopped) return;
    const res = applyRunEvent(this.state, ev);
    if (!res.applied) return;
    const lag = eventLagSeconds(ev, Date.now());
    if (lag !== undefined) this.eventLag.observe(lag);
    if (res.runOutcome) this.runsTotal.inc({ status: res.runOutcome });
    if (res.stepOutcome) this.stepsTotal.inc({ outcome: res.stepOutcome });
    this.runsActive.set(activeRunCount(this.state));
    if (this.listeners.size > 0) {
      const event = this.state.events.at(-1);
      if (event) this.notify({ kind: 'event', event, run: snapshotRun(this.state, ev.runId) });
    }
  }

  onHeartbeat(hb: AgentHeartbeat): void {
    if (this.stopped) return;
    applyHeartbeat(this.state, hb, Date.now());
  }

  /** Reads the agent hash and every known role's queue depth; a poll still running is not started again. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce()
      .catch((err: unknown) => this.logger.warn({ err }, 'observability poll failed'))
      .finally(() => {
        this.polling = undefined;
      });
    return this.polling;
  }

  private async pollOnce(): Promise<void> {
    for (const hb of await this.sources.readHeartbeats()) applyHeartbeat(this.state, hb, Date.now());
    pruneAgents(this.state, Date.now());
    this.agentsAlive.set(liveAgentCount(this.state, Date.now()));

    const roles = knownRoles(this.state);
    const depths = await Promise.all(roles.map((role) => this.sources.queueDepth(role)));
    const at = new Date();
    roles.forEach((role, i) => {
      const depth = depths[i]!;
      recordQueueDepth(this.state, role, depth, at);
      for (const s of QUEUE_STATES) this.queueDepth.set({ role, state: s }, depth[s]);
    });
    this.runsActive.set(activeRunCount(this.state));
    this.notify({ kind: 'poll' });
  }

  /** Seeds the run view from the Redis read model, retrying until it works (Redis may be late at boot). */
  private async seed(): Promise<void> {
    if (this.stopped) return;
    try {
      const { runs, invalid } = await this.sources.readRecentRuns(this.opts.seedRunsPerProject);
      // Oldest first, so the least recently updated runs are the first forgotten past the cap.
      runs.sort((a, b) => Date.parse(a.updatedAt) - Date.parse(b.updatedAt));
      let taken = 0;
      for (const view of runs) if (seedRun(this.state, view)) taken++;
      this.runsActive.set(activeRunCount(this.state));
      this.logger.info({ read: runs.length, taken, invalid }, 'seeded runs from the read model');
    } catch (err) {
      this.logger.warn({ err, retryMs: this.opts.seedRetryMs }, 'seeding runs from the read model failed; retrying');
      this.seedTimer = setTimeout(() => void this.seed(), this.opts.seedRetryMs);
      this.seedTimer.unref();
    }
  }
}

async function settleWithin(p: Promise<unknown> | undefined, ms: number): Promise<void> {
  if (!p) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}
