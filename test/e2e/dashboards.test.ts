/**
 * The Grafana dashboards against the real export: a cluster runs a workflow
 * (so counters, gauges and histograms have samples), every service process's
 * /metrics is scraped, and every metric name in every PromQL expression of
 * every dashboard must be exported by some service. So a dashboard that
 * queries a renamed, removed or made-up metric fails here, whatever the README
 * says (test/compose.test.ts holds the dashboards to the README table; this
 * holds them to the code). Also: Prometheus' scrape config reaches every
 * service the cluster runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '@muse/cluster';
import { SERVICE_CONFIG_SCHEMAS, SERVICE_NAMES, SERVICE_PORT_VARS, type ServiceName } from '@muse/contracts';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';
import { dashboardExprs, exposedMetricNames, promqlMetricNames } from '../support/promql.js';

const DASHBOARDS_DIR = join(REPO_ROOT, 'infra', 'grafana', 'dashboards');
const PROMETHEUS_FILE = join(REPO_ROOT, 'infra', 'prometheus', 'prometheus.yml');
/** Series Prometheus writes itself for every target, not exported by any service. */
const PROMETHEUS_SERIES = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_series_added']);
/** The dashboards the issue asks for, by uid. */
const REQUIRED_DASHBOARDS = ['muse-overview', 'muse-agents', 'muse-queues', 'muse-providers', 'muse-slos'];

const CHAIN = {
  name: 'metrics-chain',
  steps: [
    { id: 'plan', agent: 'orchestrator', prompt: 'Plan {{ input.topic }}' },
    { id: 'build', tool: 'shell', command: 'echo building', needs: ['plan'] },
    { id: 'review', agent: 'reviewer', prompt: 'Review {{ steps.plan.output.text }}', needs: ['build'] },
  ],
};

interface Dashboard {
  file: string;
  uid: string;
  title: string;
  exprs: string[];
}

function readDashboards(): Dashboard[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => {
      const doc = JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')) as { uid: string; title: string };
      return { file, uid: doc.uid, title: doc.title, exprs: dashboardExprs(doc) };
    });
}

/** Every query of `dashboards` naming a metric not in `exported`: `file: metric in "expr"`. */
function unknownMetrics(dashboards: Dashboard[], exported: ReadonlyMap<string, unknown>): string[] {
  const problems: string[] = [];
  for (const d of dashboards) {
    for (const expr of d.exprs) {
      const names = promqlMetricNames(expr);
      if (names.length === 0) problems.push(`${d.file}: "${expr}" names no metric`);
      for (const n of names) if (!exported.has(n) && !PROMETHEUS_SERIES.has(n)) problems.push(`${d.file}: ${n} in "${expr}"`);
    }
  }
  return problems;
}

/** The sum of a metric's samples whose labels include every `labels` pair. */
function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = Object.fromEntries([...(m[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

function defaultPort(name: ServiceName): number {
  const field = (SERVICE_CONFIG_SCHEMAS[name].shape as Record<string, { parse(v: unknown): unknown }>)[SERVICE_PORT_VARS[name]]!;
  return Number(field.parse(undefined));
}

describe('Grafana dashboards against the services\' live /metrics', { timeout: 180_000 }, () => {
  let t: TestCluster;
  /** metric name -> the services exporting it */
  const exported = new Map<string, Set<string>>();
  /** service -> its /metrics text (the first process of each) */
  const texts = new Map<string, string>();

  before(async () => {
    t = await startTestCluster({ workers: 1, env: { MUSE_HEARTBEAT_MS: '500' } });
    const submitted = await http(t.gateway, 'POST', '/v1/runs', { definition: CHAIN, input: { topic: 'metrics' } });
    assert.equal(submitted.status, 202, submitted.text);
    const run = await waitForRun(t.gateway, submitted.body.id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    // One observability poll (1 s) and one scaler pass after the run, so gauges hold what it left.
    await new Promise((r) => setTimeout(r, 2_500));
    for (const p of t.cluster.processes) {
      const res = await fetch(`${p.url}/metrics`);
      assert.equal(res.status, 200, `${p.instance}: GET /metrics answered ${res.status}`);
      const text = await res.text();
      if (!texts.has(p.opts.service)) texts.set(p.opts.service, text);
      for (const name of exposedMetricNames(text).keys()) {
        const set = exported.get(name) ?? new Set<string>();
        set.add(p.opts.service);
        exported.set(name, set);
      }
    }
  });

  after(async () => {
    await t?.stop();
  });

  test('every service serves /metrics, and the run left samples', () => {
    assert.deepEqual([...texts.keys()].sort(), [...SERVICE_NAMES].sort());
    const obs = texts.get('observability')!;
    const worker = texts.get('agent-worker')!;
    assert.ok(sampleSum(obs, 'muse_runs_total', { status: 'succeeded' }) >= 1, 'observability counted the succeeded run');
    assert.ok(sampleSum(obs, 'muse_steps_total', { outcome: 'completed' }) >= 3, 'observability counted the three steps');
    assert.ok(sampleSum(worker, 'muse_worker_steps_total', { outcome: 'completed' }) >= 3, 'the worker counted its three steps');
    assert.ok(sampleSum(worker, 'muse_provider_tokens_total') > 0, 'the agent steps used tokens');
    assert.ok(sampleSum(texts.get('gateway')!, 'muse_gateway_runs_submitted_total') >= 1);
    // Tenancy: the series of a project's work carry its project.
    assert.ok(sampleSum(texts.get('gateway')!, 'muse_gateway_runs_submitted_total', { project: 'default' }) >= 1, 'runs submitted by project');
    assert.ok(sampleSum(worker, 'muse_worker_steps_total', { outcome: 'completed', project: 'default' }) >= 3, 'steps by project');
    assert.ok(sampleSum(texts.get('coordinator')!, 'muse_event_persist_seconds_count') > 0);
  });

  test('the dashboards the issue asks for are all there, with distinct uids', () => {
    const dashboards = readDashboards();
    const uids = dashboards.map((d) => d.uid);
    assert.equal(new Set(uids).size, uids.length, `duplicate dashboard uids: ${uids.join(', ')}`);
    for (const uid of REQUIRED_DASHBOARDS) assert.ok(uids.includes(uid), `no dashboard with uid ${uid} (have ${uids.join(', ')})`);
    for (const d of dashboards) assert.ok(d.exprs.length >= 3, `${d.file}: only ${d.exprs.length} queries`);
  });

  test('every metric every dashboard query reads is exported by a running service', () => {
    const dashboards = readDashboards();
    const total = dashboards.reduce((n, d) => n + d.exprs.length, 0);
    const problems = unknownMetrics(dashboards, exported);
    assert.deepEqual(problems, [], `dashboard queries read metrics no service exports:\n${problems.join('\n')}`);
    const used = new Set(dashboards.flatMap((d) => d.exprs.flatMap(promqlMetricNames)));
    console.log(`dashboards: ${dashboards.length} files, ${total} queries, ${used.size} distinct metrics, all exported (of ${exported.size} exported names)`);
  });

  test('the check fails on a made-up metric, a wrong histogram suffix and a typo', () => {
    const fake: Dashboard = {
      file: 'fake.json',
      uid: 'fake',
      title: 'fake',
      exprs: [
        'sum(rate(muse_made_up_total[5m]))',
        'histogram_quantile(0.9, sum by (le) (rate(muse_runs_total_bucket[5m])))',
        'sum by (role) (muse_queue_dept{state="waiting"})',
        'histogram_quantile(0.9, sum by (le) (rate(muse_gateway_request_duration_seconds_bucket[5m])))',
      ],
    };
    assert.deepEqual(unknownMetrics([fake], exported), [
      'fake.json: muse_made_up_total in "sum(rate(muse_made_up_total[5m]))"',
      'fake.json: muse_runs_total_bucket in "histogram_quantile(0.9, sum by (le) (rate(muse_runs_total_bucket[5m])))"',
      'fake.json: muse_queue_dept in "sum by (role) (muse_queue_dept{state="waiting"})"',
    ]);
  });

  test('the PromQL reader strips functions, matchers, label lists, ranges, modifiers and variables', () => {
    const cases: Array<[string, string[]]> = [
      ['sum by (role, state) (muse_queue_depth{role=~"a|b}c"})', ['muse_queue_depth']],
      ['histogram_quantile(0.95, sum by (le) (rate(x_seconds_bucket{le!="+Inf"}[$__rate_interval])))', ['x_seconds_bucket']],
      ['a_total / on(service) group_left(version) b_info * 1e3 > bool 0.5', ['a_total', 'b_info']],
      ['max_over_time(rate(c_total[5m])[1h:1m] offset 1d) @ end()', ['c_total']],
      ['sum(increase(t_total{direction="input"}[$__range])) * $usd_per_mtok_input / 1e6', ['t_total']],
      ['count without (instance) (up{job="agent-worker"} == 1) or vector(0)', ['up']],
      ['topk(3, sum by (model) (m_total)) unless ignoring(model) n_total', ['m_total', 'n_total']],
    ];
    for (const [expr, names] of cases) assert.deepEqual(promqlMetricNames(expr).sort(), names.sort(), expr);
  });

  test('prometheus.yml scrapes every service the cluster runs, at the port and path it serves', () => {
    const prom = parse(readFileSync(PROMETHEUS_FILE, 'utf8')) as { scrape_configs: Array<Record<string, any>> };
    const services = [...new Set(t.cluster.processes.map((p) => p.opts.service))];
    assert.deepEqual(services.sort(), [...SERVICE_NAMES].sort(), 'the cluster runs every service');
    for (const name of services) {
      const port = defaultPort(name);
      const job = prom.scrape_configs.find(
        (j) =>
          (j.static_configs ?? []).some((s: { targets?: string[] }) => s.targets?.includes(`${name}:${port}`)) ||
          (j.dns_sd_configs ?? []).some((d: { names?: string[]; port?: number }) => d.names?.includes(name) && Number(d.port) === port),
      );
      assert.ok(job, `prometheus.yml: no job scrapes ${name}:${port}`);
      // The path it scrapes is the one this test just read metrics from.
      assert.equal(job.metrics_path ?? '/metrics', '/metrics', `${name}: scraped at ${job.metrics_path}`);
      assert.ok(texts.get(name)?.includes('# TYPE muse_process_'), `${name}: /metrics did not serve Muse's process metrics`);
    }
  });
});
