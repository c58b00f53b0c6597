/**
 * Remote agents end to end: `muse agent` processes (the built CLI) connect to
 * the gateway's `/v1/agents/connect` with `agent` keys and run the steps of a
 * role no local worker serves; their progress reaches `/v1/stream`, they are
 * listed by `GET /v1/agents`; a SIGKILLed agent's step is re-queued after the
 * grace period and finished by another agent; an agent of another project
 * never gets this project's steps; a dropped connection that comes back in
 * time resumes its assignment; agent keys get nothing else.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { REPO_ROOT } from '@muse/cluster';
import type { RunView } from '@muse/contracts';
import { bearer, http, startTestCluster, StreamRecorder, waitForEvent, waitForRun, type TestCluster } from '../support/harness.js';

const CLI = join(REPO_ROOT, 'apps/cli/dist/main.js');
/** Short, so the disconnect test does not wait long; the default is 10 s. */
const GRACE_MS = 3_000;
const ROLE = 'reviewer';

interface AgentProcess {
  child: ChildProcess;
  agentId: string;
  /** Everything it wrote to stderr (its log). */
  log: () => string;
}

describe('remote agents over WebSocket', { timeout: 360_000 }, () => {
  let t: TestCluster;
  const keys: Record<string, string> = {};
  const agents: AgentProcess[] = [];

  async function createKey(name: string, projects: string[], scopes: string[]): Promise<string> {
    const res = await http<{ key: string }>(t.gateway, 'POST', '/v1/api-keys', { name, projects, scopes });
    assert.equal(res.status, 201, res.text);
    return res.body.key;
  }

  /** Starts `muse agent --role reviewer -- sh -c <script>` and waits for its welcome. */
  async function startAgent(key: string, name: string, script: string, extra: string[] = []): Promise<AgentProcess> {
    const child = spawn(process.execPath, [CLI, '--gateway', t.gateway, '--api-key', key, 'agent', '--role', ROLE, '--name', name, '--capability', 'sh', ...extra, '--', 'sh', '-c', script], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, MUSE_API_KEY: '' },
    });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const deadline = Date.now() + 30_000;
    let m: RegExpMatchArray | null = null;
    while (!(m = /connected as (\S+)/.exec(stderr))) {
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`agent ${name} did not connect: ${stderr}`);
      await sleep(50);
    }
    const a = { child, agentId: m[1]!, log: () => stderr };
    agents.push(a);
    return a;
  }

  async function stopAgent(a: AgentProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (a.child.exitCode !== null || a.child.signalCode !== null) return;
    const exited = new Promise((r) => a.child.once('exit', r));
    a.child.kill(signal);
    await exited;
  }

  async function submit(definition: unknown, headers: Record<string, string>, input: Record<string, unknown> = {}): Promise<string> {
    const res = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition, input }, headers);
    assert.equal(res.status, 202, res.text);
    return res.body.id;
  }

  before(async () => {
    // No local worker serves `reviewer`: only remote agents run its steps.
    t = await startTestCluster({
      serviceEnv: { 'agent-worker': { MUSE_AGENT_ROLES: 'orchestrator,optimizer,executor' }, gateway: { MUSE_REMOTE_AGENT_GRACE_MS: String(GRACE_MS) } },
    });
    assert.equal((await http(t.gateway, 'POST', '/v1/projects', { name: 'team-b' })).status, 201);
    // Project A is the default project (so the harness's run helpers, with the bootstrap key, see its runs).
    keys.agentA = await createKey('agent-a', ['default'], ['agent']);
    keys.agentB = await createKey('agent-b', ['team-b'], ['agent']);
    keys.writerA = await createKey('writer-a', ['default'], ['write']);
    keys.writerB = await createKey('writer-b', ['team-b'], ['write']);
    keys.readerA = await createKey('reader-a', ['default'], ['read']);
  });

  after(async () => {
    for (const a of agents) await stopAgent(a, 'SIGKILL').catch(() => undefined);
    await t?.stop();
  });

  test('an agent key gets 403 on REST; a read key (and no key) is refused at /v1/agents/connect', async () => {
    for (const [method, path] of [['GET', '/v1/runs'], ['GET', '/v1/agents'], ['POST', '/v1/runs'], ['GET', '/v1/workflows']] as const) {
      const res = await http(t.gateway, method, path, method === 'POST' ? { definition: { name: 'x', steps: [{ id: 'a', agent: ROLE, prompt: 'p' }] } } : undefined, bearer(keys.agentA!));
      assert.equal(res.status, 403, `${method} ${path}: ${res.text}`);
      assert.equal((res.body as { error: { code: string } }).error.code, 'MUSE_ERR_AUTH_FORBIDDEN');
    }
    assert.deepEqual(await handshake(keys.readerA), { status: 403, code: 'MUSE_ERR_AUTH_FORBIDDEN' });
    assert.deepEqual(await handshake(keys.writerA), { status: 403, code: 'MUSE_ERR_AUTH_FORBIDDEN' });
    assert.deepEqual(await handshake(undefined), { status: 401, code: 'MUSE_ERR_AUTH_REQUIRED' });
    assert.deepEqual(await handshake(keys.agentA, 'team-b'), { status: 404, code: 'MUSE_ERR_PROJECT_NOT_FOUND' });
    // The CLI gives up on a refused credential with a non-zero exit.
    const refused = spawn(process.execPath, [CLI, '--gateway', t.gateway, '--api-key', keys.readerA!, 'agent', '--role', ROLE, '--', 'cat'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    refused.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    const code = await new Promise<number | null>((r) => refused.once('exit', r));
    assert.equal(code, 1, err);
    assert.match(err, /HTTP 403/);
  });

  test('remote agents complete the steps of their project, stream progress, are listed, and never get another project\'s steps', async () => {
    // The prompt comes on stdin, the context in the environment; a first line of output, then the answer.
    const script = 'p=$(cat); sleep 0.5; echo "working on $MUSE_STEP_ID"; sleep 0.3; echo "reviewed [$p] as $MUSE_ROLE attempt $MUSE_ATTEMPT of $MUSE_RUN_ID"';
    const b = await startAgent(keys.agentB!, 'laptop-b', 'p=$(cat); echo "B did [$p]"');
    const definition = {
      name: 'remote-review',
      steps: [
        { id: 'first', agent: ROLE, prompt: 'look at {{ input.repo }}' },
        { id: 'second', agent: ROLE, needs: ['first'], prompt: 'again: {{ steps.first.output.text }}' },
        { id: 'third', agent: ROLE, needs: ['first'], prompt: 'third look' },
      ],
      output: '{{ steps.second.output.text }}',
    };
    const runId = await submit(definition, bearer(keys.writerA!), { repo: 'muse' });
    const stream = await StreamRecorder.open(t.gateway, { apiKey: keys.writerA! });
    stream.send({ op: 'subscribe', runId });
    // Only project B's agent serves the role now: the step waits in the queue (B puts it back each time it takes it).
    await sleep(2_000);
    const waiting = await http<RunView>(t.gateway, 'GET', `/v1/runs/${runId}`);
    assert.equal(waiting.body.steps.find((s) => s.id === 'first')?.status, 'queued', waiting.text);
    assert.ok(!stream.events.some((e) => e.type === 'step.started'), 'no agent started a step of project A');
    assert.doesNotMatch(b.log(), /step run_/, b.log());

    const a = await startAgent(keys.agentA!, 'laptop-a', script, ['--concurrency', '2']);
    const listed = await http<{ items: Array<{ agentId: string; roles: string[]; remote?: boolean; host: string; capabilities?: string[]; concurrency: number }> }>(t.gateway, 'GET', '/v1/agents');
    const view = listed.body.items.find((i) => i.agentId === a.agentId);
    assert.ok(view, `GET /v1/agents lists the remote agent: ${listed.text}`);
    assert.deepEqual([view.roles, view.remote, view.host, view.capabilities, view.concurrency], [[ROLE], true, 'laptop-a', ['sh'], 2]);
    assert.ok(listed.body.items.some((i) => i.agentId === b.agentId && i.remote === true));

    const run = await waitForRun(t.gateway, runId, 90_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    for (const s of run.steps) {
      assert.equal(s.agent, a.agentId, `step ${s.id} was run by the remote agent of its project`);
      assert.equal(s.attempts, 1);
    }
    const first = run.steps.find((s) => s.id === 'first')!;
    assert.match((first.output as { text: string }).text, new RegExp(`working on first\\nreviewed \\[look at muse\\] as reviewer attempt 1 of ${runId}`));
    assert.match(String(run.output), /reviewed \[again: working on first/);

    // Its stdout reached a /v1/stream subscriber as live progress while the step ran.
    await stream.until((r) => r.messages.some((m) => m.type === 'progress' && (m as any).progress.stepId === 'first' && /working on first/.test((m as any).progress.text)));
    stream.close();

    // The output is an artifact produced by the remote agent.
    const arts = await http<{ items: Array<{ stepId: string; name: string; producer: { agentId: string; tool?: string } }> }>(t.gateway, 'GET', `/v1/runs/${runId}/artifacts`);
    const art = arts.body.items.find((x) => x.stepId === 'first');
    assert.deepEqual([art?.name, art?.producer.agentId, art?.producer.tool], ['response.md', a.agentId, 'remote-agent']);

    // The other project's agent stayed connected for the same role all along and was never handed one of these steps...
    assert.doesNotMatch(b.log(), /step run_/, b.log());
    // ...and does get its own project's.
    const runB = await submit({ name: 'b-review', steps: [{ id: 'only', agent: ROLE, prompt: 'team b work' }] }, bearer(keys.writerB!));
    let viewB: RunView | undefined;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const res = await http<RunView>(t.gateway, 'GET', `/v1/runs/${runB}`, undefined, bearer(keys.writerB!));
      if (res.status === 200 && ['succeeded', 'failed'].includes(res.body.status)) {
        viewB = res.body;
        break;
      }
      await sleep(100);
    }
    assert.equal(viewB?.status, 'succeeded', JSON.stringify(viewB));
    assert.equal(viewB.steps[0]!.agent, b.agentId);
    assert.equal((viewB.steps[0]!.output as { text: string }).text, 'B did [team b work]\n');
    assert.doesNotMatch(a.log(), new RegExp(runB), 'agent A never got the step of project B');

    await stopAgent(a);
    await stopAgent(b);
  });

  test('a SIGKILLed agent\'s step is re-queued after the grace period and finished by another agent', async () => {
    const slow = await startAgent(keys.agentA!, 'doomed', 'cat >/dev/null; echo started; sleep 30; echo never');
    const runId = await submit({ name: 'remote-crash', steps: [{ id: 'review', agent: ROLE, prompt: 'slow work' }] }, bearer(keys.writerA!));
    await waitForEvent(t.gateway, runId, (ev) => ev.type === 'step.started' && (ev.data as { agentId: string }).agentId === slow.agentId, 30_000);
    await sleep(300);
    const killedAt = Date.now();
    await stopAgent(slow, 'SIGKILL');

    const failed = await waitForEvent(t.gateway, runId, (ev) => ev.type === 'step.failed', GRACE_MS + 20_000);
    const error = (failed.data as { error: { code: string; retryable: boolean } }).error;
    assert.deepEqual([error.code, error.retryable], ['MUSE_ERR_AGENT_DISCONNECTED', true]);
    assert.ok(Date.now() - killedAt >= GRACE_MS - 200, 'the step was held for the grace period first');
    await waitForEvent(t.gateway, runId, (ev) => ev.type === 'step.queued' && (ev.data as { attempt: number }).attempt === 2, 20_000);

    const rescuer = await startAgent(keys.agentA!, 'rescuer', 'p=$(cat); echo "rescued [$p] attempt $MUSE_ATTEMPT"');
    const run = await waitForRun(t.gateway, runId, 90_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    const step = run.steps[0]!;
    assert.deepEqual([step.attempts, step.agent], [2, rescuer.agentId]);
    assert.equal((step.output as { text: string }).text, 'rescued [slow work] attempt 2\n');
    await stopAgent(rescuer);
  });

  test('an agent that reconnects within the grace period (same agentId) gets its assignment back and finishes it', async () => {
    const agentId = `resume-${Date.now()}`;
    const first = await rawAgent(keys.agentA!, agentId);
    const runId = await submit({ name: 'remote-resume', steps: [{ id: 'review', agent: ROLE, prompt: 'resume me' }] }, bearer(keys.writerA!));
    const assign = await first.next('assign');
    assert.equal(assign.job.runId, runId);
    assert.equal(assign.job.prompt, 'resume me');
    first.ws.terminate();

    await sleep(500);
    const second = await rawAgent(keys.agentA!, agentId);
    assert.deepEqual(second.welcome.resumed, [assign.assignmentId]);
    const again = await second.next('assign');
    assert.equal(again.assignmentId, assign.assignmentId);
    second.ws.send(JSON.stringify({ type: 'progress', assignmentId: again.assignmentId, text: 'half way' }));
    second.ws.send(JSON.stringify({ type: 'complete', assignmentId: again.assignmentId, output: { text: 'resumed and done', usage: { inputTokens: 3, outputTokens: 4 } } }));
    assert.equal((await second.next('ack')).assignmentId, assign.assignmentId);
    const run = await waitForRun(t.gateway, runId, 30_000);
    assert.equal(run.status, 'succeeded', JSON.stringify(run));
    assert.deepEqual([run.steps[0]!.attempts, run.steps[0]!.agent], [1, agentId]);
    assert.deepEqual(run.steps[0]!.output, { text: 'resumed and done', model: 'muse-local', usage: { inputTokens: 3, outputTokens: 4 } });

    // Another key cannot take over that agent id.
    const stranger = new WebSocket(`${t.gateway.replace(/^http/, 'ws')}/v1/agents/connect`, { headers: bearer(await createKey('agent-a2', ['default'], ['agent'])) });
    await new Promise((r) => stranger.once('open', r));
    stranger.send(JSON.stringify({ type: 'hello', agentId, name: 'stranger', roles: [ROLE] }));
    const [code] = await new Promise<[number]>((r) => stranger.once('close', (c) => r([c])));
    assert.equal(code, 1008);
    second.ws.close();
  });

  test("a failing agent's usage counts in the run's spend; a `fail` with a malformed usage is refused", async () => {
    const raw = await rawAgent(keys.agentA!, `spender-${Date.now()}`);
    const runId = await submit({ name: 'remote-spend', steps: [{ id: 'review', agent: ROLE, prompt: 'spend then fail', maxAttempts: 1 }] }, bearer(keys.writerA!));
    const assign = await raw.next('assign');
    raw.ws.send(JSON.stringify({ type: 'fail', assignmentId: assign.assignmentId, usage: { inputTokens: -1, outputTokens: 2 }, error: { message: 'x' } }));
    assert.equal((await raw.next('error')).error.code, 'MUSE_ERR_REQUEST_INVALID');
    raw.ws.send(JSON.stringify({ type: 'fail', assignmentId: assign.assignmentId, usage: { inputTokens: 120, outputTokens: 30 }, error: { message: 'the model gave up' } }));
    assert.equal((await raw.next('ack')).assignmentId, assign.assignmentId);
    const run = await waitForRun(t.gateway, runId, 30_000);
    assert.equal(run.status, 'failed', JSON.stringify(run));
    assert.equal(run.steps[0]!.error?.code, 'MUSE_ERR_AGENT_FAILED');
    assert.equal(run.spend?.tokens, 150);
    assert.deepEqual(run.spend?.byStep, { review: { tokens: 150, cost: 0 } });
    raw.ws.close();
  });

  test('the gateway holds a remote step to its timeout, and passes a run\'s cancel on to the agent', async () => {
    const raw = await rawAgent(keys.agentA!, `slowpoke-${Date.now()}`);
    const late = await submit({ name: 'remote-timeout', steps: [{ id: 'review', agent: ROLE, prompt: 'never answered', timeoutMs: 1500, maxAttempts: 1 }] }, bearer(keys.writerA!));
    const assign = await raw.next('assign');
    assert.equal(assign.job.timeoutMs, 1500);
    assert.equal((await raw.next('cancel', 10_000)).assignmentId, assign.assignmentId);
    const timedOut = await waitForRun(t.gateway, late, 30_000);
    assert.equal(timedOut.status, 'failed');
    assert.equal(timedOut.steps[0]!.error?.code, 'MUSE_ERR_STEP_TIMEOUT');
    // An answer after the cancel is refused, not applied.
    raw.ws.send(JSON.stringify({ type: 'complete', assignmentId: assign.assignmentId, output: { text: 'too late' } }));
    assert.equal((await raw.next('error')).error.code, 'MUSE_ERR_REQUEST_INVALID');

    const cancelled = await submit({ name: 'remote-cancel', steps: [{ id: 'review', agent: ROLE, prompt: 'cancel me' }] }, bearer(keys.writerA!));
    const second = await raw.next('assign');
    assert.equal(second.job.runId, cancelled);
    assert.equal((await http(t.gateway, 'POST', `/v1/runs/${cancelled}/cancel`, { reason: 'changed my mind' }, bearer(keys.writerA!))).status, 202);
    const cancel = await raw.next('cancel', 15_000);
    assert.equal(cancel.assignmentId, second.assignmentId);
    assert.equal((await waitForRun(t.gateway, cancelled, 30_000)).status, 'cancelled');
    raw.ws.close();
  });

  /** Status and error code of a refused `/v1/agents/connect` handshake. */
  async function handshake(key: string | undefined, project?: string): Promise<{ status: number; code: string } | 'open'> {
    const ws = new WebSocket(`${t.gateway.replace(/^http/, 'ws')}/v1/agents/connect`, { headers: { ...(key ? bearer(key) : {}), ...(project ? { 'muse-project': project } : {}) } });
    return new Promise((resolve) => {
      ws.once('open', () => {
        ws.close();
        resolve('open');
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(body) as { error: { code: string } }).error.code }));
      });
      ws.once('error', () => undefined);
    });
  }

  /** A bare protocol client: connects, says hello, and hands out the server's messages by type. */
  async function rawAgent(key: string, agentId: string) {
    const ws = new WebSocket(`${t.gateway.replace(/^http/, 'ws')}/v1/agents/connect`, { headers: bearer(key) });
    const inbox: any[] = [];
    const waiters: Array<() => void> = [];
    ws.on('message', (d) => {
      inbox.push(JSON.parse(String(d)));
      for (const w of waiters.splice(0)) w();
    });
    await new Promise((r, j) => {
      ws.once('open', r);
      ws.once('error', j);
    });
    ws.send(JSON.stringify({ type: 'hello', agentId, name: 'raw', roles: [ROLE], concurrency: 1 }));
    const next = async (type: string, timeoutMs = 20_000): Promise<any> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const i = inbox.findIndex((m) => m.type === type);
        if (i >= 0) return inbox.splice(i, 1)[0];
        if (Date.now() > deadline) throw new Error(`no ${type} message; got ${JSON.stringify(inbox)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 200);
        });
      }
    };
    const welcome = await next('welcome');
    assert.equal(welcome.agentId, agentId);
    return { ws, welcome, next };
  }
});

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
