import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EVENT_LOOP_SAMPLE_MS, MuseMetrics } from './metrics.js';

/** Voluntary context switches of every thread of `pid` so far (Linux's /proc): one per wake-up from idle. */
function wakeups(pid: number): number {
  return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

const metricValue = (text: string, name: string): number => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)![1]);

describe('MuseMetrics', () => {
  test('an idle process with the default metrics wakes about every EVENT_LOOP_SAMPLE_MS, not 100 times a second', async () => {
    const metrics = fileURLToPath(new URL('./metrics.js', import.meta.url));
    // A process with nothing to do but the metrics: a timer far off keeps it alive.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const { MuseMetrics } = await import(${JSON.stringify(metrics)}); new MuseMetrics('idle'); setTimeout(() => {}, 10_000); console.log('ready');`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout!.once('data', () => resolve());
        child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
      });
      await new Promise((r) => setTimeout(r, 500)); // past its start-up
      const before = wakeups(child.pid!);
      await new Promise((r) => setTimeout(r, 2_000));
      const perSecond = (wakeups(child.pid!) - before) / 2;
      // 10 a second at 100 ms; prom-client's own 10 ms default made it ~100.
      assert.ok(perSecond <= 2 * (1000 / EVENT_LOOP_SAMPLE_MS), `${perSecond} wake-ups a second`);
    } finally {
      child.kill();
    }
  });

  test('a blocked event loop still shows in the lag metrics', async () => {
    const m = new MuseMetrics('spec');
    await m.render(); // starts a fresh window
    await new Promise((r) => setTimeout(r, 2 * EVENT_LOOP_SAMPLE_MS));
    const until = Date.now() + 300;
    while (Date.now() < until) {
      // blocks the loop for 300 ms
    }
    await new Promise((r) => setTimeout(r, 2 * EVENT_LOOP_SAMPLE_MS));
    const text = await m.render();
    assert.ok(metricValue(text, 'muse_process_nodejs_eventloop_lag_max_seconds') >= 0.2, text.split('\n').filter((l) => l.includes('eventloop_lag')).join('\n'));
  });
});
