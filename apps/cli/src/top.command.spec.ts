import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTop, type TopSnapshot } from './top.command.js';

const snap: TopSnapshot = {
  generatedAt: '2026-11-21T14:32:45.000Z',
  namespace: 'muse',
  runs: {
    byStatus: { pending: 0, running: 1, waiting: 0, succeeded: 12, failed: 1, cancelled: 0 },
    active: 1,
    recent: [
      {
        id: 'run_abc',
        workflow: { name: 'code-review', version: 2 },
        status: 'running',
        updatedAt: '2026-11-21T14:32:45.000Z',
        steps: [
          { id: 'plan', status: 'succeeded' },
          { id: 'review', status: 'running' },
        ],
      },
    ],
  },
  events: Array.from({ length: 50 }, (_, i) => ({ runId: 'run_abc', seq: 50 - i, type: 'step.started', at: '2026-11-21T14:32:44.000Z', stepId: 'review', attempt: 1, agentId: 'w1' })),
  agents: [{ agentId: 'w1', roles: ['orchestrator', 'reviewer'], inFlight: 1, load: 0.25, completed: 10, failed: 0, lastSeenAt: '2026-11-21T14:32:45.000Z' }],
  queues: [{ role: 'reviewer', waiting: 3, active: 1, delayed: 0 }],
  totals: { since: '2026-11-21T14:00:00.000Z', stepsCompleted: 40, stepsFailed: 1, stepsRetried: 2, eventsSeen: 120 },
};

test('draws queues, agents, runs and as many events as fit, every line the terminal width', () => {
  const lines = renderTop(snap, { width: 120, height: 30, url: 'http://obs' });
  assert.ok(lines.length <= 30);
  for (const l of lines) assert.equal([...l].length, 120, l);
  const text = lines.join('\n');
  assert.match(text, /Queue Status/);
  assert.match(text, /reviewer\s+3\s+1\s+0/);
  assert.match(text, /w1\s+ACTIVE .*in flight 1 · load {2}25%/);
  assert.match(text, /RUNNING\s+run_abc\s+code-review v2\s+1\/2 steps · running review/);
  assert.match(text, /\[14:32:44\] step.started\s+run_abc review#1 agent=w1/);
  assert.match(lines.at(-1)!, /q quit/);
});

test('cuts long strings and removes control characters (snapshot strings are user data)', () => {
  const evil = { ...snap, agents: [{ ...snap.agents[0]!, agentId: `x\u001b[2Jy${'z'.repeat(300)}` }] };
  const lines = renderTop(evil, { width: 80, height: 40, url: 'http://obs' });
  for (const l of lines) {
    assert.equal([...l].length, 80);
    assert.ok(!l.includes('\u001b'), 'no escape sequence from the data reaches the terminal');
  }
});

test('without a snapshot it says why', () => {
  const lines = renderTop(undefined, { width: 60, height: 10, url: 'http://obs', error: 'connect ECONNREFUSED' });
  assert.match(lines.join('\n'), /ECONNREFUSED/);
});
