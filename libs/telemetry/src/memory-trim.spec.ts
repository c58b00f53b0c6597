import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createLogger } from './logger.js';
import { MuseMetrics } from './metrics.js';
import { MemoryTrimmer, compactAfterStartup, type GcFunction } from './memory-trim.js';

const MB = 1024 * 1024;

/** A trimmer whose event-loop shares come from `shares`, one per period, counting its GCs; `heap.used` is its heap in use. */
function scripted(shares: number[], heap = { used: 30 * MB }, afterWorkMs?: number) {
  const gcs: unknown[] = [];
  const queue = [0, ...shares]; // start() reads once to open the first period
  let afterGc = false; // the trimmer reads once more right after its GC, to start the next period there
  const trimmer = new MemoryTrimmer({
    periodMs: 1_000,
    ...(afterWorkMs !== undefined ? { afterWorkMs } : {}),
    logger: createLogger('spec', 'silent'),
    metrics: new MuseMetrics('spec'),
    gc: ((o) => (gcs.push(o), (afterGc = true))) as GcFunction,
    utilization: () => (afterGc ? ((afterGc = false), 0) : (queue.shift() ?? 0)),
    heapUsed: () => heap.used,
  });
  trimmer.start();
  trimmer.stop(); // periods are driven by hand below
  return { trimmer, gcs, periods: () => shares.map(() => trimmer.check()) };
}

describe('MemoryTrimmer', () => {
  test('trims once after startup, then only after a busy period followed by a quiet one', () => {
    const { periods, gcs } = scripted([0.01, 0.01, 0.4, 0.2, 0.01, 0.0]);
    assert.deepEqual(periods(), [true, false, false, false, true, false]);
    assert.deepEqual(gcs[0], { type: 'major', flavor: 'last-resort', execution: 'sync' });
  });

  test('after work, trims once the loop was quiet for afterWorkMs (whole periods); startup needs one quiet period', () => {
    // Periods of 1 s, 3 s of quiet after work. 0.03 is not quiet (nor work): the count starts again after it.
    const { periods, gcs } = scripted([0.01, 0.4, 0.01, 0.01, 0.03, 0.01, 0.01, 0.01, 0.01, 0.3, 0.01, 0.01, 0.01], undefined, 3_000);
    assert.deepEqual(periods(), [true, false, false, false, false, false, false, true, false, false, false, false, true]);
    assert.equal(gcs.length, 3);
  });

  test('a period between quiet and busy neither trims nor counts as work', () => {
    // 0.03 is above the quiet share and below the busy one: after the startup trim, it never makes the loop trim again.
    const { periods } = scripted([0.03, 0.01, 0.03, 0.01, 0.03]);
    assert.deepEqual(periods(), [false, true, false, false, false]);
  });

  test('trims again, without any busy period, once the heap grew by 4 MB since the last trim', () => {
    const heap = { used: 30 * MB };
    const { trimmer, gcs } = scripted([], heap);
    assert.equal(trimmer.check(), true, 'the startup trim');
    heap.used += 3 * MB;
    assert.equal(trimmer.check(), false, '3 MB of growth is not enough');
    heap.used += 1 * MB;
    assert.equal(trimmer.check(), true, '4 MB is');
    assert.equal(trimmer.check(), false, 'and the next one needs 4 MB more');
    heap.used += 4 * MB;
    assert.equal(trimmer.check(), true);
    assert.equal(gcs.length, 3);
  });

  test('off at period 0, and without an exposed gc', () => {
    const metrics = new MuseMetrics('spec');
    const logger = createLogger('spec', 'silent');
    let reads = 0;
    new MemoryTrimmer({ periodMs: 0, logger, metrics, gc: () => assert.fail('no gc when off'), utilization: () => (reads++, 0) }).start().stop();
    assert.equal(reads, 0, 'an off trimmer does not even watch the event loop');
    const saved = (globalThis as { gc?: unknown }).gc;
    delete (globalThis as { gc?: unknown }).gc;
    try {
      const noGc = new MemoryTrimmer({ periodMs: 1_000, logger, metrics, utilization: () => (reads++, 0) }).start();
      noGc.stop();
      assert.equal(reads, 0, 'without gc, start() does nothing');
      assert.equal(noGc.check(), false);
    } finally {
      if (saved !== undefined) (globalThis as { gc?: unknown }).gc = saved;
    }
  });

  test("on the real V8 (--expose-gc), a trim gives back the heap a burst left behind, and it is counted", () => {
    const url = new URL('./memory-trim.js', import.meta.url).href;
    const code = `
      const { MemoryTrimmer } = await import(${JSON.stringify(url)});
      const { MuseMetrics } = await import(${JSON.stringify(new URL('./metrics.js', import.meta.url).href)});
      const { createLogger } = await import(${JSON.stringify(new URL('./logger.js', import.meta.url).href)});
      const metrics = new MuseMetrics('spec');
      let shares = [0.01];
      const t = new MemoryTrimmer({ periodMs: 1000, logger: createLogger('spec', 'silent'), metrics, utilization: () => shares.shift() ?? 0 });
      let keep = Array.from({ length: 400000 }, (_, i) => ({ i, s: 'x' + i }));
      keep = null;
      const before = process.memoryUsage().heapUsed;
      const trimmed = t.check();
      const after = process.memoryUsage().heapUsed;
      const text = await metrics.render();
      console.log(JSON.stringify({ trimmed, freedMb: (before - after) / 1048576, count: /muse_memory_trim_duration_seconds_count\\{[^}]*\\} (\\d+)/.exec(text)?.[1] }));
    `;
    const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { cwd: fileURLToPath(new URL('.', import.meta.url)), encoding: 'utf8' });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as { trimmed: boolean; freedMb: number; count: string };
    assert.equal(r.trimmed, true);
    assert.ok(r.freedMb > 10, `freed ${r.freedMb} MB`);
    assert.equal(r.count, '1');
  });
});

describe('compactAfterStartup', () => {
  test('runs one synchronous memory-reducing full GC, and nothing without V8 gc', () => {
    const gcs: unknown[] = [];
    assert.equal(typeof compactAfterStartup(((o) => void gcs.push(o)) as GcFunction), 'number');
    assert.deepEqual(gcs, [{ type: 'major', flavor: 'last-resort', execution: 'sync' }]);
    assert.equal(compactAfterStartup(undefined), 0);
  });
});
