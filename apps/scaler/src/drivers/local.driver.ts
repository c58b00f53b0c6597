/**
 * `local` (the default): each pool is a set of agent-worker processes on this
 * machine, one role each (`MUSE_AGENT_ROLES=<role>`), started with this
 * Node (`process.execPath apps/agent-worker/dist/main.js`) and the scaler's
 * own environment (NATS, Redis, namespace, artifact store...).
 *
 * Which workers are the pool's: the ones this driver started, recorded in
 * Redis (`scalerWorkersKey`: agent id -> role, pid, host) — not every agent
 * with a heartbeat. Workers started otherwise (the launcher's `--workers`,
 * a second machine) are never stopped by it. The record is in Redis, not in
 * memory, so that after a failover the new leader (on the same host) counts
 * the workers the old one started (they outlive a killed scaler) instead of
 * starting the pool again, and can stop them.
 *
 * Stopping = SIGTERM: the worker takes no new job, finishes or hands back its
 * in-flight steps within its grace period, deregisters and exits
 * (`step-workers.service.ts`). A worker being stopped no longer counts
 * towards the pool, and the idle ones (no job in flight) go first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { Redis } from 'ioredis';
import type { AgentHeartbeat } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import type { PoolDriver } from './pool-driver.js';

const WorkerRecordSchema = z.object({
  role: z.string(),
  pid: z.number().int(),
  host: z.string(),
  startedAt: z.string(),
  /** When it was told to stop (SIGTERM); absent while it serves. */
  stoppingAt: z.string().optional(),
});
type WorkerRecord = z.infer<typeof WorkerRecordSchema>;

/** The agent-worker entry point, beside this app in the repo (and in the image). */
export const AGENT_WORKER_SCRIPT = fileURLToPath(new URL('../../../agent-worker/dist/main.js', import.meta.url));

/** Variables of the scaler that a worker must not inherit. */
const SCALER_ONLY = /^(SCALER_PORT|MUSE_SCALER_.*)$/;

export interface LocalDriverOptions {
  redis: Pick<Redis, 'hgetall' | 'hset' | 'hdel'>;
  workersKey: string;
  namespace: string;
  /** The scaler's environment, passed on to workers (minus its own variables). */
  env: NodeJS.ProcessEnv;
  /** Folder for one log file per worker; unset = output dropped. */
  logDir?: string;
  /** Latest heartbeats, to stop idle workers first. */
  heartbeats: () => Promise<AgentHeartbeat[]>;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** How long `close` waits for its workers to drain, in ms. */
  drainWaitMs: number;
  script?: string;
}

export class LocalDriver implements PoolDriver {
  readonly name = 'local' as const;
  private readonly host = hostname();
  private readonly children = new Map<string, ChildProcess>();

  constructor(private readonly opts: LocalDriverOptions) {}

  /** Live records of this host, pruned of processes that are gone. */
  async records(): Promise<Map<string, WorkerRecord>> {
    const raw = await this.opts.redis.hgetall(this.opts.workersKey);
    const out = new Map<string, WorkerRecord>();
    for (const [agentId, json] of Object.entries(raw)) {
      const rec = WorkerRecordSchema.safeParse(safeJson(json));
      if (!rec.success) {
        await this.opts.redis.hdel(this.opts.workersKey, agentId);
        continue;
      }
      if (rec.data.host !== this.host) continue; // another machine's scaler: not ours to judge
      if (!alive(rec.data.pid)) {
        await this.opts.redis.hdel(this.opts.workersKey, agentId);
        continue;
      }
      out.set(agentId, rec.data);
    }
    return out;
  }

  async current(role: string): Promise<number> {
    return [...(await this.records()).values()].filter((r) => r.role === role && !r.stoppingAt).length;
  }

  async scale(role: string, desired: number): Promise<void> {
    const serving = [...(await this.records()).entries()].filter(([, r]) => r.role === role && !r.stoppingAt);
    if (serving.length < desired) {
      for (let i = serving.length; i < desired; i++) await this.start(role);
    } else if (serving.length > desired) {
      const busy = new Map((await this.opts.heartbeats()).map((hb) => [hb.agentId, hb.inFlight]));
      // Idle first, then the youngest (the oldest has its caches warm).
      const order = serving.sort(([a, ra], [b, rb]) => (busy.get(a) ?? 0) - (busy.get(b) ?? 0) || rb.startedAt.localeCompare(ra.startedAt));
      for (const [agentId, rec] of order.slice(0, serving.length - desired)) await this.stop(agentId, rec);
    }
  }

  private async start(role: string): Promise<void> {
    const agentId = `${this.opts.namespace}-pool-${role}-${randomBytes(4).toString('hex')}`;
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(this.opts.env)) if (!SCALER_ONLY.test(k)) env[k] = v;
    Object.assign(env, { MUSE_AGENT_ROLES: role, MUSE_AGENT_ID: agentId, AGENT_WORKER_PORT: '0' });
    // The worker writes to its log file itself (a descriptor, not a pipe through us): it must outlive a
    // killed scaler, which a pipe would turn into EPIPE on its next log line.
    const fd = this.opts.logDir ? this.openLog(agentId) : undefined;
    const child = spawn(process.execPath, [this.opts.script ?? AGENT_WORKER_SCRIPT], { env, stdio: ['ignore', fd ?? 'ignore', fd ?? 'ignore'] });
    if (fd !== undefined) closeSync(fd);
    if (child.pid === undefined) {
      this.opts.logger.warn({ role, agentId }, 'local driver: worker did not start');
      return;
    }
    this.children.set(agentId, child);
    child.once('exit', (code, signal) => {
      this.children.delete(agentId);
      this.opts.logger.info({ role, agentId, pid: child.pid, code, signal }, 'local driver: worker exited');
      void this.opts.redis.hdel(this.opts.workersKey, agentId).catch(() => undefined);
    });
    const rec: WorkerRecord = { role, pid: child.pid, host: this.host, startedAt: new Date().toISOString() };
    await this.opts.redis.hset(this.opts.workersKey, agentId, JSON.stringify(rec));
    this.opts.logger.info({ role, agentId, pid: child.pid }, 'local driver: worker started');
  }

  private async stop(agentId: string, rec: WorkerRecord): Promise<void> {
    await this.opts.redis.hset(this.opts.workersKey, agentId, JSON.stringify({ ...rec, stoppingAt: new Date().toISOString() }));
    try {
      process.kill(rec.pid, 'SIGTERM');
      this.opts.logger.info({ role: rec.role, agentId, pid: rec.pid }, 'local driver: worker told to drain');
    } catch {
      await this.opts.redis.hdel(this.opts.workersKey, agentId); // already gone
    }
  }

  /**
   * The leader stops every worker of the pools on this host (its own and the
   * ones it adopted after a failover) and waits for them to drain; a standby
   * owns nothing and leaves them to the leader.
   */
  async close(leader: boolean): Promise<void> {
    if (!leader) return;
    const recs = await this.records();
    for (const [agentId, rec] of recs) if (!rec.stoppingAt) await this.stop(agentId, rec);
    const deadline = Date.now() + this.opts.drainWaitMs;
    while (Date.now() < deadline && [...recs.values()].some((r) => alive(r.pid))) await new Promise((r) => setTimeout(r, 100));
    for (const [agentId, rec] of recs) {
      if (alive(rec.pid)) {
        this.opts.logger.warn({ agentId, pid: rec.pid }, 'local driver: worker still draining at scaler shutdown; killed');
        try {
          process.kill(rec.pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      await this.opts.redis.hdel(this.opts.workersKey, agentId).catch(() => undefined);
    }
  }

  private openLog(agentId: string): number {
    mkdirSync(this.opts.logDir!, { recursive: true });
    return openSync(join(this.opts.logDir!, `${agentId}.log`), 'a');
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function safeJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}
