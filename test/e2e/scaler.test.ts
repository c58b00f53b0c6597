/**
 * The scaler end to end (issue 6): two scaler replicas with the `local`
 * driver own the executor pool (the cluster starts no worker of its own), on
 * the real NATS and Redis, with real worker processes. Short intervals,
 * cooldowns and idle timeouts keep it bounded; steps take 400 ms (the local
 * provider's delay) and each worker runs one at a time, so the pool size is
 * what sets the pace.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@muse/cluster';
import { museNames, type PoolList, type RunEvent, type RunView, type ScalerDecisionEvent } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import { createRedis, StepQueues } from '@muse/queues';
import { http, NATS_URL, processAlive as alive, REDIS_URL, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const POOLS_TOML = `
[orchestration.scaling.defaults]
min_pool_size = 0
max_pool_size = 1

[orchestration.scaling.executor]
min_pool_size = 1
max_pool_size = 4
scale_up_threshold = 5      # one more worker per 5 waiting steps
scale_down_threshold = 0
cooldown_secs = 2
idle_timeout_mins = 0.05    # 3 s
`;
const MAX = 4;
const IDLE_MS = 3_000;
const LEASE_TTL_MS = 2_000;
const INTERVAL_MS = 300;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function burst(name: string, n: number): unknown {
  return { definition: { name, steps: Array.from({ length: n }, (_, i) => ({ id: `s${i}`, agent: 'executor', prompt: `item ${i}` })) } };
}

describe('scaler: agent pools that grow and shrink with the work', { timeout: 300_000 }, () => {
  let t: TestCluster;
  let redis: ReturnType<typeof createRedis>;
  let bus: JetStreamBus;
  let queues: StepQueues;
  let names: ReturnType<typeof museNames>;
  const seenPids = new Set<number>();

  /** The local driver's worker processes that serve (not being stopped), from its Redis records. */
  async function poolWorkers(role = 'executor'): Promise<Array<{ agentId: string; pid: number }>> {
    const raw = await redis.hgetall(names.scalerWorkersKey);
    const out: Array<{ agentId: string; pid: number }> = [];
    for (const [agentId, json] of Object.entries(raw)) {
      const r = JSON.parse(json) as { role: string; pid: number; stoppingAt?: string };
      seenPids.add(r.pid);
      if (r.role === role && !r.stoppingAt && alive(r.pid)) out.push({ agentId, pid: r.pid });
    }
    return out;
  }

  async function pools(): Promise<PoolList> {
    const res = await http<PoolList>(t.gateway, 'GET', '/v1/pools');
    assert.equal(res.status, 200, res.text);
    return res.body;
  }
  const executor = async () => (await pools()).items.find((p) => p.role === 'executor');

  async function decisions(): Promise<ScalerDecisionEvent[]> {
    return (await bus.readScalerDecisions()).filter((d) => d.role === 'executor');
  }

  async function submit(body: unknown): Promise<string> {
    const res = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', body);
    assert.equal(res.status, 202, res.text);
    return res.body.id;
  }

  /** Samples the pool every 50 ms while `work` runs; returns the largest pool seen. */
  async function watchMax(work: Promise<unknown>): Promise<number> {
    let max = 0;
    let done = false;
    const sampler = (async () => {
      while (!done) {
        max = Math.max(max, (await poolWorkers()).length);
        await sleep(50);
      }
    })();
    try {
      await work;
    } finally {
      done = true;
      await sampler;
    }
    return max;
  }

  function assertRanOnce(run: RunView): void {
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    for (const s of run.steps) assert.equal(s.attempts, 1, `step ${s.id} ran ${s.attempts} times`);
  }

  // The pools file and the pool workers' logs: written before the cluster starts, so outside its data dir.
  const scratch = mkdtempSync(join(tmpdir(), 'muse-scaler-test-'));

  before(async () => {
    const poolsFile = join(scratch, 'pools.toml');
    writeFileSync(poolsFile, POOLS_TOML);
    t = await startTestCluster({
      workers: 0,
      scalers: 2,
      env: {
        MUSE_LOCAL_PROVIDER_DELAY_MS: '400',
        MUSE_AGENT_CONCURRENCY: '1',
        MUSE_HEARTBEAT_MS: '300',
        MUSE_AGENT_TTL_MS: '3000',
      },
      serviceEnv: {
        scaler: {
          MUSE_SCALER_DRIVER: 'local',
          MUSE_SCALER_INTERVAL_MS: String(INTERVAL_MS),
          MUSE_SCALER_LEASE_TTL_MS: String(LEASE_TTL_MS),
          MUSE_SCALER_CONFIG: poolsFile,
          MUSE_SCALER_WORKER_LOG_DIR: join(scratch, 'workers'),
        },
      },
    });
    names = museNames(t.namespace);
    redis = createRedis(REDIS_URL);
    queues = new StepQueues(redis, names);
    bus = await JetStreamBus.connect({ url: NATS_URL, names, name: 'scaler-test' });
  });

  after(async () => {
    await queues?.close();
    await bus?.close();
    await t?.stop();
    // The leader drained its workers at shutdown: none may outlive the cluster.
    const leaked = [...seenPids].filter(alive);
    for (const pid of leaked) process.kill(pid, 'SIGKILL');
    await redis?.quit();
    if (process.env.MUSE_KEEP_TEST_DATA) console.log(`pool worker logs kept in ${scratch}`);
    else rmSync(scratch, { recursive: true, force: true });
    assert.deepEqual(leaked, [], 'pool workers left running after the cluster stopped');
  });

  test('min kept: the executor pool starts at its minimum, other pools at 0, one leader', async () => {
    const ready = await until('one executor worker with a heartbeat', async () => {
      const p = await pools();
      const exec = p.items.find((i) => i.role === 'executor');
      return exec && exec.desired === 1 && exec.actual === 1 ? p : undefined;
    });
    assert.ok(ready.leader, 'a leader wrote the board');
    assert.equal(ready.driver, 'local');
    const exec = ready.items.find((i) => i.role === 'executor')!;
    assert.deepEqual([exec.min, exec.max, exec.policy.kind, exec.policy.cooldownMs, exec.policy.idleTimeoutMs], [1, MAX, 'queueDepth', 2_000, IDLE_MS]);
    for (const other of ready.items.filter((i) => i.role !== 'executor')) assert.deepEqual([other.role, other.desired, other.actual], [other.role, 0, 0]);
    assert.equal((await poolWorkers()).length, 1);
    const agents = await http<{ items: Array<{ agentId: string; roles: string[] }> }>(t.gateway, 'GET', '/v1/agents');
    assert.deepEqual(agents.body.items.map((a) => a.roles), [['executor']]);
    // Heartbeats carry CPU and memory for the resource policy.
    const hb = Object.values(await redis.hgetall(names.agentsKey)).map((j) => JSON.parse(j) as { cpu?: number; memory?: number });
    assert.ok(hb.length === 1 && hb[0]!.cpu! >= 0 && hb[0]!.memory! > 0 && hb[0]!.memory! <= 1, JSON.stringify(hb));
    const up = (await decisions()).find((d) => d.direction === 'up');
    assert.deepEqual([up?.from, up?.to, up?.numbers.waiting], [0, 1, 0]);
    assert.equal(up?.policy, 'queueDepth');

    // The CLI shows the same pools.
    const cli = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'apps/cli/dist/main.js'), '--gateway', t.gateway, 'pools'], {
      env: { ...process.env, MUSE_API_KEY: t.apiKey },
    });
    assert.match(cli.stdout, /\(driver local\)/);
    assert.match(cli.stdout, /executor +desired 1 live 1 \(busy 0\) running 1 +\[1\.\.4\] +queueDepth up 5 down 0, cooldown 2 s, idle 3 s/);
    assert.match(cli.stdout, /up 0 -> 1: 0 waiting, 0 of 0 agents busy: need 0 \(clamped to 1, min 1, max 4\)/);
  });

  test('scale up under load: past the threshold new workers take jobs; max is never exceeded; every step runs once', async () => {
    const [first] = await poolWorkers();
    const runId = await submit(burst('flood', 60));
    const crossedAt = await until('the queue past the threshold', async () => ((await queues.depth('executor')).waiting > 5 ? Date.now() : undefined), 10_000, 20);
    const largest = await watchMax(waitForRun(t.gateway, runId, 90_000));
    const run = (await waitForRun(t.gateway, runId)) as RunView;
    assertRanOnce(run);
    assert.equal(largest, MAX, `the pool grew to max (${MAX}) and no further`);
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${runId}/events`)).body.items;
    const starts = events.filter((e) => e.type === 'step.started').map((e) => e.data as { agentId: string; startedAt: string });
    const byNew = starts.filter((s) => s.agentId !== first!.agentId).map((s) => Date.parse(s.startedAt));
    assert.ok(new Set(starts.map((s) => s.agentId)).size >= 3, 'new workers took jobs');
    const latencyMs = Math.min(...byNew) - crossedAt;
    console.log(`# threshold crossing -> first job on a new worker: ${latencyMs} ms`);
    assert.ok(latencyMs < 15_000, `${latencyMs} ms`);
    const ups = (await decisions()).filter((d) => d.direction === 'up' && d.to > 1);
    assert.ok(ups.length >= 1 && ups.every((d) => d.to <= MAX && d.reason.includes('waiting')), JSON.stringify(ups));
    assert.ok(ups.some((d) => d.numbers.waiting > 5 && d.need > MAX && /clamped to 4/.test(d.reason)), 'the flood asked for more than max');
  });

  test('scale down when idle for the configured time, back to min (never below)', async () => {
    const down = await until('a scale-down decision', async () => (await decisions()).find((d) => d.direction === 'down'), 20_000, 200);
    assert.equal(down.to, 1, 'down to min');
    assert.match(down.reason, /idle [3-9] s/);
    await until('one executor worker left', async () => (await poolWorkers()).length === 1 && ((await executor())?.actual ?? 0) === 1, 20_000);
    await sleep(2 * IDLE_MS);
    assert.equal((await poolWorkers()).length, 1, 'min kept while idle');
    assert.equal((await executor())!.desired, 1);
  });

  test('cooldown and idle timeout prevent flapping under oscillating load', async () => {
    const from = (await decisions()).length;
    const runs: string[] = [];
    // Bursts of 12 steps every 2 s: each drains in about a second, then the queue sits empty for about one.
    for (let i = 0; i < 4; i++) {
      runs.push(await submit(burst(`wave-${i}`, 12)));
      await sleep(2_000);
    }
    let lastDone = 0;
    for (const id of runs) {
      const run = await waitForRun(t.gateway, id, 60_000);
      assertRanOnce(run);
      lastDone = Math.max(lastDone, Date.parse(run.updatedAt));
    }
    const during = (await decisions()).slice(from).filter((d) => Date.parse(d.at) <= lastDone);
    const downs = during.filter((d) => d.direction === 'down');
    assert.deepEqual(downs.map((d) => d.reason), [], 'no scale-down between bursts');
    assert.ok(during.filter((d) => d.direction === 'up').length <= 3, JSON.stringify(during.map((d) => [d.direction, d.from, d.to])));
  });

  test('graceful termination: a worker told to stop mid-step finishes it, deregisters, and the pool is refilled', async () => {
    await until('the pool back at min', async () => (await poolWorkers()).length === 1 && (await executor())?.desired === 1, 30_000);
    const runId = await submit({ definition: { name: 'long-step', steps: [{ id: 'slow', tool: 'shell', agent: 'executor', command: 'sleep 2; echo done' }] } });
    const started = await until(
      'the step to start',
      async () => (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${runId}/events`)).body.items.find((e) => e.type === 'step.started'),
      20_000,
    );
    const agentId = (started.data as { agentId: string }).agentId;
    const victim = (await poolWorkers()).find((w) => w.agentId === agentId)!;
    assert.ok(victim, 'the step runs on a pool worker');
    process.kill(victim.pid, 'SIGTERM');
    const run = await waitForRun(t.gateway, runId, 30_000);
    assertRanOnce(run);
    assert.equal(run.steps[0]!.output && (run.steps[0]!.output as { stdout: string }).stdout.trim(), 'done');
    await until('the stopped worker to exit', async () => !alive(victim.pid), 15_000);
    const agents = await http<{ items: Array<{ agentId: string }> }>(t.gateway, 'GET', '/v1/agents');
    assert.ok(!agents.body.items.some((a) => a.agentId === agentId), 'deregistered');
    await until('a replacement worker (min 1)', async () => (await poolWorkers()).some((w) => w.agentId !== agentId), 20_000);
  });

  test('leader failover: the standby takes over within the lease TTL and does not double-scale', async () => {
    await until('the pool settled at min', async () => (await poolWorkers()).length === 1 && (await executor())?.actual === 1, 30_000);
    const board = await pools();
    const leaderPid = Number(/-(\d+)-[0-9a-f]+$/.exec(board.leader!)![1]);
    const leader = t.cluster.processes.find((p) => p.opts.service === 'scaler' && p.pid === leaderPid)!;
    assert.ok(leader, `leader ${board.leader} is one of the two replicas`);
    const workersBefore = (await poolWorkers()).map((w) => w.agentId);
    const termBefore = Math.max(...(await bus.readScalerDecisions()).map((d) => d.term));

    const killedAt = Date.now();
    await leader.kill('SIGKILL');
    const next = await until('a new leader', async () => {
      const p = await pools();
      return p.leader && p.leader !== board.leader && Date.parse(p.evaluatedAt!) > killedAt ? p : undefined;
    }, 15_000, 50);
    const takeoverMs = Date.now() - killedAt;
    console.log(`# leader failover: ${takeoverMs} ms (lease TTL ${LEASE_TTL_MS} ms)`);
    // The TTL, then the standby's next tick and one evaluation; slack for a loaded two-core machine.
    assert.ok(takeoverMs < LEASE_TTL_MS + 3_000, `${takeoverMs} ms`);
    // The orphaned worker of the dead leader is adopted, not doubled.
    await sleep(5 * INTERVAL_MS);
    assert.deepEqual((await poolWorkers()).map((w) => w.agentId), workersBefore);
    assert.equal(next.items.find((i) => i.role === 'executor')!.driverActual, 1);

    // And the new leader scales, under a new term.
    const runId = await submit(burst('after-failover', 30));
    const largest = await watchMax(waitForRun(t.gateway, runId, 60_000));
    assertRanOnce(await waitForRun(t.gateway, runId));
    assert.ok(largest > 1 && largest <= MAX, `pool reached ${largest}`);
    const later = (await bus.readScalerDecisions()).filter((d) => Date.parse(d.at) > killedAt);
    assert.ok(later.length > 0 && later.every((d) => d.term > termBefore && d.leader === next.leader), JSON.stringify(later.map((d) => [d.leader, d.term])));
  });
});
