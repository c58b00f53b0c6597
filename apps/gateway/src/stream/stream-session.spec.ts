import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RunEvent } from '@muse/contracts';
import { StreamServerMessageSchema, type StreamServerMessage } from '@muse/contracts';
import { StreamSession, sendPerTick, type StreamDeps, type StreamSocket } from './stream-session.js';

class FakeSocket implements StreamSocket {
  sent: StreamServerMessage[] = [];
  closedWith: [number, string] | null = null;
  bufferedAmount = 0;
  send(data: string): void {
    this.sent.push(StreamServerMessageSchema.parse(JSON.parse(data)));
  }
  close(code: number, reason: string): void {
    this.closedWith = [code, reason];
  }
}

/** A bus whose subscriptions the test drives by hand. */
class FakeBus implements StreamDeps {
  readonly subs = new Map<string, { onEvent: (e: RunEvent) => void; from: 'all' | 'new'; stopped: boolean; onEnd: (err?: unknown) => void }>();
  /** Events delivered synchronously during subscribe, before it resolves (the race the session must handle). */
  early: RunEvent[] = [];
  fail = false;
  visible = new Set(['run_a', 'run_b']);
  async runVisible(project: string, runId: string): Promise<boolean> {
    return project === 'p' && this.visible.has(runId);
  }
  async subscribe(runId: string, onEvent: (e: RunEvent) => void, from: 'all' | 'new', onEnd: (err?: unknown) => void) {
    if (this.fail) throw new Error('nats down');
    const entry = { onEvent, from, stopped: false, onEnd };
    this.subs.set(runId, entry);
    for (const e of this.early) onEvent(e);
    return { stop: async () => void (entry.stopped = true) };
  }
}

const ev = (runId: string, seq: number, project = 'p'): RunEvent => ({
  id: `${runId}.${seq}`,
  runId,
  project,
  seq,
  at: '2025-01-01T00:00:00.000Z',
  type: 'run.started',
  data: {},
});

function setup() {
  const socket = new FakeSocket();
  const bus = new FakeBus();
  const session = new StreamSession(socket, { principal: 'key:000000000000', projects: ['p'], scopes: ['read'], project: 'p' }, bus, { maxSubscriptions: 3, maxBufferedBytes: 1000 });
  const types = () => socket.sent.map((m) => (m.type === 'event' ? `event:${m.event.runId}:${m.event.seq}` : m.type === 'error' ? `error:${m.error.code}` : m.type));
  return { socket, bus, session, types };
}

test('subscribe answers subscribed before any event, then replays in order without duplicates', async () => {
  const { bus, session, types } = setup();
  bus.early = [ev('run_a', 1), ev('run_a', 2)];
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  const sub = bus.subs.get('run_a')!;
  assert.equal(sub.from, 'all');
  sub.onEvent(ev('run_a', 2)); // redelivered
  sub.onEvent(ev('run_a', 3));
  assert.deepEqual(types(), ['subscribed', 'event:run_a:1', 'event:run_a:2', 'event:run_a:3']);
});

test('fromSeq skips the earlier part of the log', async () => {
  const { bus, session, types } = setup();
  bus.early = [ev('run_a', 1), ev('run_a', 2), ev('run_a', 3)];
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a', fromSeq: 3 }));
  assert.deepEqual(types(), ['subscribed', 'event:run_a:3']);
});

test('"*" streams new events of the caller\'s project only', async () => {
  const { bus, session, types } = setup();
  await session.handle(JSON.stringify({ op: 'subscribe', runId: '*' }));
  const sub = bus.subs.get('*')!;
  assert.equal(sub.from, 'new');
  sub.onEvent(ev('run_x', 5));
  sub.onEvent(ev('run_y', 1, 'other-project'));
  assert.deepEqual(types(), ['subscribed', 'event:run_x:5']);
  await session.handle(JSON.stringify({ op: 'subscribe', runId: '*', fromSeq: 1 }));
  assert.equal(types().at(-1), 'error:MUSE_ERR_REQUEST_INVALID');
});

test('unknown, foreign or malformed run ids get MUSE_ERR_RUN_NOT_FOUND and no consumer', async () => {
  const { bus, session, socket } = setup();
  for (const runId of ['run_zzz', 'run.a', 'run_a.>']) await session.handle(JSON.stringify({ op: 'subscribe', runId }));
  assert.equal(bus.subs.size, 0);
  assert.deepEqual(socket.sent.map((m) => m.type === 'error' && [m.error.code, m.runId]), [
    ['MUSE_ERR_RUN_NOT_FOUND', 'run_zzz'],
    ['MUSE_ERR_RUN_NOT_FOUND', 'run.a'],
    ['MUSE_ERR_RUN_NOT_FOUND', 'run_a.>'],
  ]);
  assert.equal(session.subscriptionCount, 0);
});

test('bad JSON, bad messages and binary frames get errors; the session carries on', async () => {
  const { session, types } = setup();
  await session.handle('{not json');
  await session.handle(JSON.stringify({ op: 'dance' }));
  await session.handle(JSON.stringify({ op: 'ping', extra: 1 }));
  await session.handle(null);
  await session.handle(JSON.stringify({ op: 'ping' }));
  assert.deepEqual(types(), ['error:MUSE_ERR_REQUEST_MALFORMED_JSON', 'error:MUSE_ERR_REQUEST_INVALID', 'error:MUSE_ERR_REQUEST_INVALID', 'error:MUSE_ERR_REQUEST_INVALID', 'pong']);
});

test('unsubscribe stops the consumer and the events; double subscribe and unknown unsubscribe are errors', async () => {
  const { bus, session, types } = setup();
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  const sub = bus.subs.get('run_a')!;
  await session.handle(JSON.stringify({ op: 'unsubscribe', runId: 'run_a' }));
  assert.equal(sub.stopped, true);
  sub.onEvent(ev('run_a', 1));
  await session.handle(JSON.stringify({ op: 'unsubscribe', runId: 'run_a' }));
  assert.deepEqual(types(), ['subscribed', 'error:MUSE_ERR_REQUEST_INVALID', 'error:MUSE_ERR_REQUEST_INVALID']);
});

test('close stops every consumer; the subscription limit holds', async () => {
  const { bus, session, types } = setup();
  bus.visible.add('run_c').add('run_d');
  for (const runId of ['run_a', 'run_b', 'run_c', 'run_d']) await session.handle(JSON.stringify({ op: 'subscribe', runId }));
  assert.equal(types().at(-1), 'error:MUSE_ERR_REQUEST_INVALID');
  assert.equal(bus.subs.size, 3);
  await session.close();
  assert.ok([...bus.subs.values()].every((s) => s.stopped));
});

test('a failing bus is MUSE_ERR_UNAVAILABLE (retryable) and frees the slot', async () => {
  const { bus, session, socket } = setup();
  bus.fail = true;
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  const last = socket.sent.at(-1)!;
  assert.ok(last.type === 'error' && last.error.code === 'MUSE_ERR_UNAVAILABLE' && last.error.retryable);
  bus.fail = false;
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  assert.equal(socket.sent.at(-1)!.type, 'subscribed');
});

test('a client that does not read is disconnected instead of buffered forever', async () => {
  const { bus, session, socket } = setup();
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  socket.bufferedAmount = 5000;
  bus.subs.get('run_a')!.onEvent(ev('run_a', 1));
  assert.equal(socket.closedWith?.[0], 1013);
  assert.equal(bus.subs.get('run_a')!.stopped, true);
});

test('a stream that ends on its own is reported with the seq to resume from, and can be subscribed again', async () => {
  const { bus, session, types, socket } = setup();
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  bus.subs.get('run_a')!.onEvent(ev('run_a', 1));
  bus.subs.get('run_a')!.onEvent(ev('run_a', 2));
  bus.subs.get('run_a')!.onEnd(new Error('consumer deleted'));
  assert.deepEqual(types(), ['subscribed', 'event:run_a:1', 'event:run_a:2', 'error:MUSE_ERR_UNAVAILABLE']);
  const last = socket.sent.at(-1)!;
  assert.ok(last.type === 'error' && last.runId === 'run_a' && /fromSeq 3/.test(last.error.message) && last.error.retryable);
  assert.equal(session.subscriptionCount, 0);
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a', fromSeq: 3 }));
  assert.equal(types().at(-1), 'subscribed');
});

test('live step progress of a subscribed run is forwarded (own project only), and stops with the subscription', async () => {
  const { bus, session, socket } = setup();
  const progress = new Map<string, { on: (p: import('@muse/contracts').StepProgress) => void; stopped: boolean }>();
  (bus as StreamDeps).subscribeProgress = (runId, on) => {
    const e = { on, stopped: false };
    progress.set(runId, e);
    return { stop: () => void (e.stopped = true) };
  };
  await session.handle(JSON.stringify({ op: 'subscribe', runId: 'run_a' }));
  const p = { project: 'p', runId: 'run_a', stepId: 'ask', attempt: 1, chunk: 1, text: 'hello ' };
  progress.get('run_a')!.on(p);
  progress.get('run_a')!.on({ ...p, project: 'other', text: 'not yours' });
  progress.get('run_a')!.on({ ...p, runId: 'run_b', text: 'not this run' });
  assert.deepEqual(socket.sent.filter((m) => m.type === 'progress'), [{ type: 'progress', progress: p }]);
  await session.handle(JSON.stringify({ op: 'unsubscribe', runId: 'run_a' }));
  assert.equal(progress.get('run_a')!.stopped, true);
  // "*" streams events only.
  await session.handle(JSON.stringify({ op: 'subscribe', runId: '*' }));
  assert.equal(progress.has('*'), false);
});

test('frames sent within one tick go out under one cork of the socket, released when the tick ends', async () => {
  const log: string[] = [];
  const ws: StreamSocket = { send: (data) => void log.push(data), close: () => undefined, bufferedAmount: 0 };
  const socket = sendPerTick(ws, { cork: () => void log.push('cork'), uncork: () => void log.push('uncork') });
  for (let i = 0; i < 3; i++) socket.send(`frame-${i}`);
  assert.deepEqual(log, ['cork', 'frame-0', 'frame-1', 'frame-2'], 'held until the tick ends');
  await new Promise((r) => setImmediate(r));
  socket.send('later');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(log, ['cork', 'frame-0', 'frame-1', 'frame-2', 'uncork', 'cork', 'later', 'uncork']);
});
