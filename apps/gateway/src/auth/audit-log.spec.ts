/** The gateway's audit log on the real NATS server: one turn's records in one acked message, none lost on drain. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { museNames, type AuditRecord } from '@muse/contracts';
import { JetStreamBus } from '@muse/messaging';
import type { Logger } from '@muse/telemetry';
import { AuditLog } from './audit-log.service.js';

const url = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const names = museNames(`t-audit-${randomBytes(4).toString('hex')}`);
let bus: JetStreamBus;

before(async () => {
  bus = await JetStreamBus.connect({ url, names, name: 'muse-spec-audit' });
  await bus.ensureAuditStream();
});
after(async () => {
  await bus.jsm.streams.delete(names.auditStream).catch(() => undefined);
  await bus.close();
});

const request = (project: string, i: number, status = 202): AuditRecord => ({ time: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), principal: 'key:k1', project, action: 'POST /v1/runs', target: `run_${i}`, outcome: 'allowed', status });

/** A logger that keeps what was logged at error level. */
function keepingLogger(): { logger: Logger; errors: Array<{ obj: Record<string, unknown>; msg: string }> } {
  const errors: Array<{ obj: Record<string, unknown>; msg: string }> = [];
  const noop = () => undefined;
  const logger = { error: (obj: Record<string, unknown>, msg: string) => void errors.push({ obj, msg }), warn: noop, info: noop, debug: noop, trace: noop, fatal: noop, child: () => logger } as unknown as Logger;
  return { logger, errors };
}

test("the records of one turn go out as one acked message per project; drain waits until they are stored", async () => {
  const { logger, errors } = keepingLogger();
  const log = new AuditLog(bus, logger);
  const messages = async () => (await bus.jsm.streams.info(names.auditStream)).state.messages;
  const before = await messages();
  for (let i = 1; i <= 5; i++) log.record(request(i % 2 ? 'a' : 'b', i));
  assert.equal(await messages(), before, 'nothing is sent before the turn ends');
  await log.drain();
  assert.equal((await messages()) - before, 2, "a's three records in one message, b's two in another");
  assert.deepEqual((await log.read(['a'], 100)).map((r) => r.target), ['run_1', 'run_3', 'run_5']);
  assert.deepEqual((await log.read(['b'], 100)).map((r) => r.target), ['run_2', 'run_4']);
  // A later turn is a message of its own.
  log.record(request('a', 6));
  await new Promise((r) => setImmediate(r));
  await log.drain();
  assert.equal((await messages()) - before, 3);
  assert.deepEqual(errors, []);
});

test('a record the stream does not take is logged with all its fields, each one', async () => {
  const { logger, errors } = keepingLogger();
  // A namespace with no audit stream: JetStream answers no publish.
  const bare = await JetStreamBus.connect({ url, names: museNames(`t-audit-${randomBytes(4).toString('hex')}`), name: 'muse-spec-audit-bare' });
  try {
    const log = new AuditLog(bare, logger);
    const records = [request('a', 1), request('b', 2, 403)];
    for (const r of records) log.record(r);
    await log.onApplicationShutdown();
    assert.deepEqual(errors.map((e) => e.msg), ['audit record not stored', 'audit record not stored']);
    assert.deepEqual(errors.map((e) => e.obj.audit).sort((x, y) => String((x as AuditRecord).target).localeCompare(String((y as AuditRecord).target))), records);
    for (const e of errors) assert.ok(e.obj.err instanceof Error);
  } finally {
    await bare.close();
  }
});
