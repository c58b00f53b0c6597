/**
 * Composition end to end, on two coordinator replicas: sub-workflow steps (child runs linked to their parent, the
 * child's output as the step's output, cancellation passed down, the nesting limit) and keyed concurrency limits
 * at workflow and step level (at most `limit` holders of a key at once, the rest waiting in order, visibly), cron
 * schedules (BullMQ job schedulers) and event triggers (`on: {subject}` on NATS).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent, RunView } from '@muse/contracts';
import { connect, headers as natsHeaders } from '@nats-io/transport-node';
import { http, NATS_URL, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const YAML = { 'content-type': 'application/yaml' };

describe('sub-workflows, keyed concurrency, schedules, triggers and leases end to end', { timeout: 240_000 }, () => {
  let t: TestCluster;

  before(async () => {
    t = await startTestCluster({ workers: 2, coordinators: 2, env: { MUSE_MAX_WORKFLOW_DEPTH: '3', MUSE_AGENT_CONCURRENCY: '8' } });
  });

  after(async () => {
    await t?.stop();
  });

  async function register(yaml: string): Promise<void> {
    const res = await http(t.gateway, 'POST', '/v1/workflows', yaml, YAML);
    assert.ok(res.status === 201 || res.status === 200, res.text);
  }
  async function submit(workflow: string, input: Record<string, unknown> = {}): Promise<string> {
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow, input });
    assert.equal(sub.status, 202, sub.text);
    return sub.body.id as string;
  }
  const view = async (id: string): Promise<RunView> => (await http<RunView>(t.gateway, 'GET', `/v1/runs/${id}`)).body;
  const events = async (id: string): Promise<RunEvent[]> => (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`)).body.items;
  async function until<T>(check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await check();
      if (v) return v;
      assert.ok(Date.now() < deadline, 'condition not reached in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('a sub-workflow step runs its child run; the child output is the step output; both are linked', async () => {
    await register(['name: child-sum', 'steps:', '  - id: add', '    tool: shell', '    command: "echo $(( {{ input.a }} + {{ input.b }} ))"', 'output: "{{ steps.add.output.stdout }}"'].join('\n'));
    await register([
      'name: parent-sum',
      'steps:',
      '  - id: first',
      '    tool: shell',
      '    command: "echo 40"',
      '  - id: sum',
      '    needs: [first]',
      '    workflow: { name: child-sum }',
      '    input: { a: "{{ input.two }}", b: "{{ steps.first.output.stdout }}" }',
      '  - id: show',
      '    needs: [sum]',
      '    tool: shell',
      '    command: "echo got {{ steps.sum.output }}"',
    ].join('\n'));
    const id = await submit('parent-sum', { two: 2 });
    const done = await waitForRun(t.gateway, id, 60_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const sum = done.steps.find((s) => s.id === 'sum')!;
    assert.ok(sum.childRunId, 'the step names its child run');
    assert.equal(sum.agent, sum.childRunId);
    assert.equal(String(sum.output).trim(), '42');
    assert.equal((done.steps.find((s) => s.id === 'show')!.output as { stdout: string }).stdout.trim(), 'got 42');
    const child = await view(sum.childRunId!);
    assert.equal(child.status, 'succeeded');
    assert.equal(child.project, done.project);
    assert.deepEqual(child.parent, { runId: id, stepId: 'sum' });
    assert.deepEqual(child.input, { a: 2, b: '40\n' });
    // The child is listed with the project's runs, on its own.
    const list = await http<{ items: Array<{ id: string }> }>(t.gateway, 'GET', '/v1/runs?workflow=child-sum');
    assert.ok(list.body.items.some((r) => r.id === child.id));
  });

  test('cancelling a parent cancels its child; a child that fails fails the step with the reason', async () => {
    await register(['name: child-gate', 'steps:', '  - id: gate', '    type: approval'].join('\n'));
    await register(['name: parent-gate', 'steps:', '  - id: inner', '    workflow: { name: child-gate }'].join('\n'));
    const id = await submit('parent-gate');
    const childId = await until(async () => (await view(id)).steps[0]!.childRunId);
    await until(async () => (await view(childId)).status === 'waiting');
    const cancel = await http(t.gateway, 'POST', `/v1/runs/${id}/cancel`, { reason: 'enough' });
    assert.equal(cancel.status, 202, cancel.text);
    assert.equal((await waitForRun(t.gateway, id, 30_000)).status, 'cancelled');
    const child = await waitForRun(t.gateway, childId, 30_000);
    assert.equal(child.status, 'cancelled');
    assert.match(child.error?.message ?? '', new RegExp(`parent run ${id}`));

    const id2 = await submit('parent-gate');
    const child2 = await until(async () => (await view(id2)).steps[0]!.childRunId);
    await until(async () => (await view(child2)).status === 'waiting');
    const reject = await http(t.gateway, 'POST', `/v1/runs/${child2}/approvals/gate`, { decision: 'reject', comment: 'no' });
    assert.equal(reject.status, 202, reject.text);
    const parent = await waitForRun(t.gateway, id2, 30_000);
    assert.equal(parent.status, 'failed');
    assert.equal(parent.steps[0]!.error?.code, 'MUSE_ERR_CHILD_RUN_FAILED');
    assert.match(parent.steps[0]!.error?.message ?? '', /rejected/);
  });

  test('nesting stops at MUSE_MAX_WORKFLOW_DEPTH; a missing child workflow fails the step clearly', async () => {
    await register(['name: nest', 'steps:', '  - id: again', '    workflow: { name: nest }'].join('\n'));
    const id = await submit('nest');
    const top = await waitForRun(t.gateway, id, 60_000);
    assert.equal(top.status, 'failed');
    // Walk down the chain: depth 1..3 are children, the 3rd child's step is refused.
    let cur = top;
    const chain: string[] = [];
    while (cur.steps[0]!.childRunId) {
      cur = await waitForRun(t.gateway, cur.steps[0]!.childRunId, 30_000);
      chain.push(cur.id);
    }
    assert.equal(chain.length, 3);
    assert.equal(cur.steps[0]!.error?.code, 'MUSE_ERR_WORKFLOW_DEPTH');
    assert.match(cur.steps[0]!.error?.message ?? '', /limit is 3/);

    await register(['name: orphan', 'steps:', '  - id: call', '    workflow: { name: not-registered }'].join('\n'));
    const o = await waitForRun(t.gateway, await submit('orphan'), 30_000);
    assert.equal(o.status, 'failed');
    assert.equal(o.steps[0]!.error?.code, 'MUSE_ERR_WORKFLOW_NOT_FOUND');
  });

  test('a workflow-level key lets one run per repository at a time, in order; other keys are not held up', async () => {
    await register([
      'name: per-repo',
      'concurrency: { key: "input.repo", limit: 1 }',
      'steps:',
      '  - id: work',
      '    tool: shell',
      '    command: "sleep 0.6; echo {{ input.n }}"',
    ].join('\n'));
    const a: string[] = [];
    for (let n = 0; n < 4; n++) {
      a.push(await submit('per-repo', { repo: 'alpha', n }));
      await new Promise((r) => setTimeout(r, 60));
    }
    const b = await submit('per-repo', { repo: 'beta', n: 9 });
    // While the first alpha run works, the later ones wait with the reason.
    const waiting = await until(async () => {
      const v = await view(a[3]!);
      return v.status === 'waiting' ? v : undefined;
    });
    assert.match(waiting.reason ?? '', /concurrency slot: key "alpha" allows 1/);
    const runs = await Promise.all(a.map((id) => waitForRun(t.gateway, id, 60_000)));
    const beta = await waitForRun(t.gateway, b, 60_000);
    for (const r of [...runs, beta]) assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const spans = runs.map((r) => ({ start: Date.parse(r.steps[0]!.startedAt!), end: Date.parse(r.steps[0]!.finishedAt!) }));
    for (let i = 1; i < spans.length; i++) {
      assert.ok(spans[i]!.start >= spans[i - 1]!.end, `alpha run ${i} started before run ${i - 1} ended`);
    }
    // beta overlapped the alpha chain rather than waiting behind it.
    const bStart = Date.parse(beta.steps[0]!.startedAt!);
    assert.ok(bStart < spans[3]!.start, 'the beta run waited for the alpha runs');
    const admitted = (await events(a[3]!)).filter((e) => e.type === 'concurrency.waiting' || e.type === 'concurrency.admitted').map((e) => e.type);
    assert.deepEqual(admitted, ['concurrency.waiting', 'concurrency.admitted']);
  });

  test('a step-level key limits that step across runs (2 at once) while the rest of each run goes on', async () => {
    await register([
      'name: deploy-limit',
      'steps:',
      '  - id: build',
      '    tool: shell',
      '    command: "echo build"',
      '  - id: deploy',
      '    needs: [build]',
      '    concurrency: { key: "\'env-\' + input.env", limit: 2 }',
      '    tool: shell',
      '    command: "sleep 0.5; echo deployed"',
    ].join('\n'));
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push(await submit('deploy-limit', { env: 'prod', n }));
    const runs = await Promise.all(ids.map((id) => waitForRun(t.gateway, id, 60_000)));
    for (const r of runs) assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const spans = runs.map((r) => {
      const d = r.steps.find((s) => s.id === 'deploy')!;
      return { start: Date.parse(d.startedAt!), end: Date.parse(d.finishedAt!) };
    });
    // At no moment were more than 2 deploys running.
    for (const s of spans) {
      const overlapping = spans.filter((o) => o.start < s.start + 1 && o.end > s.start + 1).length;
      assert.ok(overlapping <= 2, `${overlapping} deploys ran at once`);
    }
    const waited = (await Promise.all(ids.map(events))).filter((evs) => evs.some((e) => e.type === 'concurrency.waiting' && e.data.stepId === 'deploy'));
    assert.equal(waited.length, 5, 'every deploy asked for a slot');
  });

  test('a schedule fires runs on its cron until deleted; bad patterns, zones and workflows are refused', async () => {
    await register(['name: ticker', 'steps:', '  - id: tick', '    tool: shell', '    command: "echo tick {{ input.label }}"'].join('\n'));
    const bad = await http(t.gateway, 'POST', '/v1/schedules', { workflow: 'ticker', cron: 'every minute', input: { label: 'x' } });
    assert.equal(bad.status, 400, bad.text);
    assert.match(bad.text, /cron/);
    const zone = await http(t.gateway, 'POST', '/v1/schedules', { workflow: 'ticker', cron: '* * * * *', timezone: 'Mars/Olympus', input: { label: 'x' } });
    assert.equal(zone.status, 400, zone.text);
    const missing = await http(t.gateway, 'POST', '/v1/schedules', { workflow: 'no-such', cron: '* * * * *' });
    assert.equal(missing.status, 404, missing.text);
    const noInput = await http(t.gateway, 'POST', '/v1/schedules', { workflow: 'ticker', cron: '* * * * *' });
    assert.equal((noInput.body as { error: { code: string } }).error.code, 'MUSE_ERR_RUN_INPUT_INVALID');

    const made = await http<{ id: string; nextRunAt?: string; timezone: string }>(t.gateway, 'POST', '/v1/schedules', { workflow: 'ticker', cron: '* * * * * *', input: { label: 'every-second' } });
    assert.equal(made.status, 201, made.text);
    assert.equal(made.body.timezone, 'UTC');
    assert.ok(made.body.nextRunAt && Date.parse(made.body.nextRunAt) > Date.now() - 1000);
    const listed = await http<{ items: Array<{ id: string }> }>(t.gateway, 'GET', '/v1/schedules');
    assert.ok(listed.body.items.some((x) => x.id === made.body.id));
    const runsOf = async () => (await http<{ items: Array<{ id: string; status: string }> }>(t.gateway, 'GET', '/v1/runs?workflow=ticker&limit=100')).body.items;
    const fired = await until(async () => {
      const items = await runsOf();
      return items.length >= 3 ? items : undefined;
    }, 20_000);
    const first = await waitForRun(t.gateway, fired.at(-1)!.id, 30_000);
    assert.equal(first.status, 'succeeded');
    assert.equal((first.steps[0]!.output as { stdout: string }).stdout.trim(), 'tick every-second');
    const del = await http(t.gateway, 'DELETE', `/v1/schedules/${made.body.id}`);
    assert.equal(del.status, 200, del.text);
    assert.equal((await http(t.gateway, 'GET', `/v1/schedules/${made.body.id}`)).status, 404);
    // A tick already taken may still land; after that, nothing more.
    await new Promise((r) => setTimeout(r, 1500));
    const settled = (await runsOf()).length;
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal((await runsOf()).length, settled, 'a deleted schedule fired again');
  });

  test('a message on a trigger subject starts a run with the message as input; a re-sent message id starts no second run', async () => {
    await register(['name: on-push', 'on: { subject: git.push }', 'steps:', '  - id: build', '    tool: shell', '    command: "echo built {{ input.repo }}"'].join('\n'));
    const nc = await connect({ servers: NATS_URL });
    try {
      const subject = `${t.namespace}.trigger.default.git.push`;
      const h = natsHeaders();
      h.set('Nats-Msg-Id', 'push-1');
      const ask = async (payload: string, hdrs = h) => (await nc.request(subject, new TextEncoder().encode(payload), { timeout: 10_000, headers: hdrs })).json<{ runs: Array<{ workflow: string; id: string }>; errors: Array<{ code: string }> }>();
      const reply = await ask(JSON.stringify({ repo: 'muse' }));
      assert.deepEqual(reply.errors, []);
      assert.equal(reply.runs.length, 1);
      assert.equal(reply.runs[0]!.workflow, 'on-push');
      const done = await waitForRun(t.gateway, reply.runs[0]!.id, 30_000);
      assert.equal(done.status, 'succeeded');
      assert.deepEqual(done.input, { repo: 'muse' });
      assert.equal((done.steps[0]!.output as { stdout: string }).stdout.trim(), 'built muse');
      const again = await ask(JSON.stringify({ repo: 'muse' }));
      assert.equal(again.runs[0]!.id, reply.runs[0]!.id, 'the same message id starts the same run');
      const notObject = await ask('[1,2]', natsHeaders());
      assert.equal(notObject.errors[0]?.code, 'MUSE_ERR_REQUEST_INVALID');
      // Another project's subject starts nothing here.
      const other = await nc.request(`${t.namespace}.trigger.elsewhere.git.push`, new TextEncoder().encode('{}'), { timeout: 10_000 });
      assert.deepEqual(other.json<{ runs: unknown[] }>().runs, []);
    } finally {
      await nc.close();
    }
  });

  test('leases: runs editing one path take turns, crossed lock lists never deadlock, and GET /v1/leases shows who holds what', async () => {
    const body = (locks: string) => ['    tool: shell', `    locks: ${locks}`, '    command: "sleep 0.3; echo edited {{ input.n }}"'];
    await register(['name: edit-ab', 'steps:', '  - id: edit', ...body('["repo:web/src/**", "file:README.md"]')].join('\n'));
    await register(['name: edit-ba', 'steps:', '  - id: edit', ...body('["file:README.md", "repo:web/src/app.ts"]')].join('\n'));
    await register(['name: edit-docs', 'steps:', '  - id: edit', '    tool: shell', '    locks: ["repo:web/docs/**"]', '    command: "sleep 0.3; echo docs"'].join('\n'));
    const ids: string[] = [];
    for (let n = 0; n < 6; n++) ids.push(await submit(n % 2 ? 'edit-ba' : 'edit-ab', { n }));
    const docs = await submit('edit-docs', { n: 99 });
    // While the first holds its leases, the others wait, visibly; the listing names holder and waiters.
    const seen = await until(async () => {
      const l = (await http<{ holders: Array<{ runId: string; locks: string[] }>; waiters: Array<{ runId: string }> }>(t.gateway, 'GET', '/v1/leases')).body;
      return l.holders.length >= 1 && l.waiters.length >= 2 ? l : undefined;
    });
    assert.ok(seen.holders.some((h) => ids.includes(h.runId)));
    const waitingView = await until(async () => {
      for (const id of ids) {
        const v = await view(id);
        if (v.steps[0]!.status === 'waiting') return v;
      }
      return undefined;
    });
    assert.match(waitingView.steps[0]!.reason ?? '', /waiting for leases on/);
    const runs = await Promise.all(ids.map((id) => waitForRun(t.gateway, id, 60_000)));
    for (const r of runs) assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const docsRun = await waitForRun(t.gateway, docs, 60_000);
    assert.equal(docsRun.status, 'succeeded');
    // Strict turns: no two of these steps (their leases overlap) ever ran at the same time.
    const spans = runs.map((r) => ({ id: r.id, start: Date.parse(r.steps[0]!.startedAt!), end: Date.parse(r.steps[0]!.finishedAt!) })).sort((a, b) => a.start - b.start);
    for (let i = 1; i < spans.length; i++) assert.ok(spans[i]!.start >= spans[i - 1]!.end, `${spans[i]!.id} started before ${spans[i - 1]!.id} ended`);
    // The docs step overlapped nobody, so it did not wait behind the chain.
    const docsStart = Date.parse(docsRun.steps[0]!.startedAt!);
    const lastStart = Math.max(...runs.map((r) => Date.parse(r.steps[0]!.startedAt!)));
    assert.ok(docsStart < lastStart, 'the docs step waited for unrelated leases');
    const after = (await http<{ holders: unknown[]; waiters: unknown[] }>(t.gateway, 'GET', '/v1/leases')).body;
    assert.deepEqual(after, { holders: [], waiters: [] }, 'every lease was given back');
  });

  test('bad concurrency and sub-workflow fields are refused at registration with the field named', async () => {
    const res = await http(
      t.gateway,
      'POST',
      '/v1/workflows',
      ['name: bad-comp', 'concurrency: { key: "input.x ==", limit: 1 }', 'steps:', '  - id: a', '    workflow: { name: x }', '    prompt: hi'].join('\n'),
      YAML,
    );
    assert.equal(res.status, 400);
    const issues = (res.body as { error: { details: { issues: Array<{ path: string }> } } }).error.details.issues.map((i) => i.path);
    assert.ok(issues.includes('steps.0.prompt'), issues.join());
  });
});
