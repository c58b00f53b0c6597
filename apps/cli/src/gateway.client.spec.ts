import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import { GatewayClient } from './gateway.client.js';

/**
 * A loopback stand-in for the gateway: `/v1/stream` sends the run's events as the gateway does, and
 * `GET /v1/runs/run_1` answers the views in `views` one after another (the last one from then on), as a view
 * that trails the log by a moment would.
 */
async function fakeGateway(views: Array<{ seq: number; status: string }>): Promise<{ url: string; reads: () => number; close: () => Promise<void> }> {
  let reads = 0;
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/v1/runs/run_1') {
      res.writeHead(404).end();
      return;
    }
    const v = views[Math.min(reads++, views.length - 1)]!;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'run_1', ...v, steps: [] }));
  });
  const wss = new WebSocketServer({ server, path: '/v1/stream' });
  wss.on('connection', (ws) => {
    ws.on('message', (data) => {
      const msg = JSON.parse(String(data)) as { op: string; runId: string };
      assert.deepEqual(msg, { op: 'subscribe', runId: 'run_1' });
      const at = new Date().toISOString();
      for (const [seq, type] of [
        [1, 'run.created'],
        [2, 'run.completed'],
      ] as const) {
        ws.send(JSON.stringify({ type: 'event', event: { id: `e${seq}`, runId: 'run_1', seq, type, at, data: {} } }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reads: () => reads,
    close: () => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.close(() => r());
    }),
  };
}

test('watchRun: after the run-ending event it reads the view again until the view has folded that event', async () => {
  const gw = await fakeGateway([
    { seq: 1, status: 'running' },
    { seq: 1, status: 'running' },
    { seq: 2, status: 'succeeded' },
  ]);
  try {
    const seen: number[] = [];
    const view = await new GatewayClient(gw.url).watchRun('run_1', (ev) => seen.push(ev.seq), 10_000);
    assert.deepEqual(seen, [1, 2]);
    assert.equal(view.status, 'succeeded');
    assert.equal(view.seq, 2);
    assert.equal(gw.reads(), 3);
  } finally {
    await gw.close();
  }
});

test('watchRun: a view that never catches up is given back as it is after a bounded number of reads', async () => {
  const gw = await fakeGateway([{ seq: 1, status: 'running' }]);
  try {
    const view = await new GatewayClient(gw.url).watchRun('run_1', () => {}, 10_000);
    assert.equal(view.status, 'running');
    assert.equal(gw.reads(), 10); // the first read and nine more, 5 ms to 1.28 s apart
  } finally {
    await gw.close();
  }
});
