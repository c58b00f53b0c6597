import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket } from 'ws';
import { createLogger } from '@muse/telemetry';
import { LiveStreamGateway } from './live-stream.gateway.js';
import type { LiveListener, LiveViewService } from './live-view.service.js';

/** The gateway on a real HTTP server, over a live view fed by hand. */
async function serve() {
  let listener: LiveListener | undefined;
  const live = {
    snapshot: () => ({ generatedAt: 'g', namespace: 'ns', agents: [], queues: [], runs: { recent: [] } }),
    counters: () => ({ runs: { byStatus: {}, active: 0 }, totals: {}, spend: { inputTokens: 0, outputTokens: 0, byModel: [] } }),
    listen: (l: LiveListener) => {
      listener = l;
      return () => (listener = undefined);
    },
  } as unknown as LiveViewService;
  const gw = new LiveStreamGateway(live, createLogger('spec', 'silent'));
  const server = createServer((_req, res) => res.end('http'));
  gw.attach(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    gw,
    base,
    emit: (c: Parameters<LiveListener>[0]) => listener!(c),
    close: async () => {
      await gw.closeAll();
      await new Promise((r) => server.close(r));
    },
  };
}

function open(url: string): Promise<{ ws: WebSocket; messages: any[] }> {
  const ws = new WebSocket(url);
  const messages: any[] = [];
  ws.on('message', (d) => messages.push(JSON.parse(String(d))));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages }));
    ws.once('error', reject);
  });
}

const until = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok());
};

test('a client gets the snapshot, then each event and each poll as they happen', async () => {
  const s = await serve();
  try {
    const c = await open(`${s.base}/v1/live`);
    await until(() => c.messages.length === 1);
    assert.equal(c.messages[0].type, 'snapshot');
    assert.equal(c.messages[0].snapshot.namespace, 'ns');
    s.emit({ kind: 'event', event: { id: 'e', runId: 'r', seq: 1, type: 'run.created', at: '2026-01-01T00:00:00.000Z' }, run: undefined });
    s.emit({ kind: 'poll' });
    await until(() => c.messages.length === 3);
    assert.equal(c.messages[1].type, 'event');
    assert.equal(c.messages[1].event.at, '2026-01-01T00:00:00.000Z');
    assert.ok(c.messages[1].totals && c.messages[1].runs && c.messages[1].spend, 'counters ride along');
    assert.equal(c.messages[2].type, 'state');
    assert.equal(s.gw.clients, 1);
    c.ws.close();
    await until(() => s.gw.clients === 0);
  } finally {
    await s.close();
  }
});

test('another path is refused with 404, behind a prefix the path still works', async () => {
  const s = await serve();
  try {
    await assert.rejects(open(`${s.base}/v1/stream`), /404/);
    const c = await open(`${s.base}/muse/v1/live`);
    await until(() => c.messages.length === 1);
    c.ws.close();
  } finally {
    await s.close();
  }
});
