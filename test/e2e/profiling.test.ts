/**
 * Cluster-wide profiling: a session started at the gateway reaches every
 * process over NATS; after a burst of runs, stopping it returns a profile per
 * process (CPU, event loop, memory, hot functions, NATS message rate), the
 * queues, and a bottleneck that names a service or a queue.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ProfileReport, ProfilingSession } from '@muse/contracts';
import { http, NO_AUTH, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

describe('profiling sessions', { timeout: 180_000 }, () => {
  let t: TestCluster;
  before(async () => {
    t = await startTestCluster({ workers: 2 });
  });
  after(() => t?.stop());

  test('only an admin may profile', async () => {
    const res = await http(t.gateway, 'POST', '/v1/profiling/sessions', {}, NO_AUTH);
    assert.equal(res.status, 401, res.text);
  });

  test('a session covers every process and names the bottleneck', async () => {
    const started = await http<ProfilingSession>(t.gateway, 'POST', '/v1/profiling/sessions', { maxSeconds: 120, cpuProfile: true });
    assert.equal(started.status, 201, started.text);
    const session = started.body;
    const services = [...new Set(session.processes.map((p) => p.service))].sort();
    assert.deepEqual(services, ['agent-worker', 'artifact-store', 'coordinator', 'gateway', 'observability', 'scaler']);
    assert.equal(session.processes.filter((p) => p.service === 'agent-worker').length, 2);
    const seen = await http<ProfilingSession>(t.gateway, 'GET', `/v1/profiling/sessions/${session.id}`);
    assert.equal(seen.status, 200);

    // A burst of work while the session runs, heavy enough to keep some process above the idle line (10% of a core)
    // over the whole session, whatever the machine: 60 runs, 20 submitted at a time.
    const definition = {
      name: 'profiled',
      steps: [
        { id: 'draft', agent: 'orchestrator', prompt: 'Draft {{ input.n }}' },
        { id: 'check', tool: 'shell', command: 'echo checked', needs: ['draft'] },
      ],
    };
    const ids: string[] = [];
    for (let batch = 0; batch < 3; batch++) {
      const submitted = await Promise.all(Array.from({ length: 20 }, (_, i) => http(t.gateway, 'POST', '/v1/runs', { definition, input: { n: batch * 20 + i } })));
      for (const res of submitted) {
        assert.equal(res.status, 202, res.text);
        ids.push(res.body.id);
      }
    }
    for (const id of ids) assert.equal((await waitForRun(t.gateway, id)).status, 'succeeded');

    const stopped = await http<ProfileReport>(t.gateway, 'DELETE', `/v1/profiling/sessions/${session.id}`);
    assert.equal(stopped.status, 200, stopped.text);
    const report = stopped.body;
    assert.equal(report.sessionId, session.id);
    assert.deepEqual(report.missing, [], 'every process sent its profile');
    assert.equal(report.services.length, session.processes.length);
    for (const p of report.services) {
      assert.ok(p.durationMs > 0 && p.memory.rssPeakBytes >= p.memory.rssStartBytes && p.memory.rssPeakBytes > 10 * 2 ** 20, `${p.service}: ${JSON.stringify(p.memory)}`);
      assert.ok(p.cpu.userMs + p.cpu.systemMs > 0, `${p.service} used some CPU`);
      assert.ok(p.eventLoop.utilization > 0 && p.eventLoop.utilization <= 1);
    }
    // Busiest first.
    const shares = report.services.map((s) => s.cpu.share);
    assert.deepEqual(shares, [...shares].sort((a, b) => b - a));
    const coordinator = report.services.find((s) => s.service === 'coordinator')!;
    assert.ok(coordinator.messages.in >= 120, `the coordinator took the 60 submissions and the reports: ${coordinator.messages.in}`);
    assert.ok(coordinator.hotFunctions.length > 0, 'the V8 profiler sampled the coordinator');
    // The queues are seen through observability's muse_queue_depth.
    assert.ok('orchestrator' in report.queues, JSON.stringify(report.queues));
    assert.ok(['queue', 'cpu', 'event-loop'].includes(report.bottleneck.kind), report.summary);
    const names = new Set([...report.services.map((s) => s.service), ...Object.keys(report.queues)]);
    assert.ok(names.has(report.bottleneck.target), `the bottleneck names a service or a queue: ${report.bottleneck.target}`);
    if (report.bottleneck.kind !== 'queue') assert.ok(report.bottleneck.hotFunctions.length > 0);
    assert.match(report.summary, /^profiling session prof_[0-9a-f]{16}: /);
    assert.match(report.summary, /bottleneck: /);

    const again = await http(t.gateway, 'DELETE', `/v1/profiling/sessions/${session.id}`);
    assert.equal(again.status, 404);
    assert.equal(again.body.error.code, 'MUSE_ERR_PROFILING_SESSION_NOT_FOUND');

    // The default session (no V8 profiler): the same figures, no functions, still a bottleneck.
    const light = await http<ProfilingSession>(t.gateway, 'POST', '/v1/profiling/sessions', {});
    assert.equal(light.status, 201, light.text);
    assert.equal(light.body.cpuProfile, false);
    await new Promise((r) => setTimeout(r, 1_500));
    const lightReport = (await http<ProfileReport>(t.gateway, 'DELETE', `/v1/profiling/sessions/${light.body.id}`)).body;
    assert.equal(lightReport.services.length, light.body.processes.length);
    assert.ok(lightReport.services.every((s) => s.hotFunctions.length === 0 && s.cpu.userMs > 0));
    // An idle cluster (nothing ran during this one) has no bottleneck, and says so.
    assert.ok(['queue', 'cpu', 'event-loop', 'none'].includes(lightReport.bottleneck.kind), lightReport.summary);
  });
});
