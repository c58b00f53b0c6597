/**
 * Tells the cluster an agent is alive (an agent worker, or the gateway for a remote agent connected to it) and how busy it is: every period,
 * `HSET <agentsKey> <agentId> <AgentHeartbeat JSON>` (read by the gateway and
 * the scaler, which drop entries older than their TTL) and a core-NATS
 * publish on the heartbeat subject (live views). `stop` removes the entry so
 * a drained worker leaves the list at once instead of after the TTL.
 */
import { AgentHeartbeatSchema, type AgentHeartbeat, type MuseNames } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';

export interface HeartbeatIdentity {
  agentId: string;
  roles: string[];
  pid: number;
  host: string;
  /** Jobs taken at once, per role (MUSE_AGENT_CONCURRENCY). */
  concurrency: number;
  startedAt: string;
  version: string;
  /** A remote agent, beaten for by the gateway it is connected to. */
  remote?: boolean;
  capabilities?: string[];
}

export interface WorkerCounts {
  inFlight: number;
  completed: number;
  failed: number;
  /** Mean time of this agent's finished step attempts, in ms; absent before the first. */
  avgStepMs?: number;
}

export interface HeartbeatDeps {
  redis: { hset(key: string, field: string, value: string): Promise<unknown>; hdel(key: string, field: string): Promise<unknown> };
  bus: { publish(subject: string, payload: unknown): void };
  names: Pick<MuseNames, 'agentsKey' | 'agentHeartbeatSubject'>;
  identity: HeartbeatIdentity;
  counts: () => WorkerCounts;
  /** CPU and memory of the process (see `resource-sampler.ts`), for the scaler's `resource` policy; omitted when absent. */
  resources?: () => { cpu: number; memory: number };
  intervalMs: number;
  logger?: Pick<Logger, 'warn'>;
  now?: () => Date;
}

export class HeartbeatService {
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly deps: HeartbeatDeps) {}

  snapshot(): AgentHeartbeat {
    const now = this.deps.now?.() ?? new Date();
    return AgentHeartbeatSchema.parse({ ...this.deps.identity, ...this.deps.counts(), ...this.deps.resources?.(), at: now.toISOString() });
  }

  /** Beats now, then every `intervalMs`. */
  start(): void {
    this.stopped = false;
    this.tick();
    this.timer = setInterval(() => this.tick(), this.deps.intervalMs);
    this.timer.unref();
  }

  async beat(): Promise<void> {
    const hb = this.snapshot();
    await this.deps.redis.hset(this.deps.names.agentsKey, hb.agentId, JSON.stringify(hb));
    this.deps.bus.publish(this.deps.names.agentHeartbeatSubject, hb);
  }

  /** Stops beating and deregisters. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.beating;
    await this.deps.redis.hdel(this.deps.names.agentsKey, this.deps.identity.agentId);
  }

  private tick(): void {
    // One beat at a time: while Redis is away a beat waits, and beats must not pile up behind it.
    if (this.beating || this.stopped) return;
    this.beating = this.beat()
      .catch((err: unknown) => this.deps.logger?.warn({ err: (err as Error).message }, 'heartbeat failed'))
      .finally(() => {
        this.beating = undefined;
      });
  }
}
