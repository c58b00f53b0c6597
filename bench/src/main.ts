/**
 * `npm run bench`: starts a cluster the way `npm start` does, measures every
 * scenario against its bare BullMQ or JetStream baseline in the same run,
 * prints one table and writes it as JSON under bench/results/.
 * `--quick` runs a small version of everything (the test suite runs it).
 */
import { join } from 'node:path';
import { REPO_ROOT } from '@muse/cluster';
import { settleCluster, startBench, type BenchContext } from './context.js';
import { printTable, saveJson, type Row } from './report.js';
import { chain, eventToWebSocket, singleStep } from './scenarios/latency.js';
import { chainBreakdown } from './scenarios/breakdown.js';
import { dagThroughput, fanOut } from './scenarios/throughput.js';
import { acceptRate, readUnderLoad } from './scenarios/api-load.js';
import { idleRss, redisPerQueuedStep } from './scenarios/resources.js';
import { profilingOverhead } from './scenarios/profiling.js';

const SCENARIOS: Array<[string, (ctx: BenchContext) => Promise<Row>]> = [
  ['idle-rss', idleRss],
  ['single-step', singleStep],
  ['chain', chain],
  // On a second cluster with tracing on (started and stopped within the scenario).
  ['chain-breakdown', chainBreakdown],
  ['dag-throughput', dagThroughput],
  ['fan-out', fanOut],
  ['read-under-load', readUnderLoad],
  ['event-to-ws', eventToWebSocket],
  ['redis-per-step', redisPerQueuedStep],
  ['profiling', profilingOverhead],
  // Last: it leaves ~20,000 accepted runs parked in a queue no agent serves, whose watches would weigh on any scenario after it.
  ['accept-rate', acceptRate],
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIdx = args.indexOf('--out');
if (outIdx >= 0 && !args[outIdx + 1]) {
  // Refused now rather than after the whole run, when the results are saved.
  process.stderr.write('bench --out needs a file to write the results to\n');
  process.exit(2);
}
const out = outIdx >= 0 ? args[outIdx + 1]! : join(REPO_ROOT, 'bench', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
const only = args.includes('--only') ? (args[args.indexOf('--only') + 1] ?? '').split(',') : undefined;
const log = (l: string) => process.stderr.write(`bench ${l}\n`);

// A misspelt scenario is refused before any cluster starts, rather than measuring nothing.
const unknown = only?.filter((name) => !SCENARIOS.some(([s]) => s === name)) ?? [];
if (unknown.length > 0) {
  const what = unknown.every((n) => n === '') ? '--only needs a comma-separated list of scenarios' : `unknown scenario ${unknown.filter((n) => n !== '').map((n) => `"${n}"`).join(', ')} in --only`;
  log(`${what}; the scenarios are ${SCENARIOS.map(([s]) => s).join(', ')}`);
  process.exit(2);
}

const rows: Row[] = [];
const started = Date.now();
const meta = async (extra: Record<string, unknown> = {}) => ({ startedAt: new Date(started).toISOString(), quick, node: process.version, cpus: (await import('node:os')).cpus().length, ...extra });

/** Measuring stops here, leaving a minute of the 10 to stop the cluster and purge its namespace, in ms. */
const MEASURE_MS = 9 * 60_000;
/** What stopping may take before the process exits anyway, in ms. */
const STOP_MS = 55_000;
const running: { stop?: () => Promise<void> } = {};

// It stops by itself: a run past this is cut short and reports what it has (the rows finished so far),
// then stops the cluster it started and purges its namespace (a cut-short run must leave nothing running).
const deadline = setTimeout(() => {
  log('time limit reached; stopping with the scenarios finished so far (run the rest with --only)');
  printTable(rows);
  void (async () => {
    saveJson(out, await meta({ cutShort: true }), rows);
    log(`results written to ${out}`);
    await Promise.race([running.stop?.().catch(() => undefined), new Promise((r) => setTimeout(r, STOP_MS))]);
    process.exit(2);
  })();
}, MEASURE_MS);
deadline.unref();

const { ctx, stop } = await startBench({ quick, log });
running.stop = stop;
try {
  for (const [name, fn] of SCENARIOS) {
    if (only && !only.includes(name)) continue;
    const t0 = Date.now();
    try {
      const row = await fn(ctx);
      rows.push(row);
      if (row.detail) log(`${name}: ${Object.entries(row.detail).map(([k, v]) => `${k}=${v.toFixed(2)}`).join(' ')}`);
    } catch (err) {
      rows.push({ scenario: name, unit: '', baselineLabel: '', target: '', note: `failed: ${(err as Error).message}` });
    }
    const settledMs = await settleCluster(ctx).catch((err: Error) => (log(`could not look at the coordinators' backlog: ${err.message}`), 0));
    log(`${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s (the coordinators caught up in ${(settledMs / 1000).toFixed(1)} s)`);
  }
} finally {
  await stop();
}
printTable(rows);
saveJson(out, await meta(), rows);
log(`results written to ${out}`);
// Exit explicitly: a client library's stray handle must not keep a finished benchmark alive.
process.exit(rows.some((r) => r.note?.startsWith('failed')) ? 1 : 0);
