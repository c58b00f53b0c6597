/**
 * Private nats-server and redis-server processes for the security tests:
 * started by the test on random loopback ports with a configuration of its
 * own (users, permissions, ACLs), their data in a temp folder, killed and
 * removed afterwards. The shared NATS and Redis are never touched.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as netConnect, createServer } from 'node:net';
import { join } from 'node:path';

/**
 * A TCP port free on 127.0.0.1 right now, for a server started a moment later. It is picked below the OS's
 * ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range, 32768 up by default), where the OS never puts the
 * local end of an outgoing connection: a port from that range (what listening on port 0 gives) can be taken by any
 * connection opened in between, and the server then fails with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  const below = ephemeralLow();
  for (let tries = 0; tries < 100; tries++) {
    const port = 10_000 + Math.floor(Math.random() * (below - 10_000));
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port between 10000 and ${below} after 100 tries`);
}

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

async function waitForPort(port: number, proc: ChildProcess, log: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`server exited (${proc.exitCode}): ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = netConnect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`server did not listen on ${port} within ${timeoutMs} ms: ${log()}`);
}

export interface PrivateServer {
  port: number;
  url: string;
  proc: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function started(cmd: string, args: string[], env: Record<string, string>): { proc: ChildProcess; output: () => string } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  proc.stderr!.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  return { proc, output: () => out };
}

async function stopProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const gone = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
  await gone;
  clearTimeout(t);
}

/** Where `startNatsServer(dir, …)` keeps JetStream data: the config must say so (`storeDir`), since a reload refuses a store dir given on the command line. */
export const natsStoreDir = (dir: string): string => join(dir, 'js');

/** nats-server with `config` (its text, whose `store_dir` is `natsStoreDir(dir)`); the port is a free one given on the command line. */
export async function startNatsServer(dir: string, config: string, env: Record<string, string> = {}): Promise<PrivateServer & { reload(config: string): Promise<void> }> {
  mkdirSync(natsStoreDir(dir), { recursive: true });
  const conf = join(dir, 'nats-server.conf');
  writeFileSync(conf, config);
  const port = await freePort();
  const { proc, output } = started('nats-server', ['-c', conf, '-a', '127.0.0.1', '-p', String(port)], env);
  await waitForPort(port, proc, output);
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    proc,
    output,
    /** Rewrites the file and has the server re-read it (SIGHUP = `nats-server --signal reload`); resolves once it logged the reload. */
    reload: async (next: string) => {
      writeFileSync(conf, next);
      const before = (output().match(/Reloaded server configuration/g) ?? []).length;
      proc.kill('SIGHUP');
      const deadline = Date.now() + 5_000;
      while ((output().match(/Reloaded server configuration/g) ?? []).length === before) {
        if (Date.now() > deadline) throw new Error(`nats-server did not reload: ${output().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    stop: () => stopProc(proc),
  };
}

/** redis-server whose users are `aclLines` (ACL file syntax, e.g. `user app on >pw ~app:* +@all`); no persistence. */
/** `tls`: serve only TLS on the port (no plain TCP), with this certificate and key. */
export async function startRedisServer(dir: string, aclLines: string[], tls?: { cert: string; key: string; ca: string }): Promise<PrivateServer> {
  mkdirSync(dir, { recursive: true });
  const acl = join(dir, 'users.acl');
  writeFileSync(acl, `${aclLines.join('\n')}\n`);
  const port = await freePort();
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca, '--tls-auth-clients', 'no']
    : ['--port', String(port)];
  const { proc, output } = started('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--aclfile', acl], {});
  await waitForPort(port, proc, output);
  return { port, url: `${tls ? 'rediss' : 'redis'}://127.0.0.1:${port}`, proc, output, stop: () => stopProc(proc) };
}
