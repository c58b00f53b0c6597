/**
 * One Muse service as its own OS process (`node apps/<service>/dist/main.js`),
 * its JSON log lines going to a file, its URL read from its "listening" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ServiceName } from '@muse/contracts';
import { REPO_ROOT } from './repo-root.js';

/**
 * V8 flags every service runs with. A young generation of 2 MB semi-spaces (V8's default grows them to 16 MB) keeps
 * an idle service about 20 to 45 MB smaller; services allocate little per request, so scavenges stay cheap.
 * `--expose-gc` lets a service that went idle compact its heap once (libs/telemetry's MemoryTrimmer).
 * `--no-maglev` leaves out V8's mid-tier compiler: hot code goes from the baseline compiler straight to TurboFan.
 * Measured with `npm run bench -- --only dag-throughput` in A-B-B-A order: 5.03 and 5.44 cpu-ms per step over the
 * whole cluster against 6.16 and 6.12 with Maglev (346-353 against 264-291 steps/s; on 2 cores shared by 7
 * services Maglev's compiles, most of them redone by TurboFan, cost more than they win), and idle RSS 2.5-4 MB
 * lower per service (no Maglev code paged in from the node binary, no Maglev code or zones).
 * The Dockerfile's entrypoint passes the same.
 */
export const SERVICE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2', '--expose-gc', '--no-maglev'];

/**
 * V8 flags a service adds to SERVICE_NODE_FLAGS, given the environment it starts with.
 *
 * The artifact store on its default `local` backend runs its JavaScript in V8's interpreter and baseline compiler
 * only: no optimizing compilers (`--no-opt`, with every service's `--no-maglev`). Its work there is I/O (file
 * writes, hashing in OpenSSL, sockets, Redis scripts), and it stays smaller: no optimizing-compiler code paged in
 * from the node binary, no optimized code or compiler zones, so a 1 GiB transfer stays under 100 MiB (83 MiB after
 * start, 88 at the transfer's peak; with every compiler on ~101 MB idle). Sparkplug, the baseline compiler, costs no
 * measurable memory and about 20% less CPU than the interpreter alone. It used to add `--optimize-for-size` too,
 * which kept the store ~7 MB smaller just after start but spent a third of its CPU in GC (0.46-0.50 against
 * 0.29-0.35 cpu-s per 1,000-item fan-out); the GC every service now runs as it starts listening (telemetry's
 * compactAfterStartup) gives the same start. Not on `nats` or `s3`: their client libraries hash every byte in
 * JavaScript (the NATS Object Store's SHA-256), several times slower without the optimizing compilers. Unlike
 * `--lite-mode`, which implies `--jitless`, WebAssembly stays available (undici's `fetch` needs it). The
 * Dockerfile's entrypoint adds the same.
 */
export const SERVICE_EXTRA_NODE_FLAGS: Readonly<Partial<Record<ServiceName, (env: Readonly<Record<string, string | undefined>>) => readonly string[]>>> = {
  'artifact-store': (env) => ((env.MUSE_ARTIFACT_BACKEND || 'local') === 'local' ? ['--no-opt'] : []),
  // The coordinator allocates the most per step (every command's fold, events, jobs and view): with 2 MB semi-spaces
  // it spent 28% of its busy time in GC under the DAG load. V8's default 16 MB (the last flag wins) cut its CPU per DAG
  // step from 0.38-0.40 to 0.32-0.34 ms and took the DAG from 1,082-1,372 to 1,325-1,503 steps/s (A-B-B-A runs of
  // `npm run bench -- --only idle-rss,dag-throughput`), for about 1 MB more idle RSS (94.2-94.4 MB): the idle trim
  // gives the young generation back.
  coordinator: () => ['--max-semi-space-size=16'],
};

/**
 * Environment every service starts with unless the caller's environment sets the variable itself. `MALLOC_ARENA_MAX=1`
 * keeps glibc's allocator to one arena: by default each thread that mallocs (V8's 4 platform workers, for concurrent
 * marking and compiling, and libuv's pool) gets its own, each holding a few hundred kB to 1.6 MB it does not give back.
 * Measured with `npm run bench -- --only idle-rss,dag-throughput`: idle RSS ~3 MB lower per service (coordinator
 * 99.8 -> 96.8 MB, gateway 107.7 -> 105.7), and no more CPU per DAG step (5.76 against 6.22 cpu-ms, whole cluster).
 * The services' own work happens on the main thread, so the arena lock is not contended. The Dockerfile sets the same.
 */
export const SERVICE_ENV_DEFAULTS: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/** Every V8 flag `service` runs with in `env`: the shared ones, then its own. */
export function serviceNodeFlags(service: ServiceName, env: Readonly<Record<string, string | undefined>>): string[] {
  return [...SERVICE_NODE_FLAGS, ...(SERVICE_EXTRA_NODE_FLAGS[service]?.(env) ?? [])];
}

export interface ServiceProcessOptions {
  service: ServiceName;
  /** A name for this instance (e.g. `agent-worker-2`). @default service */
  instance?: string;
  env: Record<string, string>;
  /** Where the process's stdout and stderr go; nowhere when unset. */
  logFile?: string;
  /** How long to wait for the "listening" line, in ms. @default 30_000 */
  startTimeoutMs?: number;
}

export class ServiceProcess {
  readonly instance: string;
  private child!: ChildProcess;
  private log?: WriteStream;
  private _url?: string;
  private exitPromise!: Promise<number | null>;

  constructor(readonly opts: ServiceProcessOptions) {
    this.instance = opts.instance ?? opts.service;
  }

  get url(): string {
    if (!this._url) throw new Error(`${this.instance} has not started`);
    return this._url;
  }

  /** The process's environment: SERVICE_ENV_DEFAULTS, this process's over them, `env` over both. */
  get env(): Record<string, string | undefined> {
    return { ...SERVICE_ENV_DEFAULTS, ...process.env, ...this.opts.env };
  }

  /** The V8 flags the process runs with (serviceNodeFlags). */
  get nodeFlags(): string[] {
    return serviceNodeFlags(this.opts.service, this.env);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Starts the process and resolves with its URL once it listens. */
  async start(): Promise<string> {
    if (this.opts.logFile) {
      mkdirSync(dirname(this.opts.logFile), { recursive: true });
      this.log = createWriteStream(this.opts.logFile, { flags: 'a' });
    }
    const main = join(REPO_ROOT, 'apps', this.opts.service, 'dist', 'main.js');
    this.child = spawn(process.execPath, [...this.nodeFlags, main], {
      cwd: REPO_ROOT,
      env: this.env,
      // The IPC channel carries no messages: it closes when this process dies, however it dies (a crash, SIGKILL),
      // and the service then stops as on SIGTERM instead of running on as an orphan (libs/telemetry's runService).
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const child = this.child;
    // The channel does not keep this process alive: its life is the caller's business, as before.
    child.channel?.unref();
    this.exitPromise = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const stderrTail: string[] = [];
    child.stderr!.on('data', (d: Buffer) => {
      this.log?.write(d);
      stderrTail.push(d.toString());
      if (stderrTail.length > 20) stderrTail.shift();
    });
    const timeout = this.opts.startTimeoutMs ?? 30_000;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.instance} did not start within ${timeout} ms: ${stderrTail.join('').slice(-2000)}`)), timeout);
      const lines = createInterface({ input: child.stdout! });
      lines.on('line', (line) => {
        this.log?.write(line + '\n');
        if (this._url) return;
        try {
          const rec = JSON.parse(line) as { url?: string; msg?: string };
          if (rec.url && rec.msg?.endsWith('listening')) {
            this._url = rec.url;
            clearTimeout(timer);
            resolve(rec.url);
          }
        } catch {
          // not a JSON line
        }
      });
      void this.exitPromise.then((code) => {
        clearTimeout(timer);
        if (!this._url) reject(new Error(`${this.instance} exited with code ${code} before listening: ${stderrTail.join('').slice(-2000)}`));
      });
    });
  }

  /** Waits until `/health/ready` answers 200. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.instance} exited while waiting for readiness`);
      try {
        const res = await fetch(`${this.url}/health/ready`);
        if (res.ok) return;
        last = await res.text();
      } catch (err) {
        last = String(err);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.instance} not ready within ${timeoutMs} ms: ${last}`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.exitPromise;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Resolves with the exit code (null when killed). */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (!this.child) return null;
    if (this.running) {
      this.child.kill('SIGTERM');
      const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
      const code = await this.exitPromise;
      clearTimeout(t);
      this.log?.end();
      return code;
    }
    this.log?.end();
    return this.exitPromise;
  }
}
