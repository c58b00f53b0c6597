import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceProfile } from '@muse/contracts';
import { buildProfileReport } from './profile-report.js';
import { hotFunctionsOf, ServiceProfiler } from './service-profiler.js';

function profile(service: string, over: { share?: number; elu?: number; queues?: ServiceProfile['queues']; hot?: string } = {}): ServiceProfile {
  return {
    service,
    instance: `${service}-1`,
    sessionId: 's',
    durationMs: 10_000,
    cpu: { userMs: 1000, systemMs: 100, share: over.share ?? 0.1 },
    eventLoop: { utilization: over.elu ?? 0.2, delayP50Ms: 10, delayP99Ms: 20, delayMaxMs: 30 },
    memory: { rssStartBytes: 1, rssEndBytes: 2, rssPeakBytes: 3, heapUsedStartBytes: 1, heapUsedEndBytes: 2, heapUsedPeakBytes: 3 },
    hotFunctions: over.hot ? [{ function: over.hot, selfMs: 500, selfShare: 0.5 }] : [],
    messages: { in: 10, out: 10, inPerSec: 1, outPerSec: 1 },
    queues: over.queues ?? {},
  };
}

describe('buildProfileReport', () => {
  test('a growing queue is the bottleneck', () => {
    const r = buildProfileReport('s', [profile('coordinator', { share: 0.9, hot: 'fold' }), profile('observability', { queues: { executor: { start: 2, end: 40, peak: 41 }, reviewer: { start: 0, end: 3, peak: 3 } } })]);
    assert.equal(r.bottleneck.kind, 'queue');
    assert.equal(r.bottleneck.target, 'executor');
    assert.match(r.summary, /queue "executor" grew from 2 to 40/);
  });

  test('else a saturated event loop, else the busiest CPU, with its hot functions; busiest first', () => {
    const loop = buildProfileReport('s', [profile('gateway', { share: 0.5 }), profile('coordinator', { share: 0.3, elu: 0.97, hot: 'fold' })]);
    assert.equal(loop.bottleneck.kind, 'event-loop');
    assert.equal(loop.bottleneck.target, 'coordinator');
    assert.deepEqual(loop.bottleneck.hotFunctions.map((f) => f.function), ['fold']);
    const cpu = buildProfileReport('s', [profile('gateway', { share: 0.2 }), profile('agent-worker', { share: 0.7, hot: 'render' })]);
    assert.equal(cpu.bottleneck.kind, 'cpu');
    assert.equal(cpu.bottleneck.target, 'agent-worker');
    assert.deepEqual(cpu.services.map((s) => s.service), ['agent-worker', 'gateway']);
    assert.match(cpu.summary, /render/);
    assert.equal(buildProfileReport('s', []).bottleneck.kind, 'none');
    const idle = buildProfileReport('s', [profile('gateway', { share: 0.03 }), profile('scaler', { share: 0.01 })]);
    assert.equal(idle.bottleneck.kind, 'none');
    assert.match(idle.bottleneck.reason, /mostly idle \(busiest: gateway at 3.0% of a core\)/);
  });
});

describe('hotFunctionsOf', () => {
  test('self time per function from samples and time deltas, idle left out', () => {
    const frame = (functionName: string, lineNumber = 0) => ({ functionName, scriptId: '1', url: 'file:///a.js', lineNumber, columnNumber: 0 });
    const hot = hotFunctionsOf({
      nodes: [
        { id: 1, callFrame: frame('(root)') },
        { id: 2, callFrame: frame('(idle)') },
        { id: 3, callFrame: frame('parse', 9) },
        { id: 4, callFrame: frame('fold', 19) },
      ],
      startTime: 0,
      endTime: 100,
      samples: [2, 3, 3, 4, 2],
      timeDeltas: [50_000, 10_000, 10_000, 5_000, 50_000],
    }, 5);
    assert.deepEqual(hot.map((h) => [h.function, h.selfMs]), [['parse (/a.js:10)', 20], ['fold (/a.js:20)', 5]]);
    assert.equal(hot[0]!.selfShare, 0.8);
  });
});

describe('ServiceProfiler', () => {
  test('a session measures CPU, loop and memory, and one after another works', async () => {
    const p = new ServiceProfiler('spec');
    let msgs = 0;
    p.setMessageProbe(() => ({ in: msgs, out: 0 }));
    for (const id of ['a', 'b']) {
      await p.start(id, { maxSeconds: 30, cpuProfile: true });
      msgs += 5;
      const end = Date.now() + 150;
      let x = 0;
      while (Date.now() < end) x += Math.sqrt(x + 1); // busy: the profiler sees this function
      await new Promise((r) => setTimeout(r, 20)); // the event loop's figures move at the end of an iteration
      const prof = (await p.stop(id))!;
      assert.equal(prof.sessionId, id);
      assert.equal(prof.messages.in, 5);
      assert.ok(prof.cpu.userMs > 50, `cpu ${prof.cpu.userMs}`);
      assert.ok(prof.memory.rssPeakBytes > 0 && prof.eventLoop.utilization > 0);
      assert.ok(prof.hotFunctions.length > 0);
      assert.equal(await p.stop(id), undefined, 'stopped once');
    }
  });
});
