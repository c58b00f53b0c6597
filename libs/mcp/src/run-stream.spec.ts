/** RunStream against a fake `/v1/stream` on loopback: resume after a dropped connection, dedupe, and the end on a revoked credential. */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import type { ErrorBody, RunEvent } from '@muse/contracts';
import { MuseApiClient } from './muse-api.client.js';
import { RunStream } from './run-stream.js';

const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
after(() => new Promise((r) => wss.close(r)));

const event = (runId: string, seq: number): RunEvent =>
  ({ id: `${runId}-${seq}`, runId, project: 'p', seq, at: new Date(0).toISOString(), type: 'run.started', data: {} }) as unknown as RunEvent;

test('a subscription resumes after a dropped connection from the next sequence number, once per event, and ends on 1008', async () => {
  const subscribes: unknown[] = [];
  const auth: Array<string | undefined> = [];
  const sockets: ServerSocket[] = [];
  const next = () =>
    new Promise<ServerSocket>((resolve) => {
      const before = sockets.length;
      const poll = setInterval(() => {
        if (subscribes.length > before) {
          clearInterval(poll);
          resolve(sockets.at(-1)!);
        }
      }, 10);
    });
  wss.on('connection', (ws, req) => {
    auth.push(req.headers.authorization);
    sockets.push(ws);
    ws.on('message', (data) => subscribes.push(JSON.parse(String(data))));
  });
  if (wss.address() === null) await new Promise((r) => wss.once('listening', r));
  const port = (wss.address() as AddressInfo).port;
  const stream = new RunStream(new MuseApiClient(`http://127.0.0.1:${port}`, () => ({ token: 'muse_k' })));
  const seen: number[] = [];
  let ended: ErrorBody | undefined;
  const first = next();
  await stream.subscribe('run_a', 3, { onEvent: (e) => seen.push(e.seq), onError: (e) => (ended = e) });
  const a = await first;
  assert.deepEqual(subscribes[0], { op: 'subscribe', runId: 'run_a', fromSeq: 3 });
  assert.equal(auth[0], 'Bearer muse_k');
  for (const e of [event('run_a', 3), event('run_a', 4), event('run_a', 4), event('run_b', 9)]) a.send(JSON.stringify({ type: 'event', event: e }));
  await new Promise((r) => setTimeout(r, 50));
  const second = next();
  a.terminate();
  const b = await second;
  assert.deepEqual(subscribes.at(-1), { op: 'subscribe', runId: 'run_a', fromSeq: 5 }, 'resumed after the last event seen');
  b.send(JSON.stringify({ type: 'event', event: event('run_a', 5) }));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, [3, 4, 5]);
  b.close(1008, 'revoked');
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(ended?.code, 'MUSE_ERR_AUTH_REQUIRED');
  assert.equal(stream.size, 0);
  stream.close();
});
