/**
 * The foundation, end to end: six services as separate OS processes on the
 * real NATS JetStream and Redis, the sample workflow registered from YAML and
 * run to completion, checked from every side (REST, WebSocket, artifacts),
 * bad input refused without harm, and a worker SIGKILLed mid-step.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { REPO_ROOT, SERVICE_ENV_DEFAULTS } from '@muse/cluster';
import type { RunEvent, RunView } from '@muse/contracts';
import { documentedMetrics } from '../support/docs.js';
import { http, startTestCluster, StreamRecorder, waitForEvent, waitForRun, type TestCluster } from '../support/harness.js';

const CODE_REVIEW = readFileSync(join(REPO_ROOT, 'examples', 'code-review.yaml'), 'utf8');
const RELEASE_CHECK = readFileSync(join(REPO_ROOT, 'examples', 'release-check.yaml'), 'utf8');
const YAML = { 'content-type': 'application/yaml' };

function assertNoGaps(events: RunEvent[]): void {
  assert.deepEqual(events.map((e) => e.seq), events.map((_, i) => i + 1), 'event sequence numbers run 1..n without gaps');
}

function indexOf(events: RunEvent[], type: string, stepId?: string): number {
  return events.findIndex((e) => e.type === type && (stepId === undefined || (e.data as { stepId?: string }).stepId === stepId));
}

describe('foundation: a multi-agent workflow end to end', { timeout: 240_000 }, () => {
  let t: TestCluster;

  before(async () => {
    t = await startTestCluster({
      workers: 2,
      env: {
        // Visible step durations, so overlap and a mid-step kill are observable.
        MUSE_LOCAL_PROVIDER_DELAY_MS: '300',
        // A killed worker's job is handed to another after this long.
        MUSE_JOB_LOCK_MS: '2000',
        MUSE_HEARTBEAT_MS: '500',
      },
    });
  });

  after(async () => {
    await t?.stop();
  });

  test('registers the YAML workflow; identical content keeps its version', async () => {
    const first = await http(t.gateway, 'POST', '/v1/workflows', CODE_REVIEW, YAML);
    assert.equal(first.status, 201, first.text);
    assert.deepEqual(first.body, { name: 'code-review', version: 1 });
    const again = await http(t.gateway, 'POST', '/v1/workflows', CODE_REVIEW, YAML);
    assert.equal(again.status, 200, again.text);
    assert.deepEqual(again.body, { name: 'code-review', version: 1 });
    const changed = await http(t.gateway, 'POST', '/v1/workflows', CODE_REVIEW.replace('Plan a change', 'Plan one change'), YAML);
    assert.equal(changed.status, 201, changed.text);
    assert.deepEqual(changed.body, { name: 'code-review', version: 2 });
    const got = await http(t.gateway, 'GET', '/v1/workflows/code-review');
    assert.equal(got.status, 200);
    assert.equal(got.body.latest.version, 2);
    assert.deepEqual(got.body.versions.map((v: { version: number }) => v.version), [1, 2]);
    const v1 = await http(t.gateway, 'GET', '/v1/workflows/code-review/versions/1');
    assert.equal(v1.body.definition.steps[0].prompt, 'Plan a change to {{ input.repo }}');
  });

  test('runs code-review to success: order, templating, events, WebSocket, artifacts', async () => {
    const submitted = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'code-review', version: 1, input: { repo: 'github.com/acme/widgets' } });
    assert.equal(submitted.status, 202, submitted.text);
    const id: string = submitted.body.id;
    assert.match(id, /^[a-z0-9_]+$/);

    const ws = await StreamRecorder.open(t.gateway);
    ws.send({ op: 'subscribe', runId: id });
    const run = await waitForRun(t.gateway, id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    assert.deepEqual(run.workflow, { name: 'code-review', version: 1 });

    const steps = Object.fromEntries(run.steps.map((s) => [s.id, s]));
    assert.deepEqual(run.steps.map((s) => [s.id, s.status, s.attempts]), [['plan', 'succeeded', 1], ['lint', 'succeeded', 1], ['review', 'succeeded', 1]]);
    // templating: input into the shell command, outputs of earlier steps into the review prompt
    const lint = steps.lint!.output as { exitCode: number; stdout: string; stderr: string };
    assert.deepEqual({ exitCode: lint.exitCode, stdout: lint.stdout }, { exitCode: 0, stdout: 'linting github.com/acme/widgets\n' });
    const plan = steps.plan!.output as { text: string; model: string; usage: { inputTokens: number; outputTokens: number } };
    assert.match(plan.text, /re: Plan a change to github\.com\/acme\/widgets/);
    assert.equal(plan.model, 'muse-local');
    assert.ok(plan.usage.inputTokens > 0 && plan.usage.outputTokens > 0);
    const review = steps.review!.output as { text: string };
    assert.match(review.text, /re: Review the plan: \[muse-local#/, 'the review prompt carried the plan output');
    assert.equal(run.output, review.text, 'the workflow output template picked the review text');

    // the log: ordered, no gaps, dependencies respected
    const log = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`)).body.items;
    assertNoGaps(log);
    assert.equal(log[0]!.type, 'run.created');
    assert.equal(log.at(-1)!.type, 'run.completed');
    assert.ok(indexOf(log, 'step.completed', 'plan') < indexOf(log, 'step.queued', 'lint'), 'lint queued only after plan completed');
    assert.ok(indexOf(log, 'step.completed', 'lint') < indexOf(log, 'step.queued', 'review'), 'review queued only after lint completed');
    assert.ok(Date.parse(steps.plan!.finishedAt!) <= Date.parse(steps.lint!.startedAt!), 'lint started after plan finished');

    // the WebSocket subscriber saw exactly the same events, in the same order
    await ws.until((r) => r.events.some((e) => e.type === 'run.completed'));
    ws.close();
    assert.deepEqual(ws.events.map((e) => e.id), log.map((e) => e.id));
    assert.deepEqual(ws.events, log);

    // artifacts: one per step (and each agent step's recorded model call), listed and downloadable
    const arts = await http<{ items: Array<{ id: string; name: string; stepId: string; size: number; digest: string }> }>(t.gateway, 'GET', `/v1/runs/${id}/artifacts`);
    assert.equal(arts.status, 200, arts.text);
    assert.deepEqual(arts.body.items.map((a) => `${a.stepId}/${a.name}`).sort(), ['lint/stdout.txt', 'plan/llm-call.json', 'plan/response.md', 'review/llm-call.json', 'review/response.md']);
    const stdoutArt = arts.body.items.find((a) => a.name === 'stdout.txt')!;
    const meta = await http(t.gateway, 'GET', `/v1/artifacts/${stdoutArt.id}`);
    assert.equal(meta.status, 200);
    assert.equal(meta.body.runId, id);
    const content = await http(t.gateway, 'GET', `/v1/artifacts/${stdoutArt.id}/content`);
    assert.equal(content.status, 200);
    assert.equal(content.text, 'linting github.com/acme/widgets\n');
    const planArt = arts.body.items.find((a) => a.stepId === 'plan' && a.name === 'response.md')!;
    assert.equal((await http(t.gateway, 'GET', `/v1/artifacts/${planArt.id}/content`)).text, plan.text);
    const completed = log.filter((e) => e.type === 'step.completed');
    assert.deepEqual(completed.flatMap((e) => (e.type === 'step.completed' ? e.data.artifacts.map((a) => a.id) : [])).sort(), arts.body.items.map((a) => a.id).sort());
    // Those small outputs rode in the reports, and the coordinator committed them itself (the artifact store's policy
    // allows it): one commit per step, counted where they were made, and served by the store all the same (above).
    const coordinator = t.cluster.processes.find((p) => p.opts.service === 'coordinator')!;
    const committed = Number(/^muse_artifact_commits_total\{[^}]*outcome="committed"[^}]*\} (\d+)$/m.exec((await http(coordinator.url, 'GET', '/metrics')).text)?.[1] ?? 0);
    assert.ok(committed >= 3, `the coordinator committed ${committed} of the run's 3 steps' outputs itself`);

    // listed among runs
    const list = await http<{ items: RunView[] }>(t.gateway, 'GET', '/v1/runs?workflow=code-review&status=succeeded');
    assert.ok(list.body.items.some((r) => r.id === id));
  });

  test('independent steps run in parallel on several agents', async () => {
    assert.equal((await http(t.gateway, 'POST', '/v1/workflows', RELEASE_CHECK, YAML)).status, 201);
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'release-check', input: { repo: 'acme/widgets', version: '1.2.0' } });
    assert.equal(sub.status, 202, sub.text);
    const run = await waitForRun(t.gateway, sub.body.id);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const par = run.steps.filter((s) => ['tests', 'security', 'perf'].includes(s.id));
    const latestStart = Math.max(...par.map((s) => Date.parse(s.startedAt!)));
    const earliestEnd = Math.min(...par.map((s) => Date.parse(s.finishedAt!)));
    assert.ok(latestStart < earliestEnd, `the three checks overlapped in time (last start ${latestStart}, first end ${earliestEnd})`);
    const note = run.steps.find((s) => s.id === 'note')!;
    assert.ok(Date.parse(note.startedAt!) >= Math.max(...par.map((s) => Date.parse(s.finishedAt!))), 'the join waited for all three');
    const agents = await http<{ items: Array<{ agentId: string; roles: string[] }> }>(t.gateway, 'GET', '/v1/agents');
    assert.deepEqual(agents.body.items.map((a) => a.agentId).sort(), ['agent-worker-1', 'agent-worker-2']);
  });

  test('an Idempotency-Key makes a retried submission return the same run', async () => {
    const body = { workflow: 'code-review', input: { repo: 'idem/repo' } };
    const a = await http(t.gateway, 'POST', '/v1/runs', body, { 'idempotency-key': 'retry-me-1' });
    const b = await http(t.gateway, 'POST', '/v1/runs', body, { 'idempotency-key': 'retry-me-1' });
    assert.equal(a.status, 202);
    assert.equal(b.status, 202);
    assert.equal(b.body.id, a.body.id);
    const c = await http(t.gateway, 'POST', '/v1/runs', { ...body, input: { repo: 'other' } }, { 'idempotency-key': 'retry-me-1' });
    assert.equal(c.status, 409);
    assert.equal(c.body.error.code, 'MUSE_ERR_IDEMPOTENCY_CONFLICT');
    assert.equal((await waitForRun(t.gateway, a.body.id)).status, 'succeeded');
  });

  test('bad input gets the documented 4xx with the error shape, and the services keep serving', async () => {
    const shape = (res: { body: any }, code: string) => {
      assert.equal(res.body?.error?.code, code, JSON.stringify(res.body));
      assert.equal(typeof res.body.error.message, 'string');
      assert.equal(typeof res.body.error.retryable, 'boolean');
    };
    const malformed = await http(t.gateway, 'POST', '/v1/workflows', '{"name": "x", steps: [', { 'content-type': 'application/json' });
    assert.equal(malformed.status, 400);
    shape(malformed, 'MUSE_ERR_REQUEST_MALFORMED_JSON');

    const cyclic = CODE_REVIEW.replace('prompt: "Plan a change to {{ input.repo }}"', 'prompt: "Plan a change to {{ input.repo }}"\n    needs: [review]');
    const cycle = await http(t.gateway, 'POST', '/v1/workflows', cyclic, YAML);
    assert.equal(cycle.status, 400);
    shape(cycle, 'MUSE_ERR_WORKFLOW_INVALID');
    const issue = cycle.body.error.details.issues[0];
    assert.equal(issue.field, 'needs');
    assert.ok(['plan', 'lint', 'review'].includes(issue.stepId), JSON.stringify(issue));
    assert.match(issue.message, /cycle/);

    const badYaml = await http(t.gateway, 'POST', '/v1/workflows', 'name: [unclosed\nsteps: {', YAML);
    assert.equal(badYaml.status, 400);
    shape(badYaml, 'MUSE_ERR_REQUEST_MALFORMED_YAML');

    const unknownWf = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'no-such-workflow' });
    assert.equal(unknownWf.status, 404);
    shape(unknownWf, 'MUSE_ERR_WORKFLOW_NOT_FOUND');

    const unknownField = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'code-review', inputs: {} });
    assert.equal(unknownField.status, 400);
    shape(unknownField, 'MUSE_ERR_REQUEST_INVALID');

    const big = JSON.stringify({ workflow: 'code-review', input: { blob: 'x'.repeat(1024 * 1024 + 10) } });
    const tooLarge = await http(t.gateway, 'POST', '/v1/runs', big);
    assert.equal(tooLarge.status, 413);
    shape(tooLarge, 'MUSE_ERR_REQUEST_TOO_LARGE');
    // Under the body limit, but with the workflow's definition too large for one message of the command stream: the
    // same 413, not a 503 asking for a retry that could never succeed.
    const nearLimit = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'code-review', input: { repo: 'acme/big', blob: 'x'.repeat(1024 * 1024 - 1_000) } });
    assert.equal(nearLimit.status, 413, nearLimit.text.slice(0, 300));
    shape(nearLimit, 'MUSE_ERR_REQUEST_TOO_LARGE');
    assert.equal(nearLimit.body.error.retryable, false);
    assert.ok(nearLimit.body.error.details.bytes > nearLimit.body.error.details.limitBytes, JSON.stringify(nearLimit.body.error.details));

    const unknownRun = await http(t.gateway, 'GET', '/v1/runs/run_doesnotexist');
    assert.equal(unknownRun.status, 404);
    shape(unknownRun, 'MUSE_ERR_RUN_NOT_FOUND');
    shape(await http(t.gateway, 'GET', '/v1/runs/run_doesnotexist/events'), 'MUSE_ERR_RUN_NOT_FOUND');
    shape(await http(t.gateway, 'POST', '/v1/runs/run_doesnotexist/cancel', {}), 'MUSE_ERR_RUN_NOT_FOUND');
    shape(await http(t.gateway, 'GET', '/v1/artifacts/art_nope'), 'MUSE_ERR_ARTIFACT_NOT_FOUND');

    // still serving, every service still ready
    for (const p of t.cluster.processes) {
      const ready = await http(p.url, 'GET', '/health/ready');
      assert.equal(ready.status, 200, `${p.instance} ready after bad input`);
    }
    const ok = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'code-review', input: { repo: 'still/alive' } });
    assert.equal(ok.status, 202);
    assert.equal((await waitForRun(t.gateway, ok.body.id)).status, 'succeeded');
  });

  test('a worker killed with SIGKILL mid-step: the step runs again elsewhere and the run completes, no event lost', async () => {
    const slow = [
      'name: slow-step',
      'steps:',
      '  - id: build',
      '    tool: shell',
      '    command: "echo start >> attempts.log; sleep 3; echo built {{ input.what }}"',
      '  - id: report',
      '    agent: reviewer',
      '    needs: [build]',
      '    prompt: "Report on {{ steps.build.output.stdout }}"',
    ].join('\n');
    assert.equal((await http(t.gateway, 'POST', '/v1/workflows', slow, YAML)).status, 201);
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'slow-step', input: { what: 'widgets' } });
    const id: string = sub.body.id;
    const ws = await StreamRecorder.open(t.gateway);
    ws.send({ op: 'subscribe', runId: id });

    const started = await waitForEvent(t.gateway, id, (e) => e.type === 'step.started' && e.data.stepId === 'build');
    const victim = started.type === 'step.started' ? started.data.agentId : '';
    assert.match(victim, /^agent-worker-\d$/);
    await new Promise((r) => setTimeout(r, 500)); // well inside the 3 s step
    await t.cluster.get(victim).kill('SIGKILL');

    const run = await waitForRun(t.gateway, id, 60_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
    const log = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`)).body.items;
    assertNoGaps(log);
    const starts = log.filter((e) => e.type === 'step.started' && e.data.stepId === 'build').map((e) => (e.type === 'step.started' ? e.data.agentId : ''));
    assert.equal(starts[0], victim);
    assert.ok(starts.length >= 2 && starts.at(-1) !== victim, `the step ran again on another worker: ${starts}`);
    assert.equal(run.steps[0]!.agent, starts.at(-1));
    assert.equal((run.steps[0]!.output as { stdout: string }).stdout, 'built widgets\n');
    await ws.until((r) => r.events.some((e) => e.type === 'run.completed'));
    ws.close();
    assert.deepEqual(ws.events.map((e) => e.id), log.map((e) => e.id), 'the WebSocket subscriber saw every event once, in order');

    await t.cluster.restart(victim);
  });

  test('every service process runs with the launcher\'s V8 flags and environment defaults', () => {
    assert.ok(t.cluster.processes.length >= 6, `only ${t.cluster.processes.length} service processes`);
    for (const p of t.cluster.processes) {
      assert.ok(p.pid, `${p.instance}: no pid`);
      const argv = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0');
      for (const flag of p.nodeFlags) assert.ok(argv.includes(flag), `${p.instance}: started without ${flag} (argv ${JSON.stringify(argv)})`);
      const environ = new Map(readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0').filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
      for (const [name, value] of Object.entries(SERVICE_ENV_DEFAULTS)) {
        assert.equal(environ.get(name), process.env[name] ?? value, `${p.instance}: ${name} is ${JSON.stringify(environ.get(name))}`);
      }
    }
  });

  test('every service exports exactly the metrics the README documents', async () => {
    const exported = new Map<string, { type: string; services: Set<string> }>();
    for (const p of t.cluster.processes) {
      const text = (await http(p.url, 'GET', '/metrics')).text;
      for (const m of text.matchAll(/^# TYPE (muse_\S+) (\S+)$/gm)) {
        if (m[1]!.startsWith('muse_process_')) continue;
        const e = exported.get(m[1]!) ?? { type: m[2]!, services: new Set<string>() };
        e.services.add(p.opts.service);
        exported.set(m[1]!, e);
      }
    }
    const documented = documentedMetrics();
    assert.deepEqual([...exported.keys()].sort(), documented.map((d) => d.name).sort(), 'exported vs documented metric names');
    for (const d of documented) {
      const e = exported.get(d.name)!;
      assert.equal(e.type, d.type, `${d.name} type`);
      const services = d.service === 'all' ? [...new Set(t.cluster.processes.map((p) => p.opts.service))] : d.service.split(',').map((x) => x.trim());
      assert.deepEqual([...e.services].sort(), services.sort(), `${d.name} service`);
    }

    // Left quiet, every service gives back its startup heap once (MUSE_MEMORY_TRIM_PERIOD_MS, 2 s by default).
    const trims = async () => {
      const n: Record<string, number> = {};
      for (const p of t.cluster.processes) n[p.instance] = Number(/^muse_memory_trim_duration_seconds_count\{[^}]*\} (\d+)$/m.exec((await http(p.url, 'GET', '/metrics')).text)?.[1] ?? 0);
      return n;
    };
    const deadline = Date.now() + 20_000;
    let seen = await trims();
    while (Object.values(seen).some((n) => n < 1) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1_000));
      seen = await trims();
    }
    for (const [instance, n] of Object.entries(seen)) assert.ok(n >= 1, `${instance} never trimmed its memory within 20 s of quiet: ${JSON.stringify(seen)}`);
  });

  test('the muse CLI registers, runs with --watch, lists, shows and refuses to cancel a finished run', async () => {
    const muse = async (...args: string[]) => {
      try {
        const r = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'apps/cli/dist/main.js'), '--gateway', t.gateway, ...args], {
          env: { ...process.env, MUSE_API_KEY: t.apiKey },
        });
        return { code: 0, out: r.stdout, err: r.stderr };
      } catch (e) {
        const x = e as { code: number; stdout: string; stderr: string };
        return { code: x.code, out: x.stdout, err: x.stderr };
      }
    };
    const reg = await muse('workflows', 'register', join(REPO_ROOT, 'examples', 'code-review.yaml'));
    assert.equal(reg.code, 0, reg.err);
    assert.match(reg.out, /registered code-review v\d+/);
    const run = await muse('run', 'code-review', '--version', '1', '--input', 'repo=cli/repo', '--watch');
    assert.equal(run.code, 0, run.err + run.out);
    for (const step of ['plan', 'lint', 'review']) assert.match(run.out, new RegExp(`${step}\\s+succeeded on agent-worker-\\d`));
    assert.match(run.out, /run succeeded/);
    const id = /run (run_[a-z0-9_]+)/.exec(run.out)![1]!;
    const status = await muse('--json', 'status', id);
    assert.equal(status.code, 0);
    const view = JSON.parse(status.out) as RunView;
    assert.equal(view.status, 'succeeded');
    assert.equal((view.steps[1]!.output as { stdout: string }).stdout, 'linting cli/repo\n');
    assert.match((await muse('runs', '--workflow', 'code-review')).out, new RegExp(`${id}\\s+succeeded`));
    const cancel = await muse('cancel', id);
    assert.equal(cancel.code, 1);
    assert.match(cancel.err, /MUSE_ERR_RUN_TERMINAL/);
    const bad = await muse('run', 'code-review', '--input', 'novalue');
    assert.equal(bad.code, 1);
    assert.match(bad.err, /expected key=value/);
  });
});
