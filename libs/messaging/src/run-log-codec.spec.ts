import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent } from '@muse/contracts';
import { encodeJson } from './codec.js';
import { decodeRunEvents, encodeRunEvents } from './run-log-codec.js';

const ev = (seq: number, text = 'x'): RunEvent =>
  ({ id: `run_c.${seq}`, runId: 'run_c', project: 'p', seq, at: '2026-01-01T00:00:00.000Z', type: 'step.completed', data: { stepId: 's', attempt: 1, agentId: 'a', output: { text }, artifacts: [], finishedAt: '2026-01-01T00:00:00.000Z' } }) as RunEvent;

test('the events of one append become one message, which decodes back to them in order', () => {
  const events = [ev(4), ev(5), ev(6)];
  const msgs = encodeRunEvents(events);
  assert.equal(msgs.length, 1);
  assert.equal(msgs[0]!.first.id, 'run_c.4');
  assert.deepEqual(decodeRunEvents(msgs[0]!.data), events);
  assert.deepEqual(JSON.parse(Buffer.from(msgs[0]!.data).toString()), events);
});

test('a lone event is stored as the bare object, as older logs hold it, and both shapes decode', () => {
  const [only] = encodeRunEvents([ev(1)]);
  assert.deepEqual(Buffer.from(only!.data), Buffer.from(encodeJson(ev(1))));
  assert.deepEqual(decodeRunEvents(only!.data), [ev(1)]);
});

test('an append larger than a message is split in order, each part under the limit; an oversized event goes alone', () => {
  const events = Array.from({ length: 10 }, (_, i) => ev(i + 1, 'y'.repeat(300)));
  const one = encodeJson(events[0]).length;
  const msgs = encodeRunEvents([...events, ev(11, 'z'.repeat(5000)), ev(12)], one * 3 + 4);
  assert.deepEqual(msgs.map((m) => decodeRunEvents(m.data).map((e) => e.seq)), [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10], [11], [12]]);
  assert.deepEqual(msgs.map((m) => m.first.seq), [1, 4, 7, 10, 11, 12]);
  for (const m of msgs.slice(0, 4)) assert.ok(m.data.length <= one * 3 + 4);
});

test('a message that is not a run event is refused', () => {
  assert.throws(() => decodeRunEvents(encodeJson([{ nope: true }])));
  assert.throws(() => decodeRunEvents(encodeJson({ nope: true })));
});
