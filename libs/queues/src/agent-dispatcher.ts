/**
 * Targeted dispatch: which queue a step job goes to under the role's
 * strategy (`MUSE_DISPATCH`; see `dispatch.schema.ts` in contracts).
 *
 * `shared` and steps that `require` capabilities keep their role queue. The
 * other strategies pick a live agent from the registry and put the job on
 * that agent's own queue (`<role>@<agentId>`). The choice is stored once per
 * job id (`SET NX`) before the job is added, so a coordinator that re-enqueues
 * after a crash sends the job to the same queue, never a second copy to
 * another. With no live agent of the role, the job stays on the role queue.
 */
import type { Redis } from 'ioredis';
import {
  AGENT_QUEUE_ID_PATTERN,
  agentQueueRole,
  queueRole,
  stepJobId,
  strategyFor,
  type AgentHeartbeat,
  type DispatchStrategy,
  type DispatchTable,
  type MuseNames,
  type StepJob,
} from '@muse/contracts';
import { readAgentHeartbeats } from './agent-registry.js';

/** An agent that may take a targeted job, with what it has to do now. */
export interface DispatchCandidate {
  agentId: string;
  /** Jobs running on it: its heartbeat's count, or its own queue's active jobs when that is more (heartbeats lag). */
  inFlight: number;
  /** Jobs waiting on its own queue for the role. */
  queued: number;
}

export interface ChooseOptions {
  /** The round-robin turn (a counter shared by every coordinator). */
  turn: number;
  /** The agent that ran the run's latest step (`affinity`). */
  preferAgent?: string;
}

/**
 * The agent a strategy picks among `candidates`, or undefined for the role
 * queue (`shared`, or nobody to pick). Ties go to the smaller agent id, so
 * the choice depends only on its inputs.
 */
export function chooseAgent(strategy: DispatchStrategy, candidates: readonly DispatchCandidate[], opts: ChooseOptions): string | undefined {
  if (strategy === 'shared' || candidates.length === 0) return undefined;
  const sorted = [...candidates].sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
  if (strategy === 'round-robin') return sorted[((opts.turn % sorted.length) + sorted.length) % sorted.length]!.agentId;
  if (strategy === 'affinity' && opts.preferAgent !== undefined && sorted.some((c) => c.agentId === opts.preferAgent)) return opts.preferAgent;
  let best = sorted[0]!;
  for (const c of sorted) if (c.inFlight + c.queued < best.inFlight + best.queued) best = c;
  return best.agentId;
}

/** Live agents of `role` that can own a queue: fresh heartbeat, local (remote agents take the role queue), a usable id. */
export function dispatchCandidates(heartbeats: readonly AgentHeartbeat[], role: string, nowMs: number, ttlMs: number): AgentHeartbeat[] {
  return heartbeats.filter((hb) => !hb.remote && hb.roles.includes(role) && nowMs - Date.parse(hb.at) <= ttlMs && AGENT_QUEUE_ID_PATTERN.test(hb.agentId));
}

export interface AgentDispatcherOptions {
  /** An agent whose heartbeat is older than this gets nothing, in ms. */
  agentTtlMs: number;
  /** How long one read of the registry serves the next choices, in ms. @default 250 */
  registryCacheMs?: number;
  now?: () => number;
}

/** A targeted choice is kept as long as a finished step job, in seconds. */
const ASSIGNMENT_TTL_S = 24 * 3600;

export class AgentDispatcher {
  private registry: { at: number; heartbeats: AgentHeartbeat[] } | undefined;
  private readonly now: () => number;

  constructor(
    private readonly redis: Redis,
    private readonly names: MuseNames,
    private readonly table: DispatchTable,
    private readonly opts: AgentDispatcherOptions,
    /** Waiting and running jobs of a queue role (the step queues' counts). */
    private readonly depth: (queueRole: string) => Promise<{ waiting: number; active: number }>,
  ) {
    this.now = opts.now ?? Date.now;
  }

  strategy(role: string): DispatchStrategy {
    return strategyFor(this.table, role);
  }

  /** The queue role `job` goes to; stores a targeted choice before returning it. */
  async target(job: StepJob, preferAgent?: string): Promise<string> {
    const base = queueRole(job.role, job.requires);
    const strategy = this.strategy(job.role);
    if (strategy === 'shared' || job.requires?.length) return base;
    const key = this.names.dispatchKey(stepJobId(job.runId, job.stepId, job.attempt, job.index));
    const earlier = await this.redis.get(key);
    if (earlier !== null) return earlier;

    const live = dispatchCandidates(await this.heartbeats(), job.role, this.now(), this.opts.agentTtlMs);
    if (live.length === 0) return base;
    const counted = strategy === 'round-robin' ? live.map((hb) => ({ agentId: hb.agentId, inFlight: 0, queued: 0 })) : await this.loads(job.role, live);
    const turn = strategy === 'round-robin' ? await this.redis.incr(this.names.dispatchCursorKey(job.role)) : 0;
    const agentId = chooseAgent(strategy, counted, { turn, ...(preferAgent !== undefined ? { preferAgent } : {}) });
    if (agentId === undefined) return base;
    const chosen = agentQueueRole(job.role, agentId);
    const set = await this.redis.set(key, chosen, 'EX', ASSIGNMENT_TTL_S, 'NX');
    const queue = set === 'OK' ? chosen : ((await this.redis.get(key)) ?? chosen);
    await this.redis.sadd(this.names.dispatchQueuesKey(job.role), queue);
    return queue;
  }

  /** The queue role a job was sent to: its stored targeted choice, else `base`. */
  async queueOf(base: string, jobId: string): Promise<string> {
    if (base.includes('+')) return base;
    return (await this.redis.get(this.names.dispatchKey(jobId))) ?? base;
  }

  private async loads(role: string, live: AgentHeartbeat[]): Promise<DispatchCandidate[]> {
    return Promise.all(
      live.map(async (hb) => {
        const own = await this.depth(agentQueueRole(role, hb.agentId));
        return { agentId: hb.agentId, inFlight: Math.max(hb.inFlight, own.active), queued: own.waiting };
      }),
    );
  }

  private async heartbeats(): Promise<AgentHeartbeat[]> {
    const now = this.now();
    if (!this.registry || now - this.registry.at > (this.opts.registryCacheMs ?? 250)) {
      this.registry = { at: now, heartbeats: (await readAgentHeartbeats(this.redis, this.names)).heartbeats };
    }
    return this.registry.heartbeats;
  }
}
