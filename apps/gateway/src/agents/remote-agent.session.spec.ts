import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Processor } from 'bullmq';
import type { Redis } from 'ioredis';
import { WebSocket } from 'ws';
import { museNames, type StepJob, type StepProgress, type StepReport } from '@muse/contracts';
import { RemoteAgentSession, type RemoteAgentIdentity } from './remote-agent.session.js';

/** A WebSocket stand-in that records what the session sends. */
class FakeSocket extends EventEmitter {
  readyState: number = WebSocket.OPEN;
  readonly sent: any[] = [];
  send(text: string): void {
    this.sent.push(JSON.parse(text));
  }
  close(): void {
    this.readyState = WebSocket.CLOSED;
  }
  of(type: string): any[] {
    return this.sent.filter((m) => m.type === type);
  }
}

const JOB: StepJob = { runId: 'run_1', project: 'team-a', stepId: 'review', attempt: 1, role: 'reviewer', kind: 'agent', prompt: 'look', model: 'muse-local', timeoutMs: 60_000 };

function setup(opts: { projects?: RemoteAgentIdentity['projects']; graceMs?: number } = {}) {
  const processors = new Map<string, Processor<StepJob>>();
  const reports: StepReport[] = [];
  const progress: StepProgress[] = [];
  const beats: string[] = [];
  const ended: string[] = [];
  const identity: RemoteAgentIdentity = { agentId: 'agent-1', principal: 'key:abc', projects: opts.projects ?? ['team-a'], name: 'laptop', roles: ['reviewer'], capabilities: [], concurrency: 1, address: '127.0.0.1' };
  const session = new RemoteAgentSession(identity, {
    connection: {} as Redis,
    names: museNames('t'),
    reports: { publish: async (r) => void reports.push(r) },
    artifacts: { upload: async (bytes) => ({ digest: `sha256:${'0'.repeat(64)}`, size: bytes.length }) },
    progress: (p) => void progress.push(p),
    beat: (id) => {
      beats.push(`start ${id.agentId}`);
      return { stop: async () => void beats.push(`stop ${id.agentId}`) };
    },
    graceMs: opts.graceMs ?? 50,
    lockDurationMs: 10_000,
    foreignDelayMs: 500,
    logger: { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined },
    createWorker: (role, processor) => {
      processors.set(role, processor);
      return { on: () => undefined as never, close: async () => undefined };
    },
    onEnd: (id) => void ended.push(id),
  });
  const run = (data: StepJob = JOB, moveToDelayed: (ts: number, token?: string) => Promise<void> = async () => undefined) =>
    processors.get(data.role)!({ id: `${data.runId}.${data.stepId}.${data.attempt}`, data, moveToDelayed } as never, 'lock-token');
  return { session, identity, run, reports, progress, beats, ended, processors };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

test('an assignment goes to the agent; its progress is published and its answer reported as the step output, then acked', async () => {
  const { session, identity, run, reports, progress } = setup();
  const ws = new FakeSocket();
  session.attach(ws as never, identity, 2000);
  assert.deepEqual(ws.of('welcome')[0], { type: 'welcome', agentId: 'agent-1', projects: ['team-a'], heartbeatMs: 2000, graceMs: 50, resumed: [] });
  const done = run();
  await tick();
  const assign = ws.of('assign')[0];
  assert.equal(assign.assignmentId, 'run_1.review.1');
  assert.deepEqual([assign.job.prompt, assign.job.model, assign.job.kind], ['look', 'muse-local', 'agent']);
  assert.deepEqual(reports.map((r) => [r.outcome, r.agentId]), [['started', 'agent-1']]);
  assert.equal(session.progress(assign.assignmentId, 'half'), true);
  assert.deepEqual(progress, [{ project: 'team-a', runId: 'run_1', stepId: 'review', attempt: 1, chunk: 1, text: 'half' }]);
  assert.equal(session.complete(assign.assignmentId, { text: 'LGTM' }), true);
  assert.deepEqual(await done, { outcome: 'completed' });
  const final = reports[1]!;
  assert.equal(final.outcome, 'completed');
  assert.deepEqual(final.output, { text: 'LGTM', model: 'muse-local', usage: { inputTokens: 0, outputTokens: 0 } });
  assert.deepEqual(final.artifacts?.map((a) => [a.name, a.tool, a.toolVersion]), [['response.md', 'remote-agent', 'laptop']]);
  assert.deepEqual(ws.of('ack'), [{ type: 'ack', assignmentId: 'run_1.review.1' }]);
  assert.equal(session.complete(assign.assignmentId, { text: 'again' }), false, 'a second answer is refused');
});

test('a job of a project the key does not cover goes back to the queue untouched (DelayedError), and no report is sent', async () => {
  const { session, identity, run, reports } = setup({ projects: ['team-b'] });
  session.attach(new FakeSocket() as never, identity, 2000);
  let movedTo: [number, string | undefined] | undefined;
  const before = Date.now();
  await assert.rejects(run(JOB, async (ts, token) => void (movedTo = [ts, token])), (err: Error) => err.name === 'DelayedError');
  assert.ok(movedTo && movedTo[0] >= before + 500 && movedTo[1] === 'lock-token');
  assert.deepEqual(reports, []);
});

test('a disconnect holds the assignment for the grace period; a reconnect in time gets it again', async () => {
  const { session, identity, run, reports, beats } = setup({ graceMs: 200 });
  const first = new FakeSocket();
  session.attach(first as never, identity, 2000);
  const done = run();
  await tick();
  session.detach(first as never);
  await tick(50);
  const second = new FakeSocket();
  session.attach(second as never, identity, 2000);
  assert.deepEqual(second.of('welcome')[0].resumed, ['run_1.review.1']);
  assert.equal(second.of('assign')[0].assignmentId, 'run_1.review.1');
  session.fail('run_1.review.1', { message: 'sh exited with 1', code: 'MUSE_ERR_STEP_EXIT_NONZERO' }, { inputTokens: 40, outputTokens: 7 });
  assert.deepEqual(await done, { outcome: 'failed' });
  assert.deepEqual([reports[1]!.error?.code, reports[1]!.error?.retryable], ['MUSE_ERR_STEP_EXIT_NONZERO', true]);
  assert.deepEqual(reports[1]!.spent, { inputTokens: 40, outputTokens: 7 }, "what the agent's calls spent rides on the failed report");
  await tick(250);
  assert.equal(session.finished, false, 'the grace timer was cancelled by the reconnect');
  assert.deepEqual(beats, ['start agent-1'], 'the registry entry lived on through the drop');
  session.attach(new FakeSocket() as never, { ...identity, capabilities: ['git'] }, 2000);
  await tick();
  assert.deepEqual(beats, ['start agent-1', 'stop agent-1', 'start agent-1'], 'a new description replaces the entry');
});

test('past the grace period the assignment fails as MUSE_ERR_AGENT_DISCONNECTED (retryable) and the agent is deregistered', async () => {
  const { session, identity, run, reports, beats, ended } = setup({ graceMs: 30 });
  const ws = new FakeSocket();
  session.attach(ws as never, identity, 2000);
  const done = run();
  await tick();
  session.detach(ws as never);
  assert.deepEqual(await done, { outcome: 'failed' });
  assert.deepEqual([reports[1]!.outcome, reports[1]!.error?.code, reports[1]!.error?.retryable], ['failed', 'MUSE_ERR_AGENT_DISCONNECTED', true]);
  await tick(20);
  assert.equal(session.finished, true);
  assert.deepEqual(ended, ['agent-1']);
  assert.equal(beats.at(-1), 'stop agent-1');
});

test('a step past its timeout is cancelled at the agent and fails as MUSE_ERR_STEP_TIMEOUT; a run-stop cancels its steps', async () => {
  const { session, identity, run, reports } = setup();
  const ws = new FakeSocket();
  session.attach(ws as never, identity, 2000);
  const late = run({ ...JOB, timeoutMs: 20 });
  assert.deepEqual(await late, { outcome: 'failed' });
  assert.equal(reports[1]!.error?.code, 'MUSE_ERR_STEP_TIMEOUT');
  assert.equal(ws.of('cancel')[0].assignmentId, 'run_1.review.1');

  const stopped = run({ ...JOB, runId: 'run_2' });
  await tick();
  assert.equal(session.stopRun('run_2', 'cancelled'), 1);
  assert.deepEqual(await stopped, { outcome: 'failed' });
  assert.equal(reports.at(-1)!.error?.code, 'MUSE_ERR_RUN_CANCELLED');
});
