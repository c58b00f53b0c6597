import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentLoad, type AgentHeartbeat, type RunEvent, type RunView } from '@muse/contracts';
import {
  applyHeartbeat,
  applyRunEvent,
  buildSnapshot,
  createLiveState,
  eventLagSeconds,
  knownRoles,
  noteRole,
  pruneAgents,
  recordQueueDepth,
  seedRun,
  snapshotRun,
} from './snapshot.reducer.js';
import { SnapshotSchema } from './snapshot.schema.js';

const T0 = Date.parse('2025-01-01T00:00:00.000Z');
const iso = (ms: number) => new Date(T0 + ms).toISOString();
const error = { code: 'MUSE_ERR_STEP_PROVIDER', message: 'boom', retryable: true };

/** Builds a run's events in order, with ids and seqs like the coordinator's. */
function runLog(runId: string, startMs = 0) {
  let seq = 0;
  const at = () => iso(startMs + seq * 100);
  const base = () => {
    seq++;
    return { id: `${runId}-${seq}`, runId, project: 'default', seq, at: at() };
  };
  return {
    created: (): RunEvent => ({
      ...base(),
      type: 'run.created',
      data: {
        workflow: { name: 'code-review', version: 2 },
        definition: {
          name: 'code-review',
          steps: [
            { id: 'plan', agent: 'orchestrator', prompt: 'plan' },
            { id: 'lint', tool: 'shell', command: 'true', needs: ['plan'] },
          ],
        },
        input: {},
      },
    }),
    started: (): RunEvent => ({ ...base(), type: 'run.started', data: {} }),
    queued: (stepId: string, role: string, attempt = 1): RunEvent => ({
      ...base(),
      type: 'step.queued',
      data: { stepId, attempt, role, jobId: `${runId}.${stepId}.${attempt}` },
    }),
    stepStarted: (stepId: string, attempt = 1): RunEvent => ({
      ...base(),
      type: 'step.started',
      data: { stepId, attempt, agentId: 'agent-a', startedAt: at() },
    }),
    completed: (stepId: string, attempt = 1): RunEvent => ({
      ...base(),
      type: 'step.completed',
      data: { stepId, attempt, agentId: 'agent-a', output: { text: 'ok' }, artifacts: [], finishedAt: at() },
    }),
    failed: (stepId: string, final: boolean, attempt = 1): RunEvent => ({
      ...base(),
      type: 'step.failed',
      data: { stepId, attempt, agentId: 'agent-a', error, final, finishedAt: at() },
    }),
    runCompleted: (): RunEvent => ({ ...base(), type: 'run.completed', data: { output: 'done' } }),
    runFailed: (): RunEvent => ({ ...base(), type: 'run.failed', data: { error } }),
  };
}

function heartbeat(agentId: string, atMs: number, over: Partial<AgentHeartbeat> = {}): AgentHeartbeat {
  return {
    agentId,
    roles: ['executor'],
    pid: 42,
    host: 'box',
    concurrency: 4,
    inFlight: 1,
    completed: 3,
    failed: 0,
    startedAt: iso(0),
    at: iso(atMs),
    version: '0.1.0',
    ...over,
  };
}

test('a successful run: counts, steps, outcomes and recent events', () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  const results = [
    r.created(),
    r.started(),
    r.queued('plan', 'orchestrator'),
    r.stepStarted('plan'),
    r.completed('plan'),
    r.queued('lint', 'executor'),
    r.stepStarted('lint'),
    r.completed('lint'),
    r.runCompleted(),
  ].map((ev) => applyRunEvent(s, ev));

  assert.deepEqual(results[1], { applied: true, runOutcome: 'started' });
  assert.deepEqual(results[4], { applied: true, stepOutcome: 'completed' });
  assert.deepEqual(results[8], { applied: true, runOutcome: 'succeeded' });

  const snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0 + 5_000)));
  assert.equal(snap.runs.byStatus.succeeded, 1);
  assert.equal(snap.runs.byStatus.running, 0);
  assert.equal(snap.runs.byStatus.pending, 0);
  assert.equal(snap.runs.active, 0);
  assert.equal(snap.runs.recent.length, 1);
  const run = snap.runs.recent[0]!;
  assert.deepEqual(run.workflow, { name: 'code-review', version: 2 });
  assert.equal(run.status, 'succeeded');
  assert.equal(run.seq, 9);
  assert.deepEqual(
    run.steps.map((st) => [st.id, st.status, st.role, st.agent]),
    [
      ['plan', 'succeeded', 'orchestrator', 'agent-a'],
      ['lint', 'succeeded', 'executor', 'agent-a'],
    ],
  );
  assert.equal(snap.events.length, 9);
  assert.equal(snap.events[0]!.type, 'run.completed', 'newest event first');
  assert.equal(snap.events.at(-1)!.type, 'run.created');
  assert.deepEqual(snap.events.filter((e) => e.type === 'step.queued').map((e) => [e.stepId, e.role]), [
    ['lint', 'executor'],
    ['plan', 'orchestrator'],
  ]);
  assert.deepEqual(
    { ...snap.totals, since: undefined },
    {
      since: undefined,
      runsStarted: 1,
      runsSucceeded: 1,
      runsFailed: 0,
      runsCancelled: 0,
      stepsCompleted: 2,
      stepsFailed: 0,
      stepsRetried: 0,
      eventsSeen: 9,
      duplicatesIgnored: 0,
    },
  );
});

test('duplicates by event id, or by an already-seen sequence, are not counted twice', () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  const created = r.created();
  const started = r.started();
  const done = r.completed('plan');
  for (const ev of [created, started, done]) applyRunEvent(s, ev);

  assert.deepEqual(applyRunEvent(s, started), { applied: false, reason: 'duplicate-id' });
  assert.deepEqual(applyRunEvent(s, done), { applied: false, reason: 'duplicate-id' });
  // Same position in the log under another id (a re-publish that JetStream's window missed).
  assert.deepEqual(applyRunEvent(s, { ...done, id: 'other-id' }), { applied: false, reason: 'duplicate-seq' });

  const snap = buildSnapshot(s, new Date(T0));
  assert.equal(snap.totals.eventsSeen, 3);
  assert.equal(snap.totals.runsStarted, 1);
  assert.equal(snap.totals.stepsCompleted, 1);
  assert.equal(snap.totals.duplicatesIgnored, 3);
  assert.equal(snap.events.length, 3);
  assert.equal(snap.runs.byStatus.running, 1);
});

test('the id dedupe window is bounded and forgets the oldest ids first', () => {
  const s = createLiveState('t', new Date(T0), { seenEventIds: 3 });
  const r = runLog('r1');
  const evs = [r.created(), r.started(), r.queued('plan', 'orchestrator'), r.stepStarted('plan')];
  for (const ev of evs) applyRunEvent(s, ev);
  assert.equal(s.seenIds.size, 3);
  assert.equal(s.seenIds.has(evs[0]!.id), false);
  // Forgotten by id, but still caught by its sequence number.
  assert.deepEqual(applyRunEvent(s, evs[0]!), { applied: false, reason: 'duplicate-seq' });
});

test('failures: a retried attempt, a final failure, and a failed run cancelling open steps', () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  for (const ev of [r.created(), r.started(), r.queued('plan', 'orchestrator'), r.stepStarted('plan')]) applyRunEvent(s, ev);
  assert.deepEqual(applyRunEvent(s, r.failed('plan', false)), { applied: true, stepOutcome: 'retried' });
  assert.equal(buildSnapshot(s, new Date(T0)).runs.recent[0]!.steps[0]!.status, 'pending');
  applyRunEvent(s, r.queued('plan', 'orchestrator', 2));
  applyRunEvent(s, r.stepStarted('plan', 1)); // a late start of the lost attempt changes nothing
  assert.equal(buildSnapshot(s, new Date(T0)).runs.recent[0]!.steps[0]!.status, 'queued');
  applyRunEvent(s, r.stepStarted('plan', 2));
  assert.deepEqual(applyRunEvent(s, r.failed('plan', true, 2)), { applied: true, stepOutcome: 'failed' });
  assert.deepEqual(applyRunEvent(s, r.runFailed()), { applied: true, runOutcome: 'failed' });

  const snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0)));
  assert.equal(snap.runs.byStatus.failed, 1);
  assert.equal(snap.runs.active, 0);
  assert.deepEqual(
    snap.runs.recent[0]!.steps.map((st) => [st.id, st.status, st.attempts]),
    [
      ['plan', 'failed', 2],
      ['lint', 'cancelled', 0],
    ],
  );
  assert.equal(snap.totals.stepsRetried, 1);
  assert.equal(snap.totals.stepsFailed, 1);
  assert.equal(snap.totals.runsFailed, 1);
  assert.equal(snap.events[0]!.errorCode, 'MUSE_ERR_STEP_PROVIDER');
});

test('a run first seen mid-way becomes a placeholder that later events fill in', () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  r.created();
  r.started(); // both happened before this process started
  applyRunEvent(s, r.queued('lint', 'executor'));
  let snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0)));
  assert.equal(snap.runs.byStatus.running, 1);
  assert.equal(snap.runs.recent[0]!.workflow, null);
  assert.deepEqual(snap.runs.recent[0]!.steps.map((st) => st.id), ['lint']);
  applyRunEvent(s, r.completed('lint'));
  applyRunEvent(s, r.runCompleted());
  snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0)));
  assert.equal(snap.runs.byStatus.running, 0);
  assert.equal(snap.runs.byStatus.succeeded, 1);
  assert.ok(knownRoles(s).includes('executor'));
});

test('recent lists are capped: newest runs and events first', () => {
  const s = createLiveState('t', new Date(T0), { recentRuns: 3, recentEvents: 5 });
  for (let i = 0; i < 6; i++) {
    const r = runLog(`r${i}`, i * 1000);
    applyRunEvent(s, r.created());
    applyRunEvent(s, r.started());
  }
  const snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0 + 10_000)));
  assert.deepEqual(snap.runs.recent.map((r) => r.id), ['r5', 'r4', 'r3']);
  assert.equal(snap.events.length, 5);
  assert.deepEqual(snap.events.map((e) => `${e.runId}/${e.seq}`), ['r5/2', 'r5/1', 'r4/2', 'r4/1', 'r3/2']);
  assert.equal(snap.runs.byStatus.running, 6, 'counts cover every run, not just the listed ones');
});

test('past maxTrackedRuns the oldest terminal runs are forgotten but still counted', () => {
  const s = createLiveState('t', new Date(T0), { maxTrackedRuns: 3 });
  for (let i = 0; i < 3; i++) {
    const r = runLog(`done${i}`, i * 1000);
    for (const ev of [r.created(), r.started(), r.runCompleted()]) applyRunEvent(s, ev);
  }
  const live = runLog('live', 10_000);
  applyRunEvent(s, live.created());
  const live2 = runLog('live2', 11_000);
  applyRunEvent(s, live2.created());
  assert.equal(s.runs.size, 3);
  assert.deepEqual([...s.runs.keys()], ['done2', 'live', 'live2']);
  const snap = buildSnapshot(s, new Date(T0));
  assert.equal(snap.runs.byStatus.succeeded, 3);
  assert.equal(snap.runs.byStatus.pending, 2);
});

test('past maxTrackedRuns with every run still going, none is forgotten; the next to finish goes first once another arrives', () => {
  const s = createLiveState('t', new Date(T0), { maxTrackedRuns: 2 });
  const logs = ['a', 'b', 'c', 'd'].map((id, i) => runLog(id, i * 1000));
  for (const r of logs) applyRunEvent(s, r.created());
  assert.deepEqual([...s.runs.keys()], ['a', 'b', 'c', 'd'], 'active runs are all kept');
  assert.equal(s.terminal.size, 0);
  // c then a finish; a's later update makes it the newer of the two terminal runs.
  for (const ev of [logs[2]!.started(), logs[2]!.runCompleted(), logs[0]!.started(), logs[0]!.runCompleted()]) applyRunEvent(s, ev);
  assert.deepEqual([...s.runs.keys()], ['b', 'd'], 'both finished runs were over the cap: forgotten, oldest first');
  assert.equal(s.terminal.size, 0);
  const e = runLog('e', 9000);
  for (const ev of [e.created(), e.started(), e.runCompleted()]) applyRunEvent(s, ev);
  assert.deepEqual([...s.runs.keys()], ['b', 'd'], 'a run finishing over the cap is the one forgotten');
  assert.equal(buildSnapshot(s, new Date(T0)).runs.byStatus.succeeded, 3, 'all still counted');
});

test('seeding from the read model: counts, no regression, live events continue from the view', () => {
  const s = createLiveState('t', new Date(T0));
  const view: RunView = {
    id: 'r1',
    project: 'default',
    workflow: { name: 'code-review', version: 1 },
    status: 'running',
    input: {},
    createdAt: iso(0),
    updatedAt: iso(300),
    seq: 3,
    steps: [
      { id: 'plan', status: 'running', attempts: 1, agent: 'agent-a' },
      { id: 'lint', status: 'pending', attempts: 0 },
    ],
  };
  const finished: RunView = { ...view, id: 'r0', status: 'succeeded', seq: 9, steps: [] };
  assert.equal(seedRun(s, finished), true);
  assert.equal(seedRun(s, view), true);
  assert.equal(seedRun(s, { ...view, seq: 2, status: 'pending' }), false, 'an older view is ignored');

  const r = runLog('r1');
  r.created();
  r.started();
  const queued = r.queued('plan', 'orchestrator'); // seq 3: already in the view
  assert.deepEqual(applyRunEvent(s, queued), { applied: false, reason: 'duplicate-seq' });
  applyRunEvent(s, r.completed('plan'));

  const snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0 + 1_000)));
  assert.equal(snap.runs.byStatus.running, 1);
  assert.equal(snap.runs.byStatus.succeeded, 1);
  assert.equal(snap.runs.active, 1);
  const r1 = snap.runs.recent.find((x) => x.id === 'r1')!;
  assert.equal(r1.seq, 4);
  assert.deepEqual(r1.workflow, { name: 'code-review', version: 1 });
  assert.deepEqual(r1.steps.map((st) => st.status), ['succeeded', 'pending']);
  assert.equal(snap.totals.eventsSeen, 1, 'seeded runs are not counted as live events');
  assert.equal(snap.totals.runsStarted, 0);
});

test('a seed newer than the live placeholder replaces it and moves its status count', () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  r.created();
  r.started();
  applyRunEvent(s, r.queued('plan', 'orchestrator')); // seq 3, placeholder: running
  const view: RunView = {
    id: 'r1',
    project: 'default',
    workflow: { name: 'wf', version: 1 },
    status: 'succeeded',
    input: {},
    createdAt: iso(0),
    updatedAt: iso(900),
    seq: 9,
    steps: [{ id: 'plan', status: 'succeeded', attempts: 1 }],
  };
  assert.equal(seedRun(s, view), true);
  const snap = buildSnapshot(s, new Date(T0));
  assert.equal(snap.runs.byStatus.running, 0);
  assert.equal(snap.runs.byStatus.succeeded, 1);
  assert.equal(snap.runs.recent[0]!.steps[0]!.role, 'orchestrator', 'the role learnt live is kept');
});

test('agents: newest heartbeat wins, stale ones are ignored and pruned after the TTL', () => {
  const s = createLiveState('t', new Date(T0), { agentTtlMs: 10_000 });
  assert.equal(applyHeartbeat(s, heartbeat('a', 1_000, { inFlight: 2 }), T0 + 1_000), true);
  assert.equal(applyHeartbeat(s, heartbeat('a', 500, { inFlight: 0 }), T0 + 1_000), false, 'older than the one held');
  assert.equal(applyHeartbeat(s, heartbeat('b', 0, { roles: ['reviewer', 'custom-role'] }), T0 + 11_000), false, 'already past the TTL');
  assert.equal(applyHeartbeat(s, heartbeat('c', 5_000, { roles: ['reviewer', 'custom-role'] }), T0 + 5_000), true);

  let snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0 + 6_000)));
  assert.deepEqual(snap.agents.map((a) => [a.agentId, a.inFlight, a.lastSeenAt]), [
    ['a', 2, iso(1_000)],
    ['c', 1, iso(5_000)],
  ]);
  assert.equal(snap.agents[0]!.load, 0.5);
  assert.ok(snap.queues.some((q) => q.role === 'custom-role'), 'roles from heartbeats are polled');

  // 10 s of silence from a: still listed at exactly the TTL, gone after.
  snap = buildSnapshot(s, new Date(T0 + 11_000));
  assert.deepEqual(snap.agents.map((a) => a.agentId), ['a', 'c']);
  snap = buildSnapshot(s, new Date(T0 + 11_001));
  assert.deepEqual(snap.agents.map((a) => a.agentId), ['c']);
  assert.equal(pruneAgents(s, T0 + 11_001), 1);
  assert.equal(s.agents.has('a'), false);
});

test('agent load spreads concurrency over the roles served', () => {
  assert.equal(agentLoad({ inFlight: 4, concurrency: 4, roles: ['executor'] }), 1);
  assert.equal(agentLoad({ inFlight: 4, concurrency: 4, roles: ['a', 'b', 'c', 'd'] }), 0.25);
  assert.equal(agentLoad({ inFlight: 1, concurrency: 0, roles: ['a'] }), 0);
});

test('queues: default roles first, then others by name; only valid role names', () => {
  const s = createLiveState('t', new Date(T0), { maxRoles: 6 });
  noteRole(s, 'zeta');
  noteRole(s, 'alpha');
  noteRole(s, 'bad:role');
  noteRole(s, 'Upper');
  noteRole(s, 'one-too-many');
  assert.deepEqual(knownRoles(s), ['orchestrator', 'optimizer', 'reviewer', 'executor', 'alpha', 'zeta']);
  recordQueueDepth(s, 'executor', { waiting: 7, active: 2, delayed: 1 }, new Date(T0 + 1_000));
  const snap = SnapshotSchema.parse(buildSnapshot(s, new Date(T0 + 2_000)));
  assert.deepEqual(snap.queues.find((q) => q.role === 'executor'), { role: 'executor', waiting: 7, active: 2, delayed: 1, readAt: iso(1_000) });
  assert.deepEqual(snap.queues.find((q) => q.role === 'alpha'), { role: 'alpha', waiting: 0, active: 0, delayed: 0 });
});

test('a run with many steps lists the first maxStepsPerRun and counts the rest', () => {
  const s = createLiveState('t', new Date(T0), { maxStepsPerRun: 2 });
  const r = runLog('big');
  for (const id of ['a', 'b', 'c', 'd']) applyRunEvent(s, r.queued(id, 'executor'));
  const run = SnapshotSchema.parse(buildSnapshot(s, new Date(T0))).runs.recent[0]!;
  assert.deepEqual(run.steps.map((st) => st.id), ['a', 'b']);
  assert.equal(run.stepsOmitted, 2);
});

test('an empty state still makes a valid snapshot', () => {
  const snap = SnapshotSchema.parse(buildSnapshot(createLiveState('t', new Date(T0)), new Date(T0)));
  assert.equal(snap.generatedAt, iso(0));
  assert.equal(snap.runs.recent.length, 0);
  assert.equal(snap.queues.length, 4);
  assert.deepEqual(Object.values(snap.runs.byStatus), [0, 0, 0, 0, 0, 0]);
});

test('event lag is never negative and skips unreadable times', () => {
  const ev = { ...runLog('r1').created(), at: iso(0) };
  assert.equal(eventLagSeconds(ev, T0 + 2_500), 2.5);
  assert.equal(eventLagSeconds(ev, T0 - 1_000), 0);
  assert.equal(eventLagSeconds({ ...ev, at: 'yesterday' }, T0), undefined);
});

test('steps carry their needs from the definition; agent steps\' token usage adds up per run and per model', () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  for (const ev of [r.created(), r.started(), r.queued('plan', 'orchestrator'), r.stepStarted('plan')]) applyRunEvent(s, ev);
  const plan = r.completed('plan');
  (plan.data as { output: unknown }).output = { text: 'ok', model: 'muse-local', usage: { inputTokens: 7, outputTokens: 11 } };
  applyRunEvent(s, plan);
  // A shell step's output has no usage: it adds nothing.
  applyRunEvent(s, r.completed('lint'));
  const snap = buildSnapshot(s, new Date(T0 + 5_000));
  assert.doesNotThrow(() => SnapshotSchema.parse(snap));
  const run = snap.runs.recent[0]!;
  assert.deepEqual(run.steps.map((st) => [st.id, st.needs]), [['plan', undefined], ['lint', ['plan']]]);
  assert.deepEqual(run.tokens, { input: 7, output: 11 });
  assert.deepEqual(snap.spend, { inputTokens: 7, outputTokens: 11, byModel: [{ model: 'muse-local', inputTokens: 7, outputTokens: 11, steps: 1 }] });
  assert.deepEqual(snapshotRun(s, 'r1'), run);
  assert.equal(snapshotRun(s, 'nope'), undefined);
});

test("a step answered from a recording (a replay's) spent nothing: the live view counts what the run's spend counts", () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  for (const ev of [r.created(), r.started(), r.queued('plan', 'orchestrator'), r.stepStarted('plan')]) applyRunEvent(s, ev);
  const replayed = r.completed('plan');
  const call = { requestHash: 'h', seed: 0, temperature: 0, topP: 1 };
  (replayed.data as { output: unknown }).output = { text: 'ok', model: 'gpt-x', usage: { inputTokens: 7, outputTokens: 11 }, call: { ...call, replayed: true } };
  applyRunEvent(s, replayed);
  const live = r.completed('lint');
  (live.data as { output: unknown }).output = { text: 'ok', model: 'gpt-x', usage: { inputTokens: 3, outputTokens: 4 }, call };
  applyRunEvent(s, live);
  const snap = buildSnapshot(s, new Date(T0 + 5_000));
  assert.deepEqual(snap.runs.recent[0]!.tokens, { input: 3, output: 4 });
  assert.deepEqual(snap.spend, { inputTokens: 3, outputTokens: 4, byModel: [{ model: 'gpt-x', inputTokens: 3, outputTokens: 4, steps: 1 }] });
});

test("a failed attempt's spent tokens count per run and per model, but no step", () => {
  const s = createLiveState('t', new Date(T0));
  const r = runLog('r1');
  for (const ev of [r.created(), r.started(), r.queued('plan', 'orchestrator'), r.stepStarted('plan')]) applyRunEvent(s, ev);
  const failed = r.failed('plan', false);
  (failed.data as { spent?: unknown }).spent = { inputTokens: 5, outputTokens: 2, provider: 'oa', model: 'gpt-x' };
  applyRunEvent(s, failed);
  // A failure that spent nothing adds nothing.
  applyRunEvent(s, r.failed('plan', true, 2));
  const snap = buildSnapshot(s, new Date(T0 + 5_000));
  assert.doesNotThrow(() => SnapshotSchema.parse(snap));
  assert.deepEqual(snap.runs.recent[0]!.tokens, { input: 5, output: 2 });
  assert.deepEqual(snap.spend, { inputTokens: 5, outputTokens: 2, byModel: [{ model: 'gpt-x', inputTokens: 5, outputTokens: 2, steps: 0 }] });
});
