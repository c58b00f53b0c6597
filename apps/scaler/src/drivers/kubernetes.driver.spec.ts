import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { MuseError } from '@muse/contracts';
import { KubernetesDriver } from './kubernetes.driver.js';

/**
 * A loopback server speaking the Deployment scale subresource
 * (`/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`, GET and PUT, an
 * autoscaling/v1 Scale), as the API server does; the official client talks to it.
 */
async function fakeApiServer(deployments: Record<string, { spec: number; status: number }>) {
  const calls: Array<{ method: string; path: string; body?: unknown; auth?: string }> = [];
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = req.url!.split('?')[0]!;
      calls.push({ method: req.method!, path, ...(body ? { body: JSON.parse(body) } : {}), ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
      const m = /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/deployments\/([^/]+)\/scale$/.exec(path);
      const d = m ? deployments[`${m[1]}/${m[2]}`] : undefined;
      const scale = () => ({ apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: m![2], namespace: m![1] }, spec: { replicas: d!.spec }, status: { replicas: d!.status } });
      res.setHeader('content-type', 'application/json');
      if (!m || !d) {
        res.statusCode = 404;
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'NotFound', code: 404, message: `deployments.apps "${m?.[2]}" not found` }));
      } else if (req.method === 'GET') {
        res.end(JSON.stringify(scale()));
      } else if (req.method === 'PUT') {
        d.spec = (JSON.parse(body) as { spec: { replicas: number } }).spec.replicas;
        res.end(JSON.stringify(scale()));
      } else {
        res.statusCode = 405;
        res.end('{}');
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { calls, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.on('data', (c: Buffer) => (s += c.toString()));
    req.on('end', () => resolve(s));
  });
}

function kubeConfigFor(url: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'test', server: url, skipTLSVerify: true }],
    users: [{ name: 'scaler', token: 'sekret' }],
    contexts: [{ name: 'test', cluster: 'test', user: 'scaler' }],
    currentContext: 'test',
  });
  return kc;
}

test('reads and sets the replicas of each pool Deployment through the scale subresource', async () => {
  const api = await fakeApiServer({ 'muse/muse-agent-executor': { spec: 1, status: 1 } });
  try {
    const driver = new KubernetesDriver({ kubeConfig: kubeConfigFor(api.url), namespace: 'muse', deployment: 'muse-agent-{role}' });
    assert.equal(await driver.current('executor'), 1);
    await driver.scale('executor', 4);
    const put = api.calls.find((c) => c.method === 'PUT')!;
    assert.equal(put.path, '/apis/apps/v1/namespaces/muse/deployments/muse-agent-executor/scale');
    assert.deepEqual((put.body as { spec: unknown }).spec, { replicas: 4 });
    assert.equal(put.auth, 'Bearer sekret');
    // Already at the size: a read, no write.
    const puts = api.calls.filter((c) => c.method === 'PUT').length;
    await driver.scale('executor', 4);
    assert.equal(api.calls.filter((c) => c.method === 'PUT').length, puts);
    await assert.rejects(
      driver.scale('reviewer', 2),
      (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_SCALER_DRIVER' && /muse\/muse-agent-reviewer/.test(err.message),
    );
  } finally {
    await api.close();
  }
});
