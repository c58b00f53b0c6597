/**
 * The benchmark harness must not rot: `--quick` completes and produces every
 * row. Timings are asserted by nobody here (this machine is shared and noisy);
 * targets are judged by `npm run bench` itself.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '@muse/cluster';

const SCENARIOS = ['idle RSS', 'single-step run', '50-step sequential chain', 'throughput', 'forEach fan-out', 'POST /v1/runs accepted', 'GET /v1/runs/{id}', 'event appended', 'Redis memory per queued step', 'profiling session: cluster CPU it adds'];
/** Figures rows carry in `extra` to say where the time goes (the traced chain has no target of its own). */
const DIAGNOSTIC: Record<string, readonly string[]> = {
  '50-step chain with tracing on': ['add', 'pickup', 'runAndReport', 'beforeCommit', 'commit', 'foldToNextAdd', 'stepsTraced', 'inlineCommits', 'floorNatsPush', 'floorBullmqDispatch', 'floorToday'],
  'throughput: steps/s': ['floorTodayStepsPerS', 'floorTodayCpuMsPerStep', 'floorNatsPushStepsPerS', 'floorNatsPushCpuMsPerStep'],
};
/** The single-step timeline's spans (the chain breakdown's `detail`), in the order a run goes through them. */
const TIMELINE = ['submit', 'runSubmit', 'enqueue', 'attempt', 'modelCall', 'stepReport', 'commit'];

test('npm run bench -- --quick completes and reports every scenario with its baseline', { timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muse-bench-'));
  const out = join(dir, 'quick.json');
  try {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bench/dist/main.js'), '--quick', '--out', out], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 0, text);
    const result = JSON.parse(readFileSync(out, 'utf8')) as { quick: boolean; rows: Array<{ scenario: string; muse?: { median: number }; baseline?: { median: number }; note?: string; met?: boolean; extra?: Record<string, number>; detail?: Record<string, number> }> };
    assert.equal(result.quick, true);
    for (const name of SCENARIOS) {
      const row = result.rows.find((r) => r.scenario.includes(name));
      assert.ok(row, `a row for "${name}"`);
      assert.ok(!row.note?.startsWith('failed'), `${name}: ${row.note}`);
      if (row.note === undefined) {
        assert.ok(Number.isFinite(row.muse?.median), `${name} has a Muse figure`);
        assert.ok(Number.isFinite(row.baseline?.median), `${name} has a baseline figure`);
        assert.equal(typeof row.met, 'boolean', `${name} is judged against its target`);
      }
    }
    for (const [name, figures] of Object.entries(DIAGNOSTIC)) {
      const row = result.rows.find((r) => r.scenario.includes(name));
      assert.ok(row, `a row for "${name}"`);
      assert.equal(row.note, undefined, `${name}: ${row.note}`);
      assert.ok(Number.isFinite(row.muse?.median) && Number.isFinite(row.baseline?.median), `${name} has its figure and baseline`);
      for (const f of figures) assert.ok(Number.isFinite(row.extra?.[f]) && row.extra![f]! >= 0, `${name}: ${f} = ${row.extra?.[f]}`);
      // A design floor (bench/src/design-floor.ts) ran its steps: it took time and CPU.
      for (const f of figures.filter((f) => f.startsWith('floor'))) assert.ok(row.extra![f]! > 0, `${name}: ${f} = ${row.extra![f]}`);
    }
    // Where the CPU goes: in all and by process (the gateway and the coordinator work for every step and every run).
    for (const [name, unit] of [['throughput', 'Step'], ['POST /v1/runs accepted', 'Run']] as const) {
      const row = result.rows.find((r) => r.scenario.includes(name))!;
      assert.ok(row.extra![`cpuMsPer${unit}`]! > 0 && row.extra![`writesPer${unit}`]! > 0, `${name}: ${JSON.stringify(row.extra)}`);
      // What it stored and ran: at least the submission's command and the run's first events, and Redis's work for them.
      assert.ok(row.extra![`jsMessagesPer${unit}`]! > 0 && row.extra![`redisCallsPer${unit}`]! > 0, `${name}: ${JSON.stringify(row.extra)}`);
      for (const p of ['gateway', 'coordinator']) assert.ok((row.detail?.[`cpuMsPer${unit}.${p}`] ?? 0) > 0, `${name}: cpuMsPer${unit}.${p} in ${JSON.stringify(row.detail)}`);
    }
    // The single-step timeline: every span found, each inside the run (after the POST went out, ending before the
    // client saw the run's last event or the report's command that sent it), in the order a run goes through them.
    const timeline = result.rows.find((r) => r.scenario.includes('50-step chain with tracing on'))!.detail ?? {};
    const at = (k: string) => timeline[`singleStep.${k}`]!;
    for (const k of TIMELINE) assert.ok(at(`${k}.start`) > 0 && at(`${k}.end`) >= at(`${k}.start`), `singleStep.${k}: ${JSON.stringify(timeline)}`);
    for (let i = 1; i < TIMELINE.length; i++) assert.ok(at(`${TIMELINE[i]}.start`) >= at(`${TIMELINE[i - 1]}.start`), `${TIMELINE[i - 1]} starts before ${TIMELINE[i]}: ${JSON.stringify(timeline)}`);
    assert.ok(at('posted') > at('submit.end') && at('wsCompleted') > at('commit.end'), `the 202 after the submission, the last event after the commit: ${JSON.stringify(timeline)}`);
    assert.match(text, /\| scenario +\| unit/, 'the table was printed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('npm run bench refuses an unknown scenario in --only, --only without a list and --out without a file: exit 2, before starting anything', { timeout: 30_000 }, async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--only', 'chain,chian'], /unknown scenario "chian" in --only; the scenarios are idle-rss, single-step, chain, chain-breakdown, .*accept-rate/],
    [['--only'], /--only needs a comma-separated list of scenarios; the scenarios are idle-rss, /],
    [['--quick', '--out'], /--out needs a file to write the results to/],
  ];
  for (const [args, message] of cases) {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bench/dist/main.js'), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (d: Buffer) => (text += d.toString()));
    child.stderr.on('data', (d: Buffer) => (text += d.toString()));
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    assert.equal(code, 2, `${args.join(' ')}: ${text}`);
    assert.match(text, message);
    assert.doesNotMatch(text, /started /, 'no service was started');
  }
});
