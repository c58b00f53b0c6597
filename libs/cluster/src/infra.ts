/**
 * NATS and Redis for a local cluster: use the ones at the configured URLs when
 * they answer; otherwise start local `nats-server -js` and `redis-server`
 * processes with their data under the project folder, installing the Debian
 * packages first when they are missing and we are root.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';

export class InfraError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InfraError';
  }
}

export function hostPort(url: string, defPort: number): { host: string; port: number } {
  const u = new URL(url.split(',')[0]!);
  return { host: u.hostname || '127.0.0.1', port: u.port ? Number(u.port) : defPort };
}

/** Resolves true when something accepts TCP connections at host:port within `timeoutMs`. */
export function probe(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = netConnect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe(host, port, 500)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new InfraError(`nothing answered on ${host}:${port} within ${timeoutMs} ms`);
}

function findBinary(name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

function installDebianPackage(pkg: string, log: (line: string) => void): boolean {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot || !findBinary('apt-get')) return false;
  log(`installing the Debian package ${pkg} (apt-get install -y ${pkg})...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let res = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'ignore', env });
  if (res.status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore', env });
    res = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'ignore', env });
  }
  return res.status === 0;
}

function requireBinary(bin: string, pkg: string, log: (line: string) => void): string {
  const found = findBinary(bin) ?? (installDebianPackage(pkg, log) ? findBinary(bin) : undefined);
  if (!found) {
    throw new InfraError(
      `${bin} is not installed and nothing answers at the configured URL. Install it (Debian/Ubuntu: sudo apt-get install ${pkg}), ` +
        `or point ${pkg === 'nats-server' ? 'NATS_URL' : 'REDIS_URL'} at a running server.`,
    );
  }
  return found;
}

export interface InfraHandle {
  /** What was started here (empty when both were already running). */
  started: string[];
  stop(): Promise<void>;
}

export async function ensureInfra(opts: {
  natsUrl: string;
  redisUrl: string;
  dataDir: string;
  log?: (line: string) => void;
}): Promise<InfraHandle> {
  const log = opts.log ?? (() => undefined);
  const children: Array<{ name: string; child: ChildProcess }> = [];
  const nats = hostPort(opts.natsUrl, 4222);
  if (!(await probe(nats.host, nats.port))) {
    const bin = requireBinary('nats-server', 'nats-server', log);
    const dir = join(opts.dataDir, 'nats');
    mkdirSync(dir, { recursive: true });
    log(`starting nats-server -js on ${nats.host}:${nats.port} (data in ${dir})`);
    const child = spawn(bin, ['-js', '-a', nats.host, '-p', String(nats.port), '-sd', dir], { stdio: 'ignore' });
    children.push({ name: 'nats-server', child });
    await waitForPort(nats.host, nats.port, 15_000);
  }
  const redis = hostPort(opts.redisUrl, 6379);
  if (!(await probe(redis.host, redis.port))) {
    const bin = requireBinary('redis-server', 'redis-server', log);
    const dir = join(opts.dataDir, 'redis');
    mkdirSync(dir, { recursive: true });
    log(`starting redis-server on ${redis.host}:${redis.port} (data in ${dir})`);
    const child = spawn(bin, ['--bind', redis.host, '--port', String(redis.port), '--dir', dir, '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' });
    children.push({ name: 'redis-server', child });
    await waitForPort(redis.host, redis.port, 15_000);
  }
  return {
    started: children.map((c) => c.name),
    stop: async () => {
      for (const { child } of children.reverse()) {
        if (child.exitCode !== null) continue;
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
    },
  };
}
