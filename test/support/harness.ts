/**
 * End-to-end harness: a whole cluster (six services as OS processes) on the
 * real NATS and Redis, under a namespace of its own, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, purgeNamespace, type ClusterOptions } from '@muse/cluster';
import type { RunEvent, RunView } from '@muse/contracts';

export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether process `pid` still runs (a zombie no longer does: it only waits to be reaped). */
export function processAlive(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  try {
    return readFileSync(stat, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface TestCluster {
  cluster: Cluster;
  namespace: string;
  dataDir: string;
  gateway: string;
  /** The cluster's bootstrap admin API key (all projects, every scope); `http()` and `StreamRecorder` send it by default. */
  apiKey: string;
  stop(): Promise<void>;
}

/** A fresh key in the API key format (`muse_<12 hex>_<43 base64url>`), as `muse up` makes one. */
export function newApiKey(): string {
  return `muse_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
}

/** Gateway base URL -> the key `http()` and `StreamRecorder` send there unless told otherwise. */
const defaultKeys = new Map<string, string>();
/** The newest cluster's key, for a base URL not in `defaultKeys` (a gateway restarted on a new random port). */
let lastKey: string | undefined;
const keyFor = (base: string): string | undefined => defaultKeys.get(base) ?? lastKey;

/** Pass as `headers` to `http()` to send no credential at all. */
export const NO_AUTH: Record<string, string> = Object.freeze({ authorization: '' }) as Record<string, string>;

/** `Authorization` header for `key`. */
export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

export async function startTestCluster(opts: Partial<ClusterOptions> = {}): Promise<TestCluster> {
  const namespace = `t-${randomBytes(5).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), `muse-${namespace}-`));
  const apiKey = opts.bootstrapApiKey ?? newApiKey();
  const cluster = await Cluster.start({
    bootstrapApiKey: apiKey,
    namespace,
    natsUrl: NATS_URL,
    redisUrl: REDIS_URL,
    ports: 'random',
    dataDir,
    logDir: join(dataDir, 'logs'),
    ...opts,
    // Rate limits far above what any test sends (crash and load tests poll hard with one key); a test of the limiter sets its own.
    env: { LOG_LEVEL: 'info', MUSE_RATE_LIMIT_KEY_PER_SEC: '1000000', MUSE_RATE_LIMIT_PROJECT_PER_SEC: '1000000', MUSE_RATE_LIMIT_AUTH_FAILURES_PER_MIN: '1000000', ...(opts.env ?? {}) },
  });
  const gateway = cluster.url('gateway');
  defaultKeys.set(gateway, apiKey);
  lastKey = apiKey;
  return {
    cluster,
    namespace,
    dataDir,
    gateway,
    apiKey,
    stop: async () => {
      defaultKeys.delete(gateway);
      if (lastKey === apiKey) lastKey = undefined;
      await cluster.stop();
      await purgeNamespace(NATS_URL, REDIS_URL, namespace);
      if (process.env.MUSE_KEEP_TEST_DATA) console.log(`test data kept in ${dataDir}`);
      else rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

/**
 * One request to the gateway at `base`, with the cluster's bootstrap key
 * unless `headers` carries an `authorization` of its own (`bearer(otherKey)`,
 * or `NO_AUTH` for none).
 */
export async function http<T = any>(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
  const own = Object.keys(headers).find((h) => h.toLowerCase() === 'authorization');
  const sent: Record<string, string> = { ...headers };
  if (own === undefined) {
    const key = keyFor(base);
    if (key) sent.authorization = `Bearer ${key}`;
  } else if (headers[own] === '') {
    delete sent[own];
  }
  const init: RequestInit = { method, headers: sent };
  if (body !== undefined) {
    init.body = typeof body === 'string' || body instanceof Uint8Array ? (body as string) : JSON.stringify(body);
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) (init.headers as Record<string, string>)['content-type'] = 'application/json';
  }
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON; keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

export const TERMINAL = ['succeeded', 'failed', 'cancelled'];

export async function waitForRun(base: string, id: string, timeoutMs = 60_000): Promise<RunView> {
  const deadline = Date.now() + timeoutMs;
  let last: RunView | undefined;
  while (Date.now() < deadline) {
    const res = await http<RunView>(base, 'GET', `/v1/runs/${id}`);
    if (res.status === 200) {
      last = res.body;
      if (TERMINAL.includes(last.status)) return last;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${id} not finished after ${timeoutMs} ms; last seen: ${JSON.stringify(last)}`);
}

/** Resolves when `predicate` holds for an event of the run's log (polled over REST). */
export async function waitForEvent(base: string, id: string, predicate: (ev: RunEvent) => boolean, timeoutMs = 30_000): Promise<RunEvent> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await http<{ items: RunEvent[] }>(base, 'GET', `/v1/runs/${id}/events`);
    const hit = res.status === 200 ? res.body.items.find(predicate) : undefined;
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no matching event in run ${id} after ${timeoutMs} ms`);
}

/** A WebSocket subscriber to one run that records every event it gets, in order. */
export class StreamRecorder {
  readonly events: RunEvent[] = [];
  readonly messages: Array<{ type: string }> = [];
  private ws!: WebSocket;
  private waiters: Array<() => void> = [];

  /** `apiKey`: the key sent in the handshake's `Authorization` header; default the cluster's bootstrap key, `null` for none. */
  static async open(base: string, opts: { apiKey?: string | null } = {}): Promise<StreamRecorder> {
    const r = new StreamRecorder();
    const key = opts.apiKey === undefined ? keyFor(base) : opts.apiKey;
    r.ws = new WebSocket(`${base.replace(/^http/, 'ws')}/v1/stream`, key ? { headers: { authorization: `Bearer ${key}` } } : undefined);
    await new Promise<void>((resolve, reject) => {
      r.ws.addEventListener('open', () => resolve(), { once: true });
      r.ws.addEventListener('error', () => reject(new Error('websocket error')), { once: true });
    });
    r.ws.addEventListener('message', (m) => {
      const msg = JSON.parse(String(m.data)) as { type: string; event?: RunEvent };
      r.messages.push(msg);
      if (msg.type === 'event' && msg.event) r.events.push(msg.event);
      for (const w of r.waiters.splice(0)) w();
    });
    return r;
  }

  send(msg: unknown): void {
    this.ws.send(JSON.stringify(msg));
  }

  async until(predicate: (r: StreamRecorder) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate(this)) {
      if (Date.now() > deadline) throw new Error(`stream condition not met after ${timeoutMs} ms; got ${this.messages.length} messages`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}
