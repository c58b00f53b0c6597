/** A cluster to measure, started the way `npm start` starts one, and the means to talk to it. */
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, ensureInfra, purgeNamespace, type InfraHandle } from '@muse/cluster';
import { museNames, type MuseNames, type RunEvent } from '@muse/contracts';
import { createRedis } from '@muse/queues';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';

export interface BenchContext {
  quick: boolean;
  /** Measured repetitions per figure (after one warm-up). */
  reps: number;
  cluster: Cluster;
  gateway: string;
  namespace: string;
  names: MuseNames;
  natsUrl: string;
  redisUrl: string;
  apiKey: string;
  headers(extra?: Record<string, string>): Record<string, string>;
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  log(line: string): void;
}

/** `env`: extra environment for every service (a second cluster with tracing on, …). */
export async function startBench(opts: { quick: boolean; log: (l: string) => void; env?: Record<string, string> }): Promise<{ ctx: BenchContext; stop(): Promise<void> }> {
  const natsUrl = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const namespace = `bench-${randomBytes(4).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), `muse-${namespace}-`));
  // The API key format the gateway requires (MUSE_BOOTSTRAP_API_KEY): muse_<12 hex>_<43+ base64url>.
  const apiKey = process.env.MUSE_BOOTSTRAP_API_KEY ?? `muse_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
  const infra: InfraHandle = await ensureInfra({ natsUrl, redisUrl, dataDir: join(dataDir, 'infra'), log: opts.log });
  const cluster = await Cluster.start({
    namespace,
    natsUrl,
    redisUrl,
    ports: 'random',
    workers: 2,
    dataDir,
    logDir: join(dataDir, 'logs'),
    env: {
      LOG_LEVEL: 'warn',
      MUSE_BOOTSTRAP_API_KEY: apiKey,
      // The benchmark measures Muse, not a rate limiter protecting it.
      MUSE_RATE_LIMIT_KEY_PER_SEC: '1000000',
      MUSE_RATE_LIMIT_PROJECT_PER_SEC: '1000000',
      MUSE_RATE_LIMIT_AUTH_FAILURES_PER_MIN: '1000000',
      MUSE_AGENT_CONCURRENCY: '25',
      ...opts.env,
    },
    log: (l) => opts.log(`started ${l}`),
  });
  const gateway = cluster.url('gateway');
  const headers = (extra: Record<string, string> = {}) => ({ authorization: `Bearer ${apiKey}`, ...extra });
  const ctx: BenchContext = {
    quick: opts.quick,
    reps: opts.quick ? 2 : 5,
    cluster,
    gateway,
    namespace,
    names: museNames(namespace),
    natsUrl,
    redisUrl,
    apiKey,
    headers,
    api: async (method, path, body) => {
      const res = await fetch(`${gateway}${path}`, {
        method,
        headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    log: opts.log,
  };
  return {
    ctx,
    stop: async () => {
      await cluster.stop();
      await purgeNamespace(natsUrl, redisUrl, namespace);
      await infra.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Waits until the coordinators have taken every command a scenario left behind (their consumer has none pending
 * or unacked, three looks in a row, 250 ms apart, 100 with --quick), so the next scenario does not pay for the last one's backlog.
 * @returns how long it waited, in ms (it gives up after `maxMs` and says so)
 */
export async function settleCluster(ctx: BenchContext, maxMs = 120_000): Promise<number> {
  const nc = await connect({ servers: ctx.natsUrl });
  const t0 = performance.now();
  try {
    const jsm = await jetstreamManager(nc);
    for (let quiet = 0; quiet < 3; ) {
      const info = await jsm.consumers.info(ctx.names.commandStream, ctx.names.coordinatorConsumer);
      quiet = info.num_pending + info.num_ack_pending === 0 ? quiet + 1 : 0;
      if (performance.now() - t0 > maxMs) {
        ctx.log(`the coordinators still have ${info.num_pending + info.num_ack_pending} commands after ${maxMs / 1000} s; going on`);
        break;
      }
      await new Promise((r) => setTimeout(r, ctx.quick ? 100 : 250));
    }
  } finally {
    await nc.close();
  }
  return performance.now() - t0;
}

/** CPU time (user + system, from /proc) process `pid` has used so far, in ms; 0 once it has exited. */
export function processCpuMs(pid: number): number {
  try {
    // Fields after the `(comm)`: state is 1st, utime the 12th, stime the 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ = 100 on Linux
  } catch {
    return 0;
  }
}

/** Write system calls (sockets and files) a process has made so far, from `/proc/<pid>/io`; 0 when unreadable. */
export function processWrites(pid: number): number {
  try {
    return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Pids of the local Redis and NATS servers, when they run on this machine (their CPU is part of the picture). */
function serverPids(): Record<string, number> {
  const pids: Record<string, number> = {};
  for (const name of ['redis-server', 'nats-server']) {
    try {
      const pid = Number(execFileSync('pgrep', ['-o', '-x', name], { encoding: 'utf8' }).trim());
      if (pid > 0) pids[name] = pid;
    } catch {
      // not running here (a remote server): left out of the breakdown
    }
  }
  return pids;
}

/**
 * Where the CPU goes and how many writes (each wakes a peer: a context switch on 2 cores) a unit of work costs, by
 * process (the cluster's, or the `processes` given, and Redis and NATS when local), summed over the windows passed
 * to `measure`.
 */
export class ProcessUsage {
  private readonly pids: Record<string, number>;
  private readonly cpuMs = new Map<string, number>();
  private readonly writes = new Map<string, number>();

  constructor(ctx: BenchContext, processes?: Record<string, number>) {
    const own = processes ?? Object.fromEntries(ctx.cluster.processes.flatMap((p) => (p.pid ? [[p.instance, p.pid]] : [])));
    this.pids = { ...own, ...serverPids() };
    for (const n of Object.keys(this.pids)) {
      this.cpuMs.set(n, 0);
      this.writes.set(n, 0);
    }
  }

  /** Runs `work` and adds what each process used meanwhile. */
  async measure<T>(work: () => Promise<T>): Promise<T> {
    const sample = () => Object.entries(this.pids).map(([n, pid]) => [n, processCpuMs(pid), processWrites(pid)] as const);
    const before = sample();
    const out = await work();
    sample().forEach(([n, cpu, w], k) => {
      this.cpuMs.set(n, this.cpuMs.get(n)! + cpu - before[k]![1]);
      this.writes.set(n, this.writes.get(n)! + w - before[k]![2]);
    });
    return out;
  }

  /** Totals per `units` (`cpuMsPer<Unit>`, `writesPer<Unit>`) and the same by process, for a row's `extra` and `detail`. */
  per(units: number, unit: string): { extra: Record<string, number>; detail: Record<string, number> } {
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    return {
      extra: { [`cpuMsPer${unit}`]: sum(this.cpuMs) / units, [`writesPer${unit}`]: sum(this.writes) / units },
      detail: Object.fromEntries([...this.cpuMs.keys()].flatMap((n) => [[`cpuMsPer${unit}.${n}`, this.cpuMs.get(n)! / units], [`writesPer${unit}.${n}`, this.writes.get(n)! / units]])),
    };
  }
}

/**
 * What a unit of work stores and runs in the shared servers, counted alike on any machine however fast it is that
 * day: the JetStream messages stored in the namespace's run log, command and audit streams (by the streams' last
 * sequence, so messages aged out meanwhile still count), and the commands Redis ran, those inside scripts included
 * (`INFO commandstats`: the whole server's, so nothing else may use it meanwhile; the INFO of the sample before
 * the work, which the one after counts, is left out).
 */
export class StoreUsage {
  private messages = 0;
  private redisCalls = 0;

  constructor(private readonly ctx: BenchContext) {}

  /** Runs `work` and adds what it stored and ran meanwhile. */
  async measure<T>(work: () => Promise<T>): Promise<T> {
    const nc = await connect({ servers: this.ctx.natsUrl });
    const redis = createRedis(this.ctx.redisUrl);
    try {
      const jsm = await jetstreamManager(nc);
      const streams = [this.ctx.names.runsStream, this.ctx.names.commandStream, this.ctx.names.auditStream];
      const sample = async () => {
        let seq = 0;
        for (const s of streams) seq += (await jsm.streams.info(s).catch(() => null))?.state.last_seq ?? 0;
        const stats = await redis.info('commandstats');
        const calls = [...stats.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
        return { seq, calls };
      };
      const before = await sample();
      const out = await work();
      const after = await sample();
      this.messages += after.seq - before.seq;
      this.redisCalls += after.calls - before.calls - 1;
      return out;
    } finally {
      await nc.close();
      redis.disconnect();
    }
  }

  /** Totals per `units`: `jsMessagesPer<Unit>`, `redisCallsPer<Unit>`. */
  per(units: number, unit: string): Record<string, number> {
    return { [`jsMessagesPer${unit}`]: this.messages / units, [`redisCallsPer${unit}`]: this.redisCalls / units };
  }
}

/** CPU time the cluster's processes have used so far, in ms; `only` picks the instances counted (e.g. `['gateway']`). */
export function clusterCpuMs(ctx: BenchContext, only?: readonly string[]): number {
  let ms = 0;
  for (const p of ctx.cluster.processes) if (p.pid && (!only || only.includes(p.instance))) ms += processCpuMs(p.pid);
  return ms;
}

/** Registers a definition; throws with the gateway's error when it is refused. */
export async function register(ctx: BenchContext, def: unknown): Promise<{ name: string; version: number }> {
  const res = await ctx.api('POST', '/v1/workflows', def);
  if (res.status !== 200 && res.status !== 201) throw new Error(`workflow refused: ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function submit(ctx: BenchContext, workflow: string, input: Record<string, unknown> = {}): Promise<string> {
  const res = await ctx.api<{ id: string }>('POST', '/v1/runs', { workflow, input });
  if (res.status !== 202) throw new Error(`submission refused (${res.status}): ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/**
 * One WebSocket subscribed to every run's new events: `finished(runId)`
 * resolves with the time (performance.now()) the run's last event arrived.
 */
export class RunWatcher {
  private readonly waiters = new Map<string, (t: number) => void>();
  private readonly done = new Map<string, number>();
  readonly lags: number[] = [];
  /** When each event arrived (Date.now(), by event id), for a watcher opened with `arrivals: true`. */
  readonly arrivals = new Map<string, number>();
  private ws!: WebSocket;

  static async open(ctx: BenchContext, opts: { arrivals?: boolean } = {}): Promise<RunWatcher> {
    const w = new RunWatcher();
    w.ws = new WebSocket(`${ctx.gateway.replace(/^http/, 'ws')}/v1/stream?access_token=${encodeURIComponent(ctx.apiKey)}`, { headers: ctx.headers() } as never);
    await new Promise<void>((resolve, reject) => {
      w.ws.addEventListener('open', () => resolve(), { once: true });
      w.ws.addEventListener('error', () => reject(new Error('websocket error')), { once: true });
    });
    const subscribed = new Promise<void>((resolve) => {
      w.ws.addEventListener('message', (m) => {
        const msg = JSON.parse(String(m.data)) as { type: string; event?: RunEvent };
        if (msg.type === 'subscribed') resolve();
        if (msg.type !== 'event' || !msg.event) return;
        const now = performance.now();
        const wall = Date.now();
        w.lags.push(wall - Date.parse(msg.event.at));
        if (opts.arrivals) w.arrivals.set(msg.event.id, wall);
        if (msg.event.type === 'run.completed' || msg.event.type === 'run.failed' || msg.event.type === 'run.cancelled') {
          const waiter = w.waiters.get(msg.event.runId);
          if (waiter) {
            w.waiters.delete(msg.event.runId);
            waiter(now);
          } else w.done.set(msg.event.runId, now);
        }
      });
    });
    w.ws.send(JSON.stringify({ op: 'subscribe', runId: '*' }));
    await subscribed;
    return w;
  }

  finished(runId: string, timeoutMs = 60_000): Promise<number> {
    const t = this.done.get(runId);
    if (t !== undefined) {
      this.done.delete(runId);
      return Promise.resolve(t);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`run ${runId} not finished within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.set(runId, (at) => {
        clearTimeout(timer);
        resolve(at);
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}
