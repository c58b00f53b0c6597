/**
 * Durable workflow semantics end to end, on two coordinator replicas: retries
 * with a durable backoff, when/skip and needs.any, continueOnFailure, forEach
 * with a concurrency cap, Saga compensation, the run timeout, and precise 400s
 * for bad definitions.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunEvent, RunView } from '@muse/contracts';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const YAML = { 'content-type': 'application/yaml' };

describe('durable semantics end to end', { timeout: 240_000 }, () => {
  let t: TestCluster;

  before(async () => {
    t = await startTestCluster({
      workers: 2,
      coordinators: 2,
      env: { MUSE_JOB_LOCK_MS: '2000', MUSE_HEARTBEAT_MS: '500', MUSE_STEP_WATCH_MS: '1000' },
    });
  });

  after(async () => {
    await t?.stop();
  });

  async function register(yaml: string): Promise<void> {
    const res = await http(t.gateway, 'POST', '/v1/workflows', yaml, YAML);
    assert.ok(res.status === 201 || res.status === 200, res.text);
  }
  async function run(workflow: string, input: Record<string, unknown> = {}): Promise<{ run: RunView; events: RunEvent[] }> {
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow, input });
    assert.equal(sub.status, 202, sub.text);
    const done = await waitForRun(t.gateway, sub.body.id, 90_000);
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${done.id}/events`)).body.items;
    return { run: done, events };
  }
  const stepOf = (r: RunView, id: string) => r.steps.find((s) => s.id === id)!;
  async function until(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      assert.ok(Date.now() < deadline, 'condition not reached in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('a failing attempt is retried after its backoff (a delayed job), then the run goes on', async () => {
    await register([
      'name: flaky',
      'steps:',
      '  - id: flaky',
      '    tool: shell',
      '    command: "test -f ok || { touch ok; echo first >&2; exit 3; }; echo second"',
      '    retry: { maxAttempts: 3, backoff: { initialMs: 1500, factor: 2 } }',
    ].join('\n'));
    const { run: r, events } = await run('flaky');
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.equal(stepOf(r, 'flaky').attempts, 2);
    const failed = events.find((e) => e.type === 'step.failed')!;
    const queued2 = events.find((e) => e.type === 'step.queued' && e.data.attempt === 2);
    // (with two replicas a `started` report may be folded after the completion, and then is stale: use the completion)
    const done2 = events.find((e) => e.type === 'step.completed' && e.data.attempt === 2)!;
    assert.equal(queued2?.type === 'step.queued' && queued2.data.delayMs, 1500);
    const waited = Date.parse(done2.at) - Date.parse(failed.at);
    assert.ok(waited >= 1400, `attempt 2 finished ${waited} ms after attempt 1 failed`);
  });

  test('when, skip propagation, needs.any, continueOnFailure and forEach in one run', async () => {
    await register([
      'name: branchy',
      'steps:',
      '  - id: list',
      '    tool: shell',
      '    command: "printf a,b,c,d,e,f"',
      '  - id: deploy',
      '    tool: shell',
      '    command: "echo deploying"',
      '    needs: [list]',
      '    when: input.env == "prod"',
      '  - id: announce',
      '    tool: shell',
      '    command: "echo announced"',
      '    needs: [deploy]',
      '  - id: wrapup',
      '    tool: shell',
      '    command: "echo wrapped"',
      '    needs: { any: [deploy] }',
      '  - id: lint',
      '    tool: shell',
      '    command: "exit 1"',
      '    needs: [list]',
      '    continueOnFailure: true',
      '    retry: { maxAttempts: 1 }',
      '  - id: each',
      '    tool: shell',
      '    command: "echo {{ index }}-{{ item }}; echo $MUSE_STEP_ID >> each.log; sleep 0.2"',
      '    needs: [list]',
      '    forEach: steps.list.output.stdout.split(",")',
      '    concurrency: 2',
      '  - id: join',
      '    tool: shell',
      '    command: "echo {{ steps.each.output }}"',
      '    needs: [each, lint, wrapup]',
    ].join('\n'));
    const { run: r, events } = await run('branchy', { env: 'dev' });
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    assert.deepEqual(['deploy', 'announce', 'wrapup', 'lint'].map((id) => stepOf(r, id).status), ['skipped', 'skipped', 'succeeded', 'failed']);
    const skip = events.find((e) => e.type === 'step.skipped' && e.data.stepId === 'deploy');
    assert.match(skip?.type === 'step.skipped' ? skip.data.reason : '', /when is false/);
    const each = stepOf(r, 'each').output as Array<{ stdout: string }>;
    assert.deepEqual(each.map((o) => o.stdout.trim()), ['0-a', '1-b', '2-c', '3-d', '4-e', '5-f']);
    // never more than 2 elements open at once
    let open = 0;
    let peak = 0;
    for (const e of events) {
      if (e.type === 'step.queued' && e.data.index !== undefined) peak = Math.max(peak, ++open);
      if ((e.type === 'step.completed' || e.type === 'step.failed') && e.data.index !== undefined) open--;
    }
    assert.equal(peak, 2);
    const jobIds = events.filter((e) => e.type === 'step.queued' && e.data.stepId === 'each').map((e) => (e.type === 'step.queued' ? e.data.jobId : ''));
    assert.deepEqual(jobIds, [0, 1, 2, 3, 4, 5].map((i) => `${r.id}.each#${i}.1`));
    const ledger = readFileSync(join(t.dataDir, 'workspaces', r.id, 'each.log'), 'utf8').trim().split('\n');
    assert.equal(ledger.length, 6);
  });

  test('a failed run compensates its succeeded steps in reverse completion order, with each outcome visible', async () => {
    await register([
      'name: saga',
      'steps:',
      '  - id: reserve',
      '    tool: shell',
      '    command: "echo reserve >> saga.log; printf R1"',
      '    compensate: { tool: shell, command: "echo undo-reserve-{{ steps.reserve.output.stdout }} >> saga.log" }',
      '  - id: charge',
      '    tool: shell',
      '    command: "echo charge >> saga.log"',
      '    needs: [reserve]',
      '    compensate: { tool: shell, command: "echo undo-charge >> saga.log" }',
      '  - id: ship',
      '    tool: shell',
      '    command: "exit 7"',
      '    needs: [charge]',
      '    retry: { maxAttempts: 2, backoff: { initialMs: 100 } }',
    ].join('\n'));
    const { run: r, events } = await run('saga');
    assert.equal(r.status, 'failed');
    assert.equal(r.error?.code, 'MUSE_ERR_STEP_EXIT_NONZERO');
    const details = r.error?.details as { stepId: string; compensations: Array<{ stepId: string; status: string }> };
    assert.equal(details.stepId, 'ship');
    assert.deepEqual(details.compensations.map((c) => [c.stepId, c.status]), [['charge', 'succeeded'], ['reserve', 'succeeded']]);
    assert.deepEqual(r.steps.map((s) => [s.id, s.status]), [['reserve', 'succeeded'], ['charge', 'succeeded'], ['ship', 'failed'], ['charge~undo', 'succeeded'], ['reserve~undo', 'succeeded']]);
    assert.ok(events.some((e) => e.type === 'run.compensating'));
    const log = readFileSync(join(t.dataDir, 'workspaces', r.id, 'saga.log'), 'utf8').trim().split('\n');
    assert.deepEqual(log, ['reserve', 'charge', 'undo-charge', 'undo-reserve-R1']);
  });

  test('a run past its timeoutMs fails with MUSE_ERR_RUN_TIMEOUT (a durable timer)', async () => {
    await register(['name: slow-run', 'timeoutMs: 1500', 'steps:', '  - id: nap', '    tool: shell', '    command: "sleep 20"'].join('\n'));
    const t0 = Date.now();
    const { run: r } = await run('slow-run');
    assert.equal(r.status, 'failed');
    assert.equal(r.error?.code, 'MUSE_ERR_RUN_TIMEOUT');
    assert.ok(Date.now() - t0 < 15_000);
  });

  test('an approval gate holds the run waiting until a person decides; who and when are in the events', async () => {
    await register(['name: gated', 'steps:', '  - id: build', '    tool: shell', '    command: "echo built"', '  - id: gate', '    type: approval', '    needs: [build]', '  - id: ship', '    tool: shell', '    command: "echo shipped"', '    needs: [gate]'].join('\n'));
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'gated', input: {} });
    const id: string = sub.body.id;
    await until(async () => (await http<RunView>(t.gateway, 'GET', `/v1/runs/${id}`)).body.status === 'waiting');
    const early = await http(t.gateway, 'POST', `/v1/runs/${id}/approvals/ship`, { decision: 'approve' });
    assert.equal(early.status, 409);
    assert.equal(early.body.error.code, 'MUSE_ERR_STEP_NOT_WAITING');
    const bad = await http(t.gateway, 'POST', `/v1/runs/${id}/approvals/gate`, { decision: 'maybe' });
    assert.equal(bad.status, 400);
    const ok = await http(t.gateway, 'POST', `/v1/runs/${id}/approvals/gate`, { decision: 'approve', comment: 'ship it' });
    assert.equal(ok.status, 202, ok.text);
    const done = await waitForRun(t.gateway, id, 30_000);
    assert.equal(done.status, 'succeeded');
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${id}/events`)).body.items;
    const decided = events.find((e) => e.type === 'step.completed' && e.data.stepId === 'gate');
    const out = decided?.type === 'step.completed' ? (decided.data.output as { decision: string; by: string; at: string; comment: string }) : undefined;
    assert.equal(out?.decision, 'approve');
    assert.equal(out?.comment, 'ship it');
    assert.match(out?.by ?? '', /^key:/);
    assert.ok(Date.parse(out?.at ?? '') > 0);
    assert.ok(events.some((e) => e.type === 'step.waiting' && e.data.stepId === 'gate'));
  });

  test('an approval gate decides by itself after its timeoutMs (onTimeout), by a durable timer', async () => {
    await register(['name: gated-timeout', 'steps:', '  - id: gate', '    type: approval', '    timeoutMs: 800', '    onTimeout: reject'].join('\n'));
    const { run: r } = await run('gated-timeout');
    assert.equal(r.status, 'failed');
    assert.equal(r.error?.code, 'MUSE_ERR_APPROVAL_REJECTED');
    assert.match(r.error?.message ?? '', /rejected by timeout/);
  });

  test('pause holds new steps and shows the run waiting; resume lets it finish', async () => {
    await register(['name: pausable', 'steps:', '  - id: a', '    tool: shell', '    command: "sleep 1; echo a"', '  - id: b', '    tool: shell', '    command: "echo b"', '    needs: [a]'].join('\n'));
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'pausable', input: {} });
    const id: string = sub.body.id;
    assert.equal((await http(t.gateway, 'POST', `/v1/runs/${id}/pause`, { reason: 'hold on' })).status, 202);
    await until(async () => {
      const v = (await http<RunView>(t.gateway, 'GET', `/v1/runs/${id}`)).body;
      return v.status === 'waiting' && v.steps[0]!.status === 'succeeded';
    });
    await new Promise((r) => setTimeout(r, 1000));
    const held = (await http<RunView>(t.gateway, 'GET', `/v1/runs/${id}`)).body;
    assert.deepEqual([held.status, held.steps[1]!.status], ['waiting', 'pending']);
    assert.equal((await http(t.gateway, 'POST', `/v1/runs/${id}/resume`, {})).status, 202);
    assert.equal((await waitForRun(t.gateway, id, 30_000)).status, 'succeeded');
    const finished = await http(t.gateway, 'POST', `/v1/runs/${id}/pause`, {});
    assert.equal(finished.body.error.code, 'MUSE_ERR_RUN_TERMINAL');
  });

  test('retry re-drives a failed run from its failed step, dead letters list it until then, rerun starts a linked run: no paid step runs again', async () => {
    await register([
      'name: redrive',
      'steps:',
      '  - id: paid',
      '    tool: shell',
      '    command: "echo paid >> paid.log; echo P"',
      '  - id: fragile',
      '    tool: shell',
      '    command: "test -f fixed && echo fixed"',
      '    needs: [paid]',
      '    retry: { maxAttempts: 1 }',
      '  - id: after',
      '    tool: shell',
      '    command: "echo after {{ steps.paid.output.stdout }}"',
      '    needs: [fragile]',
    ].join('\n'));
    const first = await run('redrive');
    assert.equal(first.run.status, 'failed');
    const notYet = await http(t.gateway, 'POST', `/v1/runs/${first.run.id}/resume`, {});
    assert.equal(notYet.status, 409);
    // The failed step is a dead letter, with its last error, until the run is re-driven.
    const dead = (await http<{ items: Array<{ runId: string; stepId: string; attempts: number; error: { code: string } }> }>(t.gateway, 'GET', '/v1/dead-letters')).body.items;
    const mine = dead.filter((d) => d.runId === first.run.id);
    assert.deepEqual(mine.map((d) => [d.stepId, d.attempts, d.error.code]), [['fragile', 1, 'MUSE_ERR_STEP_EXIT_NONZERO']]);
    writeFileSync(join(t.dataDir, 'workspaces', first.run.id, 'fixed'), '');
    assert.equal((await http(t.gateway, 'POST', `/v1/runs/${first.run.id}/retry`, {})).status, 202);
    await until(async () => (await http<RunView>(t.gateway, 'GET', `/v1/runs/${first.run.id}`)).body.status !== 'failed');
    const done = await waitForRun(t.gateway, first.run.id, 30_000);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.deepEqual(done.steps.map((s) => [s.id, s.attempts]), [['paid', 1], ['fragile', 2], ['after', 1]]);
    assert.equal(readFileSync(join(t.dataDir, 'workspaces', done.id, 'paid.log'), 'utf8'), 'paid\n');
    const after = (await http<{ items: Array<{ runId: string }> }>(t.gateway, 'GET', '/v1/dead-letters')).body.items;
    assert.equal(after.filter((d) => d.runId === done.id).length, 0, 're-driven: no longer a dead letter');
    const again = await http(t.gateway, 'POST', `/v1/runs/${done.id}/retry`, {});
    assert.equal(again.body.error.code, 'MUSE_ERR_RUN_NOT_RETRYABLE');

    // rerun from `after`: a new linked run that reuses paid's and fragile's outputs
    const badStep = await http(t.gateway, 'POST', `/v1/runs/${done.id}/rerun`, { fromStep: 'nope' });
    assert.equal(badStep.status, 400);
    const re = await http(t.gateway, 'POST', `/v1/runs/${done.id}/rerun`, { fromStep: 'after' });
    assert.equal(re.status, 202, re.text);
    assert.notEqual(re.body.id, done.id);
    const second = await waitForRun(t.gateway, re.body.id, 30_000);
    assert.equal(second.status, 'succeeded', JSON.stringify(second.error));
    assert.deepEqual(second.steps.map((s) => [s.id, s.attempts]), [['paid', 0], ['fragile', 0], ['after', 1]]);
    assert.equal((second.steps[2]!.output as { stdout: string }).stdout, 'after P\n');
    const reEvents = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${second.id}/events`)).body.items;
    const created = reEvents[0]!;
    assert.deepEqual(created.type === 'run.created' && created.data.rerunOf, { runId: done.id, fromStep: 'after' });
    assert.deepEqual(reEvents.filter((e) => e.type === 'step.reused').map((e) => (e.type === 'step.reused' ? e.data.stepId : '')), ['paid', 'fragile']);
    assert.equal(existsSync(join(t.dataDir, 'workspaces', second.id, 'paid.log')), false, 'the paid step did not run again');
  });

  test('cancel stops the running step on its worker and, with compensate, undoes the succeeded steps before ending cancelled', async () => {
    await register([
      'name: stoppable',
      'steps:',
      '  - id: a',
      '    tool: shell',
      '    command: "echo a >> trail.log"',
      '    compensate: { tool: shell, command: "echo undo-a >> trail.log" }',
      '  - id: long',
      '    tool: shell',
      '    command: "echo long-start >> trail.log; sleep 4; echo long-end >> trail.log"',
      '    needs: [a]',
    ].join('\n'));
    const sub = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'stoppable', input: {} });
    const id: string = sub.body.id;
    await until(async () => (await http<RunView>(t.gateway, 'GET', `/v1/runs/${id}`)).body.steps[1]!.status === 'running');
    const t0 = Date.now();
    assert.equal((await http(t.gateway, 'POST', `/v1/runs/${id}/cancel`, { reason: 'enough', compensate: true })).status, 202);
    const done = await waitForRun(t.gateway, id, 30_000);
    assert.equal(done.status, 'cancelled');
    assert.ok(Date.now() - t0 < 15_000);
    assert.deepEqual(done.steps.map((x) => [x.id, x.status]), [['a', 'succeeded'], ['long', 'cancelled'], ['a~undo', 'succeeded']]);
    // Past the moment the step would have finished on its own.
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 5_500 - Date.now())));
    const trail = readFileSync(join(t.dataDir, 'workspaces', id, 'trail.log'), 'utf8').trim().split('\n');
    assert.deepEqual(trail, ['a', 'long-start', 'undo-a'], 'the long step was stopped, not left to finish');
  });

  test('a fan-out of 1,000 elements completes, in order', async () => {
    await register(['name: wide', 'steps:', '  - id: each', '    agent: reviewer', '    prompt: "element {{ index }}: {{ item }}"', '    forEach: input.xs', '    concurrency: 50'].join('\n'));
    const t0 = Date.now();
    const { run: r, events } = await run('wide', { xs: Array.from({ length: 1000 }, (_, i) => `x${i}`) });
    const ms = Date.now() - t0;
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const out = r.steps[0]!.output as Array<{ text: string }>;
    assert.equal(out.length, 1000);
    assert.ok(out.every((o, i) => o.text.endsWith(`(re: element ${i}: x${i})`)), 'outputs in input order');
    console.log(`fan-out of 1000: ${events.length} events, ${ms} ms`);
  });

  test('a run whose output is larger than one run-log message succeeds: run.completed carries its size, the view the output', async () => {
    // Five elements of 250 kB each (under the shell's 256 KiB cap): every step's event fits in a message of NATS's
    // default 1 MiB, the run's output does not.
    await register(['name: bulky', 'steps:', '  - id: each', '    tool: shell', `    command: "head -c 250000 /dev/zero | tr '\\\\0' {{ item }}"`, '    forEach: input.xs'].join('\n'));
    const xs = ['a', 'b', 'c', 'd', 'e'];
    const { run: r, events } = await run('bulky', { xs });
    assert.equal(r.status, 'succeeded', JSON.stringify(r.error));
    const out = r.output as { each: Array<{ stdout: string; truncated?: boolean }> };
    assert.deepEqual(out.each.map((o) => [o.stdout.length, o.stdout[0], o.stdout.at(-1), o.truncated]), xs.map((x) => [250_000, x, x, undefined]));
    const done = events.at(-1)!;
    assert.ok(done.type === 'run.completed', done.type);
    assert.equal(done.data.output, undefined);
    assert.ok(done.data.outputBytes! > 1_250_000, String(done.data.outputBytes));
  });

  test('a sub-workflow whose output, or whose input, is larger than a message ends its step with a clear error instead of stalling', async () => {
    // The child's output (5 x 250 kB) is too large to report to the parent's step.
    await register(['name: bulky', 'steps:', '  - id: each', '    tool: shell', `    command: "head -c 250000 /dev/zero | tr '\\\\0' {{ item }}"`, '    forEach: input.xs'].join('\n'));
    await register(['name: bulky-parent', 'steps:', '  - id: child', '    workflow: { name: bulky }', '    input: { xs: "{{ input.xs }}" }'].join('\n'));
    const { run: up } = await run('bulky-parent', { xs: ['a', 'b', 'c', 'd', 'e'] });
    assert.equal(up.status, 'failed');
    const child = stepOf(up, 'child');
    assert.equal(child.error?.code, 'MUSE_ERR_STEP_OUTPUT_TOO_LARGE', JSON.stringify(child.error));
    assert.equal(child.attempts, 1);
    assert.equal((await http<{ status: string }>(t.gateway, 'GET', `/v1/runs/${child.childRunId}`)).body.status, 'succeeded', 'the child itself succeeded');
    // The parent's steps make an input too large to submit the child with.
    await register(['name: echo-child', 'steps:', '  - id: e', '    tool: shell', '    command: "echo {{ input.n }}"'].join('\n'));
    await register(
      [
        'name: bulky-input',
        'steps:',
        '  - id: each',
        '    tool: shell',
        `    command: "head -c 250000 /dev/zero | tr '\\\\0' {{ item }}"`,
        '    forEach: input.xs',
        '  - id: child',
        '    needs: [each]',
        '    workflow: { name: echo-child }',
        '    input: { n: 1, all: "{{ steps.each.output }}" }',
      ].join('\n'),
    );
    const { run: down } = await run('bulky-input', { xs: ['a', 'b', 'c', 'd', 'e'] });
    assert.equal(down.status, 'failed');
    const sub = stepOf(down, 'child');
    assert.equal(sub.error?.code, 'MUSE_ERR_RUN_INPUT_TOO_LARGE', JSON.stringify(sub.error));
    assert.equal(sub.attempts, 1);
  });

  test('a step whose output is too large to report fails at once, for good, with MUSE_ERR_STEP_OUTPUT_TOO_LARGE', async () => {
    // 256 KiB of \x01 bytes (the shell's cap) are six times as many in JSON, which writes each as \u0001.
    await register(['name: too-bulky', 'steps:', '  - id: big', '    tool: shell', `    command: "head -c 300000 /dev/zero | tr '\\\\0' '\\\\1'"`].join('\n'));
    const { run: r } = await run('too-bulky');
    assert.equal(r.status, 'failed');
    const big = stepOf(r, 'big');
    assert.equal(big.attempts, 1, 'not retried: the output would be as large again');
    assert.equal(big.error?.code, 'MUSE_ERR_STEP_OUTPUT_TOO_LARGE');
    const details = big.error?.details as { bytes: number; limitBytes: number };
    assert.ok(details.bytes > 6 * 262_144 && details.bytes > details.limitBytes, JSON.stringify(details));
  });

  test('bad when, forEach, retry and compensate are refused at registration with a precise 400', async () => {
    const res = await http(t.gateway, 'POST', '/v1/workflows', {
      name: 'bad',
      steps: [
        { id: 'a', tool: 'shell', command: 'x', when: 'input.x &&' },
        { id: 'b', tool: 'shell', command: 'x', forEach: 'input.n > 1' },
      ],
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'MUSE_ERR_WORKFLOW_INVALID');
    assert.deepEqual(res.body.error.details.issues.map((i: { path: string; field: string }) => [i.path, i.field]), [['steps.0.when', 'when'], ['steps.1.forEach', 'forEach']]);
    const retry = await http(t.gateway, 'POST', '/v1/workflows', { name: 'bad', steps: [{ id: 'a', tool: 'shell', command: 'x', retry: { maxAttempts: 0 }, compensate: { prompt: 'p' } }] });
    assert.equal(retry.status, 400);
    assert.deepEqual(retry.body.error.details.issues.map((i: { path: string }) => i.path).sort(), ['steps.0.compensate.agent', 'steps.0.retry.maxAttempts']);
  });
});
