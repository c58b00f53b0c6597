/**
 * The README's first command, as a user runs it: `muse up` (what `npm start`
 * runs) with no NATS and no Redis answering at the configured URLs starts its
 * own, brings up the six services, runs the sample workflow to success, prints
 * where to look, and stops everything it started.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { probe, purgeNamespace, REPO_ROOT } from '@muse/cluster';
import { museNames } from '@muse/contracts';
import { createRedis } from '@muse/queues';
import { NATS_URL, processAlive as alive, REDIS_URL } from '../support/harness.js';
import { freePort } from '../support/secure-servers.js';

test('muse up: own NATS and Redis, six services, the sample run, a clean stop', { timeout: 180_000 }, async () => {
  const natsPort = await freePort();
  const redisPort = await freePort();
  const namespace = `t-${randomBytes(5).toString('hex')}`;
  const home = mkdtempSync(join(tmpdir(), `muse-up-${namespace}-`));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    NATS_URL: `nats://127.0.0.1:${natsPort}`,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    MUSE_NAMESPACE: namespace,
    MUSE_HOME: home,
    MUSE_LOCAL_PROVIDER_DELAY_MS: '0',
  };
  // Fixed free ports (like the defaults, but free here), so two workers asking for the same one would collide.
  for (const v of ['GATEWAY_PORT', 'COORDINATOR_PORT', 'AGENT_WORKER_PORT', 'ARTIFACT_STORE_PORT', 'OBSERVABILITY_PORT', 'SCALER_PORT']) env[v] = String(await freePort());

  const child = spawn(process.execPath, [join(REPO_ROOT, 'apps/cli/dist/main.js'), 'up', '--exit-after-demo'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  try {
    assert.equal(code, 0, out);
    assert.match(out, new RegExp(`starting nats-server -js on 127\\.0\\.0\\.1:${natsPort}`));
    assert.match(out, new RegExp(`starting redis-server on 127\\.0\\.0\\.1:${redisPort}`));
    for (const s of ['artifact-store', 'coordinator', 'agent-worker-1', 'agent-worker-2', 'gateway', 'observability', 'scaler']) {
      assert.match(out, new RegExp(`started ${s}\\s+http://127\\.0\\.0\\.1:\\d+`), `${s} started`);
    }
    assert.match(out, /Muse is up and the sample run succeeded\./);
    assert.match(out, new RegExp(`gateway\\s+http://127\\.0\\.0\\.1:${env.GATEWAY_PORT}`));
    assert.match(out, new RegExp(`started agent-worker-1\\s+http://127\\.0\\.0\\.1:${env.AGENT_WORKER_PORT} `), 'the first worker on the configured port');
    assert.match(out, /dashboard snapshot http:\/\/127\.0\.0\.1:\d+\/v1\/snapshot/);
    assert.match(out, /run id\s+run_[a-z0-9_]+/);
    assert.match(out, /final output\s+\[muse-local#[0-9a-f]{8}\] /);
    assert.match(out, /stopped/);
    // The first admin key: in a file only this user can read, and the output says where.
    const keyFile = join(home, 'api-key');
    assert.match(out, new RegExp(`admin API key written to ${keyFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(statSync(keyFile).mode & 0o777, 0o600);
    assert.match(readFileSync(keyFile, 'utf8'), /^muse_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n$/);
    // everything it started is gone
    assert.equal(await probe('127.0.0.1', natsPort), false, 'its nats-server stopped');
    assert.equal(await probe('127.0.0.1', redisPort), false, 'its redis-server stopped');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
    // its NATS and Redis are gone with their data under .muse/data; nothing of this namespace is left on the shared ones
    if (await probe('127.0.0.1', 4222) && await probe('127.0.0.1', 6379)) {
      await purgeNamespace('nats://127.0.0.1:4222', 'redis://127.0.0.1:6379', namespace);
    }
  }
});

test('a launcher killed with SIGKILL leaves no service running: each stops as on SIGTERM (the worker deregisters)', { timeout: 90_000 }, async () => {
  const namespace = `t-${randomBytes(5).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), `muse-${namespace}-`));
  // A launcher like `muse up`'s: the cluster library starts the six services, then the launcher dies without a word.
  // LOG_LEVEL info: the services write to the dead launcher's pipes as they stop, which must not stop them short.
  const script = `
    import { Cluster } from '@muse/cluster';
    const cluster = await Cluster.start({ namespace: ${JSON.stringify(namespace)}, natsUrl: ${JSON.stringify(NATS_URL)}, redisUrl: ${JSON.stringify(REDIS_URL)},
      ports: 'random', workers: 1, dataDir: ${JSON.stringify(dataDir)}, env: { LOG_LEVEL: 'info' } });
    process.stdout.write('pids ' + JSON.stringify(cluster.processes.map((p) => p.pid)) + '\\n');
    setInterval(() => undefined, 1000);`;
  const launcher = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  launcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
  launcher.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const redis = createRedis(REDIS_URL);
  const agents = museNames(namespace).agentsKey;
  let pids: number[] = [];
  try {
    pids = await new Promise<number[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the cluster did not start: ${out}`)), 60_000);
      launcher.stdout.on('data', () => {
        const m = /pids (\[[\d,]+\])/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(JSON.parse(m[1]!) as number[]);
        }
      });
      launcher.once('exit', (code) => reject(new Error(`the launcher exited (${code}): ${out}`)));
    });
    assert.equal(pids.length, 6, out);
    // The worker has registered (its first heartbeat) before the launcher goes.
    for (let i = 0; i < 100 && (await redis.hexists(agents, 'agent-worker-1')) === 0; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await redis.hexists(agents, 'agent-worker-1'), 1, 'the worker registered');

    launcher.kill('SIGKILL');
    const t0 = Date.now();
    while (pids.some(alive) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(pids.filter(alive), [], 'every service stopped once its launcher was gone');
    // A graceful stop, not a crash: the worker removed its registration (a crashed one stays until it goes stale).
    assert.equal(await redis.hexists(agents, 'agent-worker-1'), 0, 'the worker deregistered');
  } finally {
    if (launcher.exitCode === null && launcher.signalCode === null) launcher.kill('SIGKILL');
    for (const pid of pids.filter(alive)) process.kill(pid, 'SIGKILL');
    await redis.quit();
    await purgeNamespace(NATS_URL, REDIS_URL, namespace);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('a launcher gone while its service is still starting leaves nothing running: the service stops once started', { timeout: 60_000 }, async () => {
  const namespace = `t-${randomBytes(5).toString('hex')}`;
  const dataDir = mkdtempSync(join(tmpdir(), `muse-${namespace}-`));
  const env = { NATS_URL, REDIS_URL, MUSE_NAMESPACE: namespace, MUSE_ARTIFACT_DIR: join(dataDir, 'artifacts'), ARTIFACT_STORE_PORT: '0', LOG_LEVEL: 'info' };
  // The launcher spawns the store and exits at once: the channel closes long before the store listens.
  const script = `
    import { ServiceProcess } from '@muse/cluster';
    const p = new ServiceProcess({ service: 'artifact-store', env: ${JSON.stringify(env)} });
    void p.start().catch(() => undefined);
    process.stdout.write('pid ' + p.pid + '\\n');
    process.exit(0);`;
  const launcher = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  launcher.stdout.on('data', (d: Buffer) => (out += d.toString()));
  launcher.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => launcher.once('exit', r));
  const pid = Number(/pid (\d+)/.exec(out)?.[1]);
  try {
    assert.ok(pid > 0, out);
    const t0 = Date.now();
    while (alive(pid) && Date.now() - t0 < 30_000) await new Promise((r) => setTimeout(r, 100));
    assert.equal(alive(pid), false, 'the store stopped once it had started and found its launcher gone');
  } finally {
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
    await purgeNamespace(NATS_URL, REDIS_URL, namespace);
    rmSync(dataDir, { recursive: true, force: true });
  }
});
