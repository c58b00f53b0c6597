/**
 * Work stealing between agents' own queues (targeted dispatch: `round-robin`,
 * `least-loaded`, `affinity`).
 *
 * Every `intervalMs`, for each of its roles where this agent has a free slot
 * and nothing waiting on its own queue, it looks at the other agents' own
 * queues of the role (the set the dispatcher keeps) and takes work from
 *  - an overloaded agent: jobs wait on its queue while its worker there runs
 *    as many as its concurrency allows;
 *  - an agent gone silent (no heartbeat within `agentTtlMs`): its waiting
 *    jobs, and its stuck active ones, which BullMQ's stalled check of the
 *    stealing worker fails so the coordinator queues their next attempt.
 *
 * Stealing is a plain BullMQ worker (concurrency 1) on the victim's queue:
 * BullMQ's job lock already makes "who runs this job" atomic, so no job is
 * moved between queues and none can be lost or run twice by the stealing.
 * The worker is closed once the victim no longer needs help.
 */
import type { Worker } from 'bullmq';
import { AGENT_QUEUE_SEPARATOR, type AgentHeartbeat, type StepJob } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';

/** One agent's own queue, as the stealer sees it. */
export interface VictimQueue {
  queueRole: string;
  owner: string;
  waiting: number;
  active: number;
  /** The owner's heartbeat, if it has one. */
  heartbeat?: Pick<AgentHeartbeat, 'at' | 'concurrency'>;
}

export interface StealInput {
  self: string;
  /** Free job slots of this agent for the role. */
  freeSlots: number;
  /** Jobs waiting on this agent's own queue for the role. */
  ownWaiting: number;
  queues: readonly VictimQueue[];
  nowMs: number;
  agentTtlMs: number;
}

export type StealReason = 'overloaded' | 'silent';

/** The queues to take work from now, and why; queues of silent owners with nothing left go in `forget`. */
export function stealTargets(input: StealInput): { steal: Array<{ queueRole: string; reason: StealReason }>; forget: string[] } {
  const steal: Array<{ queueRole: string; reason: StealReason }> = [];
  const forget: string[] = [];
  for (const q of input.queues) {
    if (q.owner === input.self) continue;
    const silent = q.heartbeat === undefined || input.nowMs - Date.parse(q.heartbeat.at) > input.agentTtlMs;
    if (silent && q.waiting + q.active === 0) {
      forget.push(q.queueRole);
      continue;
    }
    if (input.freeSlots <= 0 || input.ownWaiting > 0) continue;
    if (silent) steal.push({ queueRole: q.queueRole, reason: 'silent' });
    else if (q.waiting > 0 && q.active >= q.heartbeat!.concurrency) steal.push({ queueRole: q.queueRole, reason: 'overloaded' });
  }
  return { steal, forget };
}

export interface WorkStealerDeps {
  agentId: string;
  roles: readonly string[];
  intervalMs: number;
  agentTtlMs: number;
  /** Free job slots of this agent for `role`. */
  freeSlots(role: string): number;
  /** The agents' own queues of each of `roles` (the dispatcher's sets), in the order of `roles`: one read for all. */
  agentQueues(roles: readonly string[]): Promise<string[][]>;
  forgetQueue(role: string, queueRole: string): Promise<void>;
  depth(queueRole: string): Promise<{ waiting: number; active: number }>;
  heartbeats(): Promise<AgentHeartbeat[]>;
  /** A BullMQ worker on `queueRole` that runs its jobs as `role`, concurrency 1. */
  startWorker(queueRole: string, role: string): Worker<StepJob>;
  onSteal?(role: string, reason: StealReason): void;
  logger: Pick<Logger, 'info' | 'warn' | 'debug'>;
}

export class WorkStealer {
  private timer: NodeJS.Timeout | undefined;
  private readonly active = new Map<string, { worker: Worker<StepJob>; role: string }>();
  private ticking = false;
  private stopped = false;

  constructor(private readonly deps: WorkStealerDeps) {}

  start(): void {
    if (this.deps.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.tick(), this.deps.intervalMs);
    this.timer.unref();
  }

  /** Stops looking and closes the stealing workers (their running jobs finish first unless `force`). */
  async stop(force = false): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const all = [...this.active.values()];
    this.active.clear();
    await Promise.all(all.map((a) => a.worker.close(force).catch(() => undefined)));
  }

  /** Pauses the stealing workers (drain: no new jobs), as `Worker.pause` does. */
  async pause(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.active.values()].map((a) => a.worker.pause()));
  }

  async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.ticking = true;
    try {
      // Read once a role has other agents' queues to judge: under `shared` dispatch (the default) none has, and an
      // idle agent then reads the roles' sets each tick, not every agent's heartbeat.
      let heartbeats: Map<string, AgentHeartbeat> | undefined;
      const wanted = new Set<string>();
      // Every role's set in one read: an idle agent's tick is one round trip to Redis, not one per role.
      const sets = await this.deps.agentQueues(this.deps.roles);
      for (const [i, role] of this.deps.roles.entries()) {
        const names = (sets[i] ?? []).filter((q) => ownerOf(q) !== this.deps.agentId);
        // Under `shared` dispatch no agent has a queue of its own: nothing more to read for this role.
        if (names.length === 0) continue;
        heartbeats ??= new Map((await this.deps.heartbeats()).map((hb) => [hb.agentId, hb]));
        const known = heartbeats;
        const own = await this.deps.depth(`${role}${AGENT_QUEUE_SEPARATOR}${this.deps.agentId}`);
        const queues: VictimQueue[] = await Promise.all(
          names.map(async (queueRole) => {
            const owner = ownerOf(queueRole);
            const d = await this.deps.depth(queueRole);
            const hb = known.get(owner);
            return { queueRole, owner, waiting: d.waiting, active: d.active, ...(hb ? { heartbeat: hb } : {}) };
          }),
        );
        const { steal, forget } = stealTargets({ self: this.deps.agentId, freeSlots: this.deps.freeSlots(role), ownWaiting: own.waiting, queues, nowMs: Date.now(), agentTtlMs: this.deps.agentTtlMs });
        for (const q of forget) await this.deps.forgetQueue(role, q);
        for (const { queueRole, reason } of steal) {
          wanted.add(queueRole);
          if (this.active.has(queueRole) || this.stopped) continue;
          this.deps.logger.info({ role, queue: queueRole, reason }, 'stealing work from another agent\'s queue');
          const worker = this.deps.startWorker(queueRole, role);
          worker.on('active', () => this.deps.onSteal?.(role, reason));
          this.active.set(queueRole, { worker, role });
        }
      }
      for (const [queueRole, a] of this.active) {
        if (wanted.has(queueRole)) continue;
        this.active.delete(queueRole);
        this.deps.logger.debug({ queue: queueRole }, 'done stealing from this queue');
        void a.worker.close().catch(() => undefined);
      }
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message }, 'looking for work to steal failed');
    } finally {
      this.ticking = false;
    }
  }
}

/** The agent id of an own queue role `<role>@<agentId>`. */
function ownerOf(queueRole: string): string {
  return queueRole.slice(queueRole.indexOf(AGENT_QUEUE_SEPARATOR) + 1);
}
