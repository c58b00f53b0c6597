/** The bus on the real NATS server: what an append does with an event no message can hold; the audit stream's batches. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { museNames, type AuditRecord, type RunEvent } from '@muse/contracts';
import { CommandTooLargeError, EventTooLargeError } from './errors.js';
import { AUDIT_BATCH_MAX, JetStreamBus } from './jetstream-bus.js';

const names = museNames(`t-bus-${randomBytes(4).toString('hex')}`);
let bus: JetStreamBus;

before(async () => {
  bus = await JetStreamBus.connect({ url: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', names, name: 'muse-spec-bus' });
  await bus.ensureStreams();
  await bus.ensureAuditStream();
});
after(async () => {
  await bus.deleteStreams();
  await bus.close();
});

const completed = (runId: string, seq: number, text: string): RunEvent =>
  ({ id: `${runId}.${seq}`, runId, project: 'p', seq, at: '2026-01-01T00:00:00.000Z', type: 'step.completed', data: { stepId: 's', attempt: 1, agentId: 'a', output: { text }, artifacts: [], finishedAt: '2026-01-01T00:00:00.000Z' } }) as RunEvent;

test("the largest message an append sends is the server's max_payload less room for headers", () => {
  const serverMax = bus.nc.info!.max_payload;
  assert.ok(serverMax >= 64 * 1024, `max_payload ${serverMax}`);
  assert.equal(bus.maxMessageBytes, serverMax - 4096);
});

test('an event larger than one message is refused before anything of its append is stored; events around the limit are stored', async () => {
  const runId = 'run_big';
  const first = await bus.appendRunEvents(runId, [completed(runId, 1, 'small')], 0);
  // Split over several messages, the rest of the append fits: only the one event no message can hold stops it.
  const tooBig = completed(runId, 3, 'x'.repeat(bus.maxMessageBytes));
  await assert.rejects(bus.appendRunEvents(runId, [completed(runId, 2, 'y'.repeat(bus.maxMessageBytes / 2)), tooBig], first), (err: unknown) => {
    assert.ok(err instanceof EventTooLargeError, String(err));
    assert.deepEqual(err.event, { type: 'step.completed', id: tooBig.id });
    assert.equal(err.limitBytes, bus.maxMessageBytes);
    assert.ok(err.bytes > err.limitBytes);
    return true;
  });
  assert.deepEqual((await bus.readRunEvents(runId)).events.map((e) => e.seq), [1], 'nothing of the refused append is in the log');
  // Just under the limit goes through, as one message; two such events, as two.
  const near = 'z'.repeat(bus.maxMessageBytes - 400);
  const last = await bus.appendRunEvents(runId, [completed(runId, 2, near), completed(runId, 3, near)], first);
  assert.equal(last, first + 2);
  assert.deepEqual((await bus.readRunEvents(runId)).events.map((e) => e.seq), [1, 2, 3]);
});

test('a command larger than one message is refused before it is sent, and says how large it was', async () => {
  const cmd = { kind: 'step-report', runId: 'run_big', project: 'p', stepId: 's', attempt: 1, agentId: 'a', outcome: 'completed', at: '2026-01-01T00:00:00.000Z', output: { text: 'x'.repeat(bus.maxMessageBytes) } } as const;
  await assert.rejects(bus.publishCommand(cmd), (err: unknown) => {
    assert.ok(err instanceof CommandTooLargeError, String(err));
    assert.equal(err.kind, 'step-report');
    assert.equal(err.limitBytes, bus.maxMessageBytes - 1024, 'room left for the event the command becomes');
    assert.ok(err.bytes > err.limitBytes);
    return true;
  });
  assert.equal((await bus.jsm.streams.info(names.commandStream)).state.messages, 0);
  const small = await bus.publishCommand({ ...cmd, output: { text: 'ok' } });
  assert.equal(small.duplicate, false);
});

test("sendAudit sends a project's records of one turn as one message (at most AUDIT_BATCH_MAX each); readAudit gives them back one by one, beside single records", async () => {
  const at = (i: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString();
  const transition = (project: string, i: number): AuditRecord => ({ time: at(i), principal: 'coordinator', project, action: 'step.queued', target: `run_a/s${i}`, outcome: 'allowed' });
  const messages = async () => (await bus.jsm.streams.info(names.auditStream)).state.messages;
  // Plain publishes: the stream stores them a moment after the server took them.
  const stored = async (from: number, n: number) => {
    for (let i = 0; i < 100 && (await messages()) - from < n; i++) await new Promise((r) => setTimeout(r, 20));
    return (await messages()) - from;
  };
  const before = await messages();
  // Two calls in one turn: sent together after it.
  bus.sendAudit([transition('p', 1), transition('q', 2)]);
  bus.sendAudit([transition('p', 3)]);
  // They go out after this turn: a request's record acked before then would be stored ahead of them.
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(await bus.appendAudit([{ time: at(4), principal: 'key:k1', project: 'p', action: 'POST /v1/runs', target: 'run_b', outcome: 'allowed', status: 202 }]), []);
  bus.sendAudit([transition('q', 5)]);
  assert.equal(await stored(before, 4), 4, "p's two records in one message, q's in one, the request's, q's single one");
  assert.deepEqual((await bus.readAudit(['p'], 100)).map((r) => r.time), [at(1), at(3), at(4)]);
  assert.deepEqual((await bus.readAudit('*', 100)).map((r) => r.time), [at(1), at(3), at(2), at(4), at(5)]);
  assert.deepEqual((await bus.readAudit('*', 2)).map((r) => r.time), [at(4), at(5)], 'the newest two');
  // A fold that queues more steps than one message holds: as many messages as it takes, every record read back.
  const many = Array.from({ length: AUDIT_BATCH_MAX + 10 }, (_, i) => transition('r', 100 + i));
  const mid = await messages();
  bus.sendAudit(many);
  assert.equal(await stored(mid, 2), 2);
  assert.deepEqual((await bus.readAudit(['r'], 1000)).map((r) => r.target), many.map((r) => r.target));
});

test("appendAudit stores a project's records as one acked message and says which records were not stored", async () => {
  const at = (i: number) => new Date(Date.UTC(2026, 0, 2, 0, 0, i)).toISOString();
  const request = (project: string | undefined, i: number): AuditRecord => ({ time: at(i), principal: 'key:k1', ...(project ? { project } : {}), action: 'POST /v1/runs', target: `run_${i}`, outcome: 'allowed', status: 202 });
  const before = (await bus.jsm.streams.info(names.auditStream)).state.messages;
  const records = [request('s', 1), request('t', 2), request('s', 3), request(undefined, 4), request('s', 5)];
  assert.deepEqual(await bus.appendAudit(records), []);
  // Acked: stored by the time it resolves. s's three in one message, t's one, the project-less one under `_`.
  assert.equal((await bus.jsm.streams.info(names.auditStream)).state.messages - before, 3);
  assert.deepEqual((await bus.readAudit(['s'], 100)).map((r) => r.target), ['run_1', 'run_3', 'run_5']);
  // An invalid record fails alone; the valid one beside it is stored.
  const bad = { ...request('u', 6), outcome: 'maybe' } as unknown as AuditRecord;
  const partly = await bus.appendAudit([bad, request('u', 7)]);
  assert.deepEqual(partly.map((f) => f.records), [[bad]]);
  assert.deepEqual((await bus.readAudit(['u'], 100)).map((r) => r.target), ['run_7']);
  // A namespace without its audit stream stores nothing: every record comes back, grouped as it was sent.
  const bare = await JetStreamBus.connect({ url: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', names: museNames(`t-bus-${randomBytes(4).toString('hex')}`), name: 'muse-spec-bus-bare' });
  try {
    const failed = await bare.appendAudit(records, 1_000);
    assert.deepEqual(failed.map((f) => f.records.map((r) => r.target)).sort(), [['run_1', 'run_3', 'run_5'], ['run_2'], ['run_4']]);
    for (const f of failed) assert.ok(f.err instanceof Error);
  } finally {
    await bare.close();
  }
});

test('sendAudit checks each record when it is called; close sends the records still waiting for the end of the turn', async () => {
  const record: AuditRecord = { time: new Date(Date.UTC(2026, 0, 3)).toISOString(), principal: 'coordinator', project: 'w', action: 'run.created', target: 'run_w', outcome: 'allowed' };
  assert.throws(() => bus.sendAudit([{ ...record, outcome: 'maybe' } as unknown as AuditRecord]));
  const other = await JetStreamBus.connect({ url: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', names, name: 'muse-spec-bus-closing' });
  other.sendAudit([record]);
  await other.close();
  let found: AuditRecord[] = [];
  for (let i = 0; i < 100 && found.length === 0; i++) {
    found = await bus.readAudit(['w'], 10);
    if (found.length === 0) await new Promise((r) => setTimeout(r, 20));
  }
  assert.deepEqual(found, [record]);
});
