/** waitForRun against a fake gateway (REST view + `/v1/stream`) on loopback: a lagging read model, progress, timeout. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket as ServerSocket } from 'ws';
import type { RunView, StepView } from '@muse/contracts';
import { MuseApiClient } from './muse-api.client.js';
import { waitForRun, type RunProgress } from './wait-for-run.js';

/** What GET /v1/runs/{id} answers now, per run. */
const views = new Map<string, RunView>();
const subscribed: Array<{ ws: ServerSocket; msg: { runId: string; fromSeq: number } }> = [];
let server: Server;
let api: MuseApiClient;

const view = (id: string, seq: number, status: RunView['status'], steps: Array<[string, StepView['status']]>): RunView =>
  ({ id, project: 'p', workflow: { name: 'w', version: 1 }, status, input: {}, createdAt: '', updatedAt: '', seq, steps: steps.map(([sid, st]) => ({ id: sid, status: st, attempts: 1 })) }) as RunView;
const sendEvent = (ws: ServerSocket, runId: string, seq: number) => ws.send(JSON.stringify({ type: 'event', event: { id: `e${seq}`, runId, project: 'p', seq, at: '', type: 'step.completed', data: {} } }));

before(async () => {
  server = createServer((req, res) => {
    const id = decodeURIComponent(req.url!.split('/')[3]!);
    const v = views.get(id);
    res.writeHead(v ? 200 : 404, { 'content-type': 'application/json' }).end(JSON.stringify(v ?? { error: { code: 'MUSE_ERR_RUN_NOT_FOUND', message: `No run "${id}"`, retryable: false } }));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (d) => subscribed.push({ ws, msg: JSON.parse(String(d)) })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  api = new MuseApiClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, () => ({ token: 'muse_k' }));
});

after(() => {
  server.closeAllConnections();
  return new Promise((r) => server.close(r));
});

async function subscription(runId: string) {
  for (let i = 0; i < 200; i++) {
    const s = subscribed.find((x) => x.msg.runId === runId);
    if (s) return s;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no subscription to ${runId}`);
}

test('follows the run from the view it read, re-reads a lagging view, reports progress as steps finish', async () => {
  views.set('run_w', view('run_w', 2, 'running', [['a', 'running'], ['b', 'pending']]));
  const progress: RunProgress[] = [];
  const done = waitForRun(api, { runId: 'run_w', timeoutMs: 10_000, returnWhenWaiting: true, onProgress: async (p) => void progress.push(p) });
  const sub = await subscription('run_w');
  assert.equal(sub.msg.fromSeq, 3, 'the stream starts right after the view');
  // The event arrives before the read model has it: the view is read again until it caught up.
  sendEvent(sub.ws, 'run_w', 3);
  await new Promise((r) => setTimeout(r, 120));
  views.set('run_w', view('run_w', 3, 'running', [['a', 'succeeded'], ['b', 'running']]));
  await new Promise((r) => setTimeout(r, 400));
  views.set('run_w', view('run_w', 5, 'succeeded', [['a', 'succeeded'], ['b', 'succeeded']]));
  sendEvent(sub.ws, 'run_w', 4);
  sendEvent(sub.ws, 'run_w', 5);
  const res = await done;
  assert.equal(res.finished, true);
  assert.equal(res.timedOut, false);
  assert.equal(res.run.seq, 5);
  assert.deepEqual(progress.map((p) => [p.progress, p.total]), [[0, 2], [1, 2], [2, 2]]);
  assert.match(progress[1]!.message, /^a succeeded/);
});

test('returns on waiting when asked, on timeout otherwise, and the 404 of a run it may not see', async () => {
  views.set('run_gate', view('run_gate', 4, 'waiting', [['gate', 'waiting']]));
  const waiting = await waitForRun(api, { runId: 'run_gate', timeoutMs: 5_000, returnWhenWaiting: true });
  assert.deepEqual([waiting.run.status, waiting.finished, waiting.timedOut], ['waiting', false, false]);
  const started = Date.now();
  const timedOut = await waitForRun(api, { runId: 'run_gate', timeoutMs: 300, returnWhenWaiting: false });
  assert.deepEqual([timedOut.run.status, timedOut.finished, timedOut.timedOut], ['waiting', false, true]);
  assert.ok(Date.now() - started >= 290);
  await assert.rejects(waitForRun(api, { runId: 'run_nope', timeoutMs: 300, returnWhenWaiting: false }), (err: { status?: number; body?: { code?: string } }) => err.status === 404 && err.body?.code === 'MUSE_ERR_RUN_NOT_FOUND');
});
