/**
 * Security and tenancy at the gateway, end to end on the real NATS and
 * Redis: API keys (missing, wrong, revoked, expired: one 401), scopes,
 * projects isolated from each other (404 like a missing id, REST and
 * WebSocket), JWT bearer tokens against a JWKS file, rate limits per key,
 * body shape limits, key rotation and the audit log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { REPO_ROOT } from '@muse/cluster';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { museNames, type AuditRecord, type RunEvent } from '@muse/contracts';
import { bearer, http, NO_AUTH, startTestCluster, StreamRecorder, type TestCluster } from '../support/harness.js';

/** A one-step workflow whose shell output becomes an artifact. */
const JOB = { name: 'job', steps: [{ id: 'echo', tool: 'shell', command: 'echo secret-of-b' }] };
const KEY_RATE_PER_SEC = 40;

interface CreatedKey {
  id: string;
  key: string;
  prefix: string;
}

describe('security: identity, projects, scopes, limits and audit at the gateway', { timeout: 180_000 }, () => {
  let t: TestCluster;
  let jwtPrivate: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
  const JWT_ISSUER = 'https://issuer.test';
  const JWT_AUDIENCE = 'muse-test';

  async function createKey(body: Record<string, unknown>, as: Record<string, string> = {}): Promise<CreatedKey> {
    const res = await http<CreatedKey>(t.gateway, 'POST', '/v1/api-keys', body, as);
    assert.equal(res.status, 201, res.text);
    return res.body;
  }

  async function auditUntil(predicate: (r: AuditRecord) => boolean, headers: Record<string, string> = {}): Promise<AuditRecord[]> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const res = await http<{ items: AuditRecord[] }>(t.gateway, 'GET', '/v1/audit?limit=1000', undefined, headers);
      assert.equal(res.status, 200, res.text);
      if (res.body.items.some(predicate)) return res.body.items;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('audit record not found');
  }

  let jwks: string | undefined;
  before(async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    jwtPrivate = privateKey;
    jwks = join(process.env.TMPDIR ?? '/tmp', `muse-jwks-${process.pid}-${Date.now()}.json`);
    writeFileSync(jwks, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }));
    t = await startTestCluster({
      env: {
        MUSE_RATE_LIMIT_KEY_PER_SEC: String(KEY_RATE_PER_SEC),
        MUSE_JWT_JWKS_FILE: jwks,
        MUSE_JWT_ISSUER: JWT_ISSUER,
        MUSE_JWT_AUDIENCE: JWT_AUDIENCE,
        MUSE_MAX_JSON_DEPTH: '16',
        MUSE_MAX_JSON_ARRAY: '100',
      },
    });
    for (const name of ['team-a', 'team-b']) {
      const res = await http(t.gateway, 'POST', '/v1/projects', { name });
      assert.equal(res.status, 201, res.text);
    }
  });

  after(async () => {
    await t?.stop();
    if (jwks) rmSync(jwks, { force: true });
  });

  test('missing, malformed, wrong, unknown, revoked and expired credentials all get the same 401', async () => {
    const revoked = await createKey({ name: 'to-revoke', projects: ['team-a'], scopes: ['read'] });
    const expiring = await createKey({ name: 'short-lived', projects: ['team-a'], scopes: ['read'], expiresAt: new Date(Date.now() + 1500).toISOString() });
    assert.equal((await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(revoked.key))).status, 200);
    assert.equal((await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(expiring.key))).status, 200);
    assert.equal((await http(t.gateway, 'DELETE', `/v1/api-keys/${revoked.id}`)).status, 200);
    await new Promise((r) => setTimeout(r, 1600));

    const wrongSecret = `${revoked.prefix}${'x'.repeat(43)}`;
    const unknownId = `muse_ffffffffffff_${'y'.repeat(43)}`;
    const cases: Array<[string, Record<string, string>]> = [
      ['missing', NO_AUTH],
      ['not bearer', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }],
      ['malformed', bearer('muse_nope')],
      ['wrong secret', bearer(wrongSecret)],
      ['unknown id', bearer(unknownId)],
      ['revoked', bearer(revoked.key)],
      ['expired', bearer(expiring.key)],
      ['garbage JWT', bearer('eyJhbGciOiJIUzI1NiJ9.e30.c2ln')],
    ];
    const bodies = new Set<string>();
    for (const [what, headers] of cases) {
      const res = await http(t.gateway, 'GET', '/v1/runs', undefined, headers);
      assert.equal(res.status, 401, `${what}: ${res.text}`);
      bodies.add(res.text);
    }
    assert.equal(bodies.size, 1, `one body for every 401: ${[...bodies].join(' | ')}`);
    assert.equal(JSON.parse([...bodies][0]!).error.code, 'MUSE_ERR_AUTH_REQUIRED');
    // A body on a route that needs a key is not even read: 401, not 400.
    const bad = await http(t.gateway, 'POST', '/v1/runs', '{not json', NO_AUTH);
    assert.equal(bad.status, 401, bad.text);
    // Health, metrics and the API description stay open.
    for (const path of ['/health/live', '/health/ready', '/metrics', '/docs']) {
      assert.equal((await http(t.gateway, 'GET', path, undefined, NO_AUTH)).status, 200, path);
    }
  });

  test('a key revoked or deleted by another process (another gateway, redis-cli) is refused at once, though the gateway keeps keys in memory', async () => {
    const names = museNames(t.namespace);
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      for (const how of ['revoked', 'deleted'] as const) {
        const k = await createKey({ name: `changed-elsewhere-${how}`, projects: ['team-a'], scopes: ['read'] });
        // Read twice: the second request is served from the gateway's memory.
        for (let i = 0; i < 2; i++) assert.equal((await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(k.key))).status, 200);
        if (how === 'revoked') {
          const stored = JSON.parse((await redis.hget(names.apiKeysKey, k.id))!) as Record<string, unknown>;
          await redis.hset(names.apiKeysKey, k.id, JSON.stringify({ ...stored, revokedAt: new Date().toISOString() }));
        } else {
          await redis.hdel(names.apiKeysKey, k.id);
        }
        // Redis tells the gateway within moments; no request after that may pass.
        const changedAt = Date.now();
        let status = 200;
        // Polled every 50 ms, under the key's rate limit (KEY_RATE_PER_SEC).
        while (status === 200 && Date.now() - changedAt < 1_000) {
          status = (await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(k.key))).status;
          if (status === 200) await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(status, 401, `${how}: still accepted ${Date.now() - changedAt} ms after the change`);
        for (let i = 0; i < 3; i++) assert.equal((await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(k.key))).status, 401, how);
      }
    } finally {
      redis.disconnect();
    }
  });

  test('a workflow version registered by another process is what the next submission runs, though the gateway keeps versions in memory', async () => {
    const names = museNames(t.namespace);
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    const def = (n: number) => ({ name: 'kept-wf', steps: [{ id: 'echo', tool: 'shell', command: `echo version ${n}` }] });
    const submitted = async (): Promise<number> => {
      const res = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { workflow: 'kept-wf' });
      assert.equal(res.status, 202, res.text);
      const view = await http<{ workflow: { version: number } }>(t.gateway, 'GET', `/v1/runs/${res.body.id}`);
      assert.equal(view.status, 200, view.text);
      return view.body.workflow.version;
    };
    try {
      assert.equal((await http(t.gateway, 'POST', '/v1/workflows', def(1))).status, 201);
      // The second submission is served from the gateway's memory.
      for (let i = 0; i < 2; i++) assert.equal(await submitted(), 1);
      // Version 2 written straight in Redis, as another gateway's registration writes it.
      const key = names.workflowKey('default', 'kept-wf');
      await redis.hset(key, { latest: '2', 'digest:2': 'sha256:elsewhere', 'meta:2': JSON.stringify({ digest: 'sha256:elsewhere', createdAt: new Date().toISOString() }), 'def:2': JSON.stringify(def(2)) });
      const changedAt = Date.now();
      let version = 1;
      // Polled every 100 ms, under the key's rate limit (KEY_RATE_PER_SEC).
      while (version === 1 && Date.now() - changedAt < 1_000) {
        version = await submitted();
        if (version === 1) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(version, 2, `still version 1 ${Date.now() - changedAt} ms after version 2 was registered elsewhere`);
      // Registered through this gateway: the very next submission runs it.
      const third = await http<{ version: number }>(t.gateway, 'POST', '/v1/workflows', def(3));
      assert.equal(third.body.version, 3, third.text);
      assert.equal(await submitted(), 3);
    } finally {
      redis.disconnect();
    }
  });

  test('scopes: a read key cannot submit, an agent key can do nothing at the gateway, a write key cannot manage keys', async () => {
    const reader = await createKey({ name: 'reader', projects: ['team-a'], scopes: ['read'] });
    const agent = await createKey({ name: 'agent', projects: ['team-a'], scopes: ['agent'] });
    const writer = await createKey({ name: 'writer', projects: ['team-a'], scopes: ['write'] });

    const submit = await http(t.gateway, 'POST', '/v1/runs', { definition: JOB }, bearer(reader.key));
    assert.equal(submit.status, 403, submit.text);
    assert.equal(submit.body.error.code, 'MUSE_ERR_AUTH_FORBIDDEN');
    assert.equal((await http(t.gateway, 'POST', '/v1/workflows', JOB, bearer(reader.key))).status, 403);
    assert.equal((await http(t.gateway, 'GET', '/v1/workflows', undefined, bearer(reader.key))).status, 200);

    for (const [method, path] of [['GET', '/v1/runs'], ['GET', '/v1/workflows'], ['POST', '/v1/runs']] as const) {
      const res = await http(t.gateway, method, path, method === 'POST' ? { definition: JOB } : undefined, bearer(agent.key));
      assert.equal(res.status, 403, `${method} ${path} with an agent key: ${res.text}`);
    }

    const run = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition: JOB }, bearer(writer.key));
    assert.equal(run.status, 202, run.text);
    assert.equal((await http(t.gateway, 'POST', '/v1/api-keys', { name: 'x', projects: ['team-a'], scopes: ['read'] }, bearer(writer.key))).status, 403);
    assert.equal((await http(t.gateway, 'GET', '/v1/audit', undefined, bearer(writer.key))).status, 403);
    assert.equal((await http(t.gateway, 'POST', '/v1/projects', { name: 'team-c' }, bearer(writer.key))).status, 403);
  });

  test("project A's key gets the same 404 for project B's run, events, artifacts and WebSocket subscription as for ids that do not exist", async () => {
    const a = await createKey({ name: 'a-writer', projects: ['team-a'], scopes: ['write'] });
    const b = await createKey({ name: 'b-writer', projects: ['team-b'], scopes: ['write'] });
    const submitted = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition: JOB }, bearer(b.key));
    assert.equal(submitted.status, 202, submitted.text);
    const runB = submitted.body.id;
    // waitForRun sends the bootstrap key (every project) with Muse-Project naming B's project.
    const done = await waitForRunIn(t, runB, 'team-b');
    assert.equal(done.status, 'succeeded');
    // Every state transition of the run is in the audit log too, in its project, with who made it.
    const trail = (await auditUntil((r) => r.action === 'run.completed' && r.target === runB)).filter((r) => r.target === runB || r.target?.startsWith(`${runB}/`));
    assert.deepEqual([...new Set(trail.map((r) => r.action))].filter((a) => a.startsWith('run.')), ['run.created', 'run.started', 'run.completed']);
    assert.ok(trail.every((r) => r.project === 'team-b' && r.status === undefined));
    const started = trail.find((r) => r.action === 'step.started');
    assert.ok(started && started.principal.startsWith('agent-worker'), JSON.stringify(started));
    const artifacts = await http<{ items: Array<{ id: string }> }>(t.gateway, 'GET', `/v1/runs/${runB}/artifacts`, undefined, bearer(b.key));
    assert.equal(artifacts.status, 200, artifacts.text);
    const artifactB = artifacts.body.items[0]!.id;
    assert.ok(artifactB);

    const missingRun = 'run_00000000000000000000000000';
    const pairs: Array<[string, string, string]> = [
      ['GET', `/v1/runs/${runB}`, `/v1/runs/${missingRun}`],
      ['GET', `/v1/runs/${runB}/events`, `/v1/runs/${missingRun}/events`],
      ['GET', `/v1/runs/${runB}/artifacts`, `/v1/runs/${missingRun}/artifacts`],
      ['POST', `/v1/runs/${runB}/cancel`, `/v1/runs/${missingRun}/cancel`],
      ['GET', `/v1/artifacts/${artifactB}`, `/v1/artifacts/art_doesnotexist`],
      ['GET', `/v1/artifacts/${artifactB}/content`, `/v1/artifacts/art_doesnotexist/content`],
    ];
    for (const [method, foreign, missing] of pairs) {
      const body = method === 'POST' ? {} : undefined;
      const f = await http(t.gateway, method, foreign, body, bearer(a.key));
      const m = await http(t.gateway, method, missing, body, bearer(a.key));
      assert.equal(f.status, 404, `${method} ${foreign}: ${f.text}`);
      assert.equal(m.status, 404, `${method} ${missing}: ${m.text}`);
      const idOf = (p: string) => p.split('/')[3]!;
      assert.equal(f.text.replaceAll(idOf(foreign), '<id>'), m.text.replaceAll(idOf(missing), '<id>'), `${method} ${foreign}: same body as a missing id`);
    }
    // B's own key sees it; A's run list does not have it.
    assert.equal((await http(t.gateway, 'GET', `/v1/runs/${runB}`, undefined, bearer(b.key))).status, 200);
    const listA = await http<{ items: Array<{ id: string }> }>(t.gateway, 'GET', '/v1/runs', undefined, bearer(a.key));
    assert.ok(!listA.body.items.some((r) => r.id === runB));
    // Naming B's project with A's key is a 404 exactly like a project that does not exist.
    const other = await http(t.gateway, 'GET', '/v1/runs', undefined, { ...bearer(a.key), 'muse-project': 'team-b' });
    const none = await http(t.gateway, 'GET', '/v1/runs', undefined, { ...bearer(a.key), 'muse-project': 'team-zzz' });
    assert.equal(other.status, 404);
    assert.equal(other.text.replaceAll('team-b', '<p>'), none.text.replaceAll('team-zzz', '<p>'));

    // WebSocket: A cannot subscribe to B's run; B can.
    const wsA = await StreamRecorder.open(t.gateway, { apiKey: a.key });
    wsA.send({ op: 'subscribe', runId: runB });
    await wsA.until((r) => r.messages.some((m) => m.type === 'error'));
    const err = wsA.messages.find((m) => m.type === 'error') as unknown as { error: { code: string } };
    assert.equal(err.error.code, 'MUSE_ERR_RUN_NOT_FOUND');
    assert.equal(wsA.events.length, 0);
    wsA.close();
    const wsB = await StreamRecorder.open(t.gateway, { apiKey: b.key });
    wsB.send({ op: 'subscribe', runId: runB });
    await wsB.until((r) => r.events.some((e: RunEvent) => e.type === 'run.completed'));
    wsB.close();
  });

  test('WebSocket: refused at the handshake without a valid credential; ?access_token= works for browsers', async () => {
    for (const url of [`${wsUrl(t)}/v1/stream`, `${wsUrl(t)}/v1/stream?access_token=muse_ffffffffffff_${'z'.repeat(43)}`]) {
      const outcome = await new Promise<string>((resolve) => {
        const ws = new WebSocket(url);
        ws.addEventListener('open', () => {
          resolve('open');
          ws.close();
        });
        ws.addEventListener('message', () => resolve('message'));
        ws.addEventListener('error', () => resolve('refused'));
      });
      assert.equal(outcome, 'refused', url);
    }
    // The raw handshake: a plain HTTP 401 with the same body as REST, never a 101.
    const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${t.gateway}/v1/stream`, {
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      });
      req.on('upgrade', () => reject(new Error('upgraded without a credential')));
      req.on('response', (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(refused.status, 401);
    assert.equal(refused.body, (await http(t.gateway, 'GET', '/v1/runs', undefined, NO_AUTH)).text);
    const ok = await new Promise<string>((resolve) => {
      const ws = new WebSocket(`${wsUrl(t)}/v1/stream?access_token=${encodeURIComponent(t.apiKey)}`);
      ws.addEventListener('open', () => ws.send(JSON.stringify({ op: 'ping' })));
      ws.addEventListener('message', (m) => {
        resolve(JSON.parse(String(m.data)).type);
        ws.close();
      });
      ws.addEventListener('error', () => resolve('refused'));
    });
    assert.equal(ok, 'pong');
  });

  test('WebSocket: a key revoked during a session is refused at its next subscription (close 1008)', async () => {
    const k = await createKey({ name: 'ws-revoked', projects: ['team-a'], scopes: ['read'] });
    const ws = new WebSocket(`${wsUrl(t)}/v1/stream`, { headers: bearer(k.key) });
    const types: string[] = [];
    const closed = new Promise<number>((resolve) => ws.addEventListener('close', (e) => resolve(e.code)));
    ws.addEventListener('message', (m) => types.push(JSON.parse(String(m.data)).type));
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error('refused')), { once: true });
    });
    ws.send(JSON.stringify({ op: 'subscribe', runId: 'run_00000000000000000000000000' }));
    const deadline = Date.now() + 5_000;
    while (!types.includes('error') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(types, ['error'], 'a missing run is an error message; the connection stays');
    assert.equal((await http(t.gateway, 'DELETE', `/v1/api-keys/${k.id}`)).status, 200);
    ws.send(JSON.stringify({ op: 'subscribe', runId: 'run_00000000000000000000000001' }));
    assert.equal(await closed, 1008);
  });

  test('a flood from one key gets 429 with Retry-After while another key is served', async () => {
    const flood = await createKey({ name: 'flood', projects: ['team-a'], scopes: ['read'] });
    const calm = await createKey({ name: 'calm', projects: ['team-a'], scopes: ['read'] });
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: KEY_RATE_PER_SEC * 3 }, () => http(t.gateway, 'GET', '/v1/workflows', undefined, bearer(flood.key))));
    // One-second fixed windows: a flood spread over n seconds may touch n + 1 of them (a slow, shared machine).
    const windows = Math.ceil((Date.now() - started) / 1000) + 1;
    const limited = results.filter((r) => r.status === 429);
    const served = results.filter((r) => r.status === 200);
    assert.equal(limited.length + served.length, results.length);
    assert.ok(served.length <= KEY_RATE_PER_SEC * windows, `${served.length} served in ${windows} windows`);
    assert.ok(limited.length > 0, `none of ${results.length} limited`);
    assert.equal(limited[0]!.body.error.code, 'MUSE_ERR_RATE_LIMITED');
    assert.match(limited[0]!.headers.get('retry-after') ?? '', /^[1-9][0-9]*$/);
    const calmAnswer = await http(t.gateway, 'GET', '/v1/workflows', undefined, bearer(calm.key));
    assert.equal(calmAnswer.status, 200, calmAnswer.text);
  });

  test('oversized, deeply nested and too-long bodies get 413/400 and the gateway keeps serving; unknown fields are refused', async () => {
    // The gateway answers 413 from Content-Length and closes while the client still writes: fetch then reports only
    // its EPIPE, so read the answer with node:http, which delivers a response that came before the write failed.
    const big = await postOversized(`${t.gateway}/v1/runs`, t.apiKey, JSON.stringify({ definition: JOB, input: { x: 'a'.repeat(2 * 1024 * 1024) } }));
    assert.equal(big.status, 413, big.text.slice(0, 200));
    assert.equal(JSON.parse(big.text).error.code, 'MUSE_ERR_REQUEST_TOO_LARGE');
    const deep = await http(t.gateway, 'POST', '/v1/runs', `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`);
    assert.equal(deep.status, 400, deep.text);
    assert.equal(deep.body.error.code, 'MUSE_ERR_REQUEST_TOO_COMPLEX');
    const veryDeep = await http(t.gateway, 'POST', '/v1/runs', `${'['.repeat(200_000)}${']'.repeat(200_000)}`);
    assert.equal(veryDeep.status, 400, veryDeep.text.slice(0, 200));
    const wide = await http(t.gateway, 'POST', '/v1/runs', { definition: JOB, input: { list: Array.from({ length: 101 }, (_, i) => i) } });
    assert.equal(wide.status, 400, wide.text);
    assert.equal(wide.body.error.code, 'MUSE_ERR_REQUEST_TOO_COMPLEX');
    const unknown = await http(t.gateway, 'POST', '/v1/projects', { name: 'team-x', owner: 'me' });
    assert.equal(unknown.status, 400, unknown.text);
    assert.equal(unknown.body.error.code, 'MUSE_ERR_REQUEST_INVALID');
    assert.equal((await http(t.gateway, 'GET', '/health/ready', undefined, NO_AUTH)).status, 200);
    assert.equal((await http(t.gateway, 'GET', '/v1/workflows')).status, 200);
  });

  test('key rotation without downtime: old and new keys both work until the old one is revoked', async () => {
    const old = await createKey({ name: 'ci-2026-10', projects: ['team-a'], scopes: ['write'] });
    const fresh = await createKey({ name: 'ci-2026-11', projects: ['team-a'], scopes: ['write'] });
    for (const k of [old, fresh]) assert.equal((await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(k.key))).status, 200);
    const listed = await http<{ items: Array<Record<string, unknown>> }>(t.gateway, 'GET', '/v1/api-keys');
    const entry = listed.body.items.find((k) => k.id === old.id)!;
    assert.equal(entry.prefix, `muse_${old.id}_`);
    assert.ok(!('key' in entry) && !('hash' in entry), 'listings never show the secret or its hash');
    assert.ok(!listed.text.includes(old.key.slice(old.prefix.length)), 'the secret appears nowhere in the listing');
    assert.equal((await http(t.gateway, 'DELETE', `/v1/api-keys/${old.id}`)).status, 200);
    assert.equal((await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(old.key))).status, 401);
    assert.equal((await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(fresh.key))).status, 200);
    assert.equal((await http(t.gateway, 'DELETE', '/v1/api-keys/ffffffffffff')).status, 404);
  });

  test('an admin of one project manages keys and reads the audit log of that project only', async () => {
    const adminA = await createKey({ name: 'a-admin', projects: ['team-a'], scopes: ['admin'] });
    const asA = bearer(adminA.key);
    // It cannot reach beyond its project: B is "not found", "*" and new projects are forbidden.
    assert.equal((await http(t.gateway, 'POST', '/v1/api-keys', { name: 'x', projects: ['team-b'], scopes: ['read'] }, asA)).status, 404);
    assert.equal((await http(t.gateway, 'POST', '/v1/api-keys', { name: 'x', projects: ['*'], scopes: ['read'] }, asA)).status, 403);
    assert.equal((await http(t.gateway, 'POST', '/v1/projects', { name: 'team-c' }, asA)).status, 403);
    const projects = await http<{ items: Array<{ name: string }> }>(t.gateway, 'GET', '/v1/projects', undefined, asA);
    assert.deepEqual(projects.body.items.map((p) => p.name), ['team-a']);
    const keysA = await http<{ items: Array<{ projects: string[] }> }>(t.gateway, 'GET', '/v1/api-keys', undefined, asA);
    assert.ok(keysA.body.items.length > 0 && keysA.body.items.every((k) => k.projects.join() === 'team-a'));
    const b = await createKey({ name: 'b-audit', projects: ['team-b'], scopes: ['write'] });
    const runB = await http(t.gateway, 'POST', '/v1/runs', { definition: JOB }, bearer(b.key));
    assert.equal(runB.status, 202);
    const reader = await createKey({ name: 'a-reader', projects: ['team-a'], scopes: ['read'] }, asA);
    const denied = await http(t.gateway, 'POST', '/v1/runs', { definition: JOB }, bearer(reader.key));
    assert.equal(denied.status, 403);

    // The all-projects admin sees B's submission and A's denial, with principal, project, action, target and outcome.
    const all = await auditUntil((r) => r.principal === `key:${reader.id}` && r.outcome === 'denied');
    const submit = all.find((r) => r.principal === `key:${b.id}` && r.action === 'POST /v1/runs');
    assert.ok(submit, 'the submission is audited');
    assert.equal(submit.project, 'team-b');
    assert.equal(submit.outcome, 'allowed');
    assert.equal(submit.status, 202);
    const deniedRecord = all.find((r) => r.principal === `key:${reader.id}`)!;
    assert.deepEqual([deniedRecord.project, deniedRecord.action, deniedRecord.status, deniedRecord.code], ['team-a', 'POST /v1/runs', 403, 'MUSE_ERR_AUTH_FORBIDDEN']);
    assert.ok(all.some((r) => r.principal === 'anonymous' && r.status === 401), 'a request without a credential is audited');
    const revoke = all.find((r) => r.action === 'DELETE /v1/api-keys/:id' && r.outcome === 'allowed');
    assert.ok(revoke?.target, 'a revocation names its target key');

    // A's admin sees A's records only.
    const onlyA = await auditUntil((r) => r.principal === `key:${reader.id}`, asA);
    assert.ok(onlyA.length > 0 && onlyA.every((r) => r.project === 'team-a'));
    assert.equal((await http(t.gateway, 'GET', '/v1/audit?project=team-b', undefined, asA)).status, 404);
  });

  test('JWT bearer tokens: verified against the JWKS; issuer, audience and expiry checked; claims give projects and scopes', async () => {
    const sign = (claims: Record<string, unknown>, opts: { iss?: string; aud?: string; exp?: string } = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject('alice')
        .setIssuer(opts.iss ?? JWT_ISSUER)
        .setAudience(opts.aud ?? JWT_AUDIENCE)
        .setIssuedAt()
        .setExpirationTime(opts.exp ?? '5m')
        .sign(jwtPrivate);
    const good = await sign({ muse_projects: ['team-a'], scope: 'read write' });
    const run = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition: JOB }, bearer(good));
    assert.equal(run.status, 202, run.text);
    assert.equal((await http(t.gateway, 'GET', `/v1/runs/${run.body.id}`, undefined, bearer(good))).status, 200);
    const readOnly = await sign({ muse_projects: 'team-a', scope: 'read' });
    assert.equal((await http(t.gateway, 'POST', '/v1/runs', { definition: JOB }, bearer(readOnly))).status, 403);
    const onlyB = await sign({ muse_projects: ['team-b'], scope: 'read' });
    assert.equal((await http(t.gateway, 'GET', `/v1/runs/${run.body.id}`, undefined, bearer(onlyB))).status, 404);
    for (const bad of [
      await sign({ muse_projects: ['team-a'], scope: 'read' }, { aud: 'someone-else' }),
      await sign({ muse_projects: ['team-a'], scope: 'read' }, { iss: 'https://evil.test' }),
      await sign({ muse_projects: ['team-a'], scope: 'read' }, { exp: '-1m' }),
      await sign({ scope: 'read' }),
      `${good.slice(0, -4)}AAAA`,
    ]) {
      const res = await http(t.gateway, 'GET', '/v1/runs', undefined, bearer(bad));
      assert.equal(res.status, 401, res.text);
    }
  });
});

describe('the CLI manages projects and keys', { timeout: 120_000 }, () => {
  let t: TestCluster;
  before(async () => {
    t = await startTestCluster();
  });
  after(async () => {
    await t?.stop();
  });

  test('muse projects create|list and muse keys create|list|revoke, with the key from MUSE_API_KEY or --api-key', async () => {
    const muse = async (env: Record<string, string>, ...args: string[]) => {
      try {
        const r = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'apps/cli/dist/main.js'), '--gateway', t.gateway, ...args], {
          env: { ...process.env, MUSE_HOME: join(t.dataDir, 'no-home'), ...env },
        });
        return { code: 0, out: r.stdout, err: r.stderr };
      } catch (e) {
        const x = e as { code: number; stdout: string; stderr: string };
        return { code: x.code, out: x.stdout, err: x.stderr };
      }
    };
    const admin = { MUSE_API_KEY: t.apiKey };
    const none = await muse({}, 'projects', 'list');
    assert.equal(none.code, 1);
    assert.match(none.err, /MUSE_ERR_AUTH_REQUIRED/);
    assert.equal((await muse(admin, 'projects', 'create', 'cli-team')).code, 0);
    assert.match((await muse(admin, 'projects', 'list')).out, /cli-team/);
    const created = await muse(admin, '--json', 'keys', 'create', 'cli-reader', '-p', 'cli-team', '-s', 'read');
    assert.equal(created.code, 0, created.err);
    const key = JSON.parse(created.out) as { id: string; key: string };
    const asReader = await muse({}, '--api-key', key.key, 'runs');
    assert.equal(asReader.code, 0, asReader.err);
    const listed = await muse(admin, 'keys', 'list');
    assert.match(listed.out, new RegExp(`${key.id}\\s+cli-reader\\s+cli-team\\s+read\\s+active`));
    assert.ok(!listed.out.includes(key.key));
    assert.equal((await muse(admin, 'keys', 'revoke', key.id)).code, 0);
    assert.match((await muse(admin, 'keys', 'list')).out, new RegExp(`${key.id}.*revoked`));
    const after = await muse({}, '--api-key', key.key, 'runs');
    assert.equal(after.code, 1);
    assert.match(after.err, /MUSE_ERR_AUTH_REQUIRED/);
  });
});

function wsUrl(t: TestCluster): string {
  return t.gateway.replace(/^http/, 'ws');
}

/** waitForRun, for a run outside the default project: the bootstrap key with `Muse-Project`. */
async function waitForRunIn(t: TestCluster, id: string, project: string) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const res = await http(t.gateway, 'GET', `/v1/runs/${id}`, undefined, { ...bearer(t.apiKey), 'muse-project': project });
    if (res.status === 200 && ['succeeded', 'failed', 'cancelled'].includes(res.body.status)) return res.body as { status: string };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`run ${id} did not finish`);
}

/** POSTs `body` and resolves with the answer, even when the server answered and closed before the body was all sent. */
function postOversized(url: string, key: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      clearTimeout(bodyLater);
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, text });
        req.destroy();
      });
      res.on('error', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    // A write error after the answer arrived is the server closing early, which the answer already explains.
    req.on('error', (err) => setTimeout(() => reject(err), 1_000).unref());
    // The headers go first: a gateway that judges by Content-Length answers before any of the body is written, so its
    // closing cannot fail a write still under way (EPIPE) and lose the answer. One that waits for the body gets it.
    req.flushHeaders();
    const bodyLater = setTimeout(() => req.end(body), 2_000);
  });
}
