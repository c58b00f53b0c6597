/**
 * `npm run bench`: starts a cluster the way `npm start` does, measures every
 * scenario against its bare BullMQ or JetStream baseline in the same run,
 * prints one table and writes it as JSON under bench/results/.
 * `--quick` runs a small version of everything (the test suite runs it).
 */
import { join } from 'node:path';
import { REPO_ROOT } from '@muse/cluster';
import { startBench, type BenchContext } from './context.js';
import { printTable, saveJson, type Row } from './report.js';
import { chain, eventToWebSocket, singleStep } from './scenarios/latency.js';
import { dagThroughput, fanOut } from './scenarios/throughput.js';
import { acceptRate, readUnderLoad } from './scenarios/api-load.js';
import { idleRss, redisPerQueuedStep } from './scenarios/resources.js';
import { profilingOverhead } from './scenarios/profiling.js';

const SCENARIOS: Array<[string, (ctx: BenchContext) => Promise<Row>]> = [
  ['idle-rss', idleRss],
  ['single-step', singleStep],
  ['chain', chain],
  ['dag-throughput', dagThroughput],
  ['fan-out', fanOut],
  ['accept-rate', acceptRate],
  ['read-under-load', readUnderLoad],
  ['event-to-ws', eventToWebSocket],
  ['redis-per-step', redisPerQueuedStep],
  ['profiling', profilingOverhead],
];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIdx = args.indexOf('--out');
const out = outIdx >= 0 ? args[outIdx + 1]! : join(REPO_ROOT, 'bench', 'results', `${new Date().toISOString().replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1]!.split(',') : undefined;
const log = (l: string) => process.stderr.write(`bench ${l}\n`);

// It stops by itself: a run past this is cut short and reports what it has.
const deadline = setTimeout(() => {
  log('time limit reached (10 min); stopping');
  process.exit(2);
}, 10 * 60_000);
deadline.unref();

const { ctx, stop } = await startBench({ quick, log });
const rows: Row[] = [];
const started = Date.now();
try {
  for (const [name, fn] of SCENARIOS) {
    if (only && !only.includes(name)) continue;
    const t0 = Date.now();
    try {
      rows.push(await fn(ctx));
    } catch (err) {
      rows.push({ scenario: name, unit: '', baselineLabel: '', target: '', note: `failed: ${(err as Error).message}` });
    }
    log(`${name} done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
} finally {
  await stop();
}
printTable(rows);
saveJson(out, { startedAt: new Date(started).toISOString(), quick, node: process.version, cpus: (await import('node:os')).cpus().length }, rows);
log(`results written to ${out}`);
// Exit explicitly: a client library's stray handle must not keep a finished benchmark alive.
process.exit(rows.some((r) => r.note?.startsWith('failed')) ? 1 : 0);
