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
