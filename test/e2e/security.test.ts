/**
 * Security between services, end to end, against real servers started by
 * the test on random loopback ports (never the shared NATS and Redis):
 *
 * - nats-server with the generated config (one user per service, least
 *   privilege): anonymous and wrong-password connections are refused, a
 *   publish or subscribe outside a user's permissions is refused by the
 *   server, and credentials rotate with two valid at once.
 * - a whole cluster (every service its own process) on that nats-server,
 *   each service with its own user, and on a redis-server whose only app user
 *   may touch `<ns>:*` and `mutex:<ns>:*` keys; a run with a canary secret
 *   succeeds, and the canary is nowhere in events, run views, artifacts,
 *   service logs, Redis, the NATS streams or the prompt the provider got.
 *
 * (The gateway's API keys, projects and audit are tested in gateway-security.test.ts.)
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, nkeyAuthenticator, nkeys, PermissionViolationError, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { Redis } from 'ioredis';
import { museNames, type MuseNames } from '@muse/contracts';
import { JetStreamBus, natsAuthFromConfig, natsServerConfig, NATS_SERVICE_ROLES, type NatsServiceRole, type NatsUserEntry } from '@muse/messaging';
import { FakeModelServer } from '@muse/providers/testing';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';
import { natsStoreDir, startNatsServer, startRedisServer, type PrivateServer } from '../support/secure-servers.js';

/** The checkout (this file runs from test/dist/e2e/). */
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const pw = (): string => randomBytes(18).toString('base64url');
const newNamespace = (): string => `t-${randomBytes(5).toString('hex')}`;
type NatsServer = Awaited<ReturnType<typeof startNatsServer>>;

function usersFor(passwords: Record<string, string>, suffix = ''): NatsUserEntry[] {
  return [...NATS_SERVICE_ROLES, 'admin' as const].map((role) => ({ role, user: `muse-${role}${suffix}`, password: passwords[role]! }));
}
const allPasswords = (): Record<string, string> => Object.fromEntries([...NATS_SERVICE_ROLES, 'admin'].map((r) => [r, pw()]));

/** The first permission violation the server reports on `nc` within `ms`, or null. */
async function nextViolation(nc: NatsConnection, ms = 3_000): Promise<PermissionViolationError | null> {
  const it = nc.status()[Symbol.asyncIterator]();
  const timer = new Promise<null>((r) => setTimeout(() => r(null), ms).unref());
  while (true) {
    const next = await Promise.race([it.next(), timer]);
    if (next === null || next.done) return null;
    const s = next.value;
    if (s.type === 'error' && s.error instanceof PermissionViolationError) return s.error;
  }
}

describe('NATS: per-service users with least-privilege permissions (generated config, real nats-server)', () => {
  let dir: string;
  let nats: NatsServer;
  let names: MuseNames;
  const passwords = allPasswords();
  const open: NatsConnection[] = [];
  const config = (users: NatsUserEntry[]): string => natsServerConfig({ names, users, storeDir: natsStoreDir(dir) });
  const as = async (role: NatsServiceRole | 'admin', password = passwords[role]!, user = `muse-${role}`): Promise<NatsConnection> => {
    const nc = await connect({ servers: nats.url, user, pass: password, maxReconnectAttempts: 0 });
    open.push(nc);
    return nc;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'muse-nats-sec-'));
    names = museNames(newNamespace());
    nats = await startNatsServer(dir, config(usersFor(passwords)));
  });
  after(async () => {
    for (const nc of open) await nc.close().catch(() => undefined);
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a connection without credentials, or with a wrong password, is refused', async () => {
    await assert.rejects(connect({ servers: nats.url, maxReconnectAttempts: 0 }), /Authorization Violation/i);
    await assert.rejects(connect({ servers: nats.url, user: 'muse-gateway', pass: 'wrong', maxReconnectAttempts: 0 }), /Authorization Violation/i);
    // Another service's password does not open this service's user.
    await assert.rejects(connect({ servers: nats.url, user: 'muse-gateway', pass: passwords.coordinator!, maxReconnectAttempts: 0 }), /Authorization Violation/i);
  });

  test("publishing or subscribing outside a user's permissions is refused by the server", async () => {
    // An agent worker may report steps but not submit runs.
    const worker = await as('agent-worker');
    const pending = nextViolation(worker);
    worker.publish(names.commandSubject('run-submit'), '{}');
    const v = await pending;
    assert.ok(v, 'the server reported a permission violation');
    assert.equal(v.operation, 'publish');
    assert.equal(v.subject, names.commandSubject('run-submit'));

    // The gateway may not append to a run log, nor listen to artifact commits.
    const gw = await as('gateway');
    const pub = nextViolation(gw);
    gw.publish(names.runSubject('run_x'), '{}');
    assert.equal((await pub)?.subject, names.runSubject('run_x'));
    const sub = gw.subscribe(names.artifactCommitSubject);
    await assert.rejects(
      (async () => {
        for await (const _m of sub) break;
      })(),
      (err: unknown) => err instanceof PermissionViolationError && err.operation === 'subscription',
    );
  });

  test('each service user can do its own job: streams, commands, requests and replies', async () => {
    // Streams as every service ensures them at boot.
    const coordBus = await JetStreamBus.connect({ url: nats.url, names, name: 't-coord', auth: { user: 'muse-coordinator', password: passwords.coordinator! } });
    const gwBus = await JetStreamBus.connect({ url: nats.url, names, name: 't-gw', auth: { user: 'muse-gateway', password: passwords.gateway! } });
    try {
      await coordBus.ensureStreams();
      await gwBus.ensureStreams();
      const ack = await gwBus.publishCommand({ kind: 'run-cancel', runId: 'run_perm1', project: 'default' } as never);
      assert.ok(ack.seq > 0);
      // A worker cannot store a run submission in JetStream: the server refuses it (no ack ever comes).
      const worker = await as('agent-worker');
      await assert.rejects(jetstream(worker).publish(names.commandSubject('run-submit'), '{}', { timeout: 1_500 }));
      // The artifact store answers requests; the coordinator asks.
      const store = await as('artifact-store');
      const sub = store.subscribe(names.artifactCommitSubject, { callback: (_e, m) => void m.respond('pong') });
      await store.flush();
      const coord = await as('coordinator');
      const res = await coord.request(names.artifactCommitSubject, 'ping', { timeout: 2_000 });
      assert.equal(res.string(), 'pong');
      sub.unsubscribe();
    } finally {
      await gwBus.close();
      await coordBus.close();
    }
  });

  test('rotation: old and new credentials both work during the grace period; after it, only the new', async () => {
    const next = allPasswords();
    const oldConn = await as('gateway');
    // 1. Both generations valid (`--credential gateway --credential gateway:2`), reload.
    await nats.reload(config([...usersFor(passwords), ...usersFor(next, '-2')]));
    oldConn.publish(names.commandSubject('run-submit'), '{}');
    await oldConn.flush();
    assert.equal(oldConn.isClosed(), false, 'the connection made with the old credential keeps working');
    const newConn = await as('gateway', next.gateway!, 'muse-gateway-2');
    newConn.publish(names.commandSubject('run-submit'), '{}');
    await newConn.flush();
    // A service (re)started with the old credential still connects during the grace period.
    const lateOld = await as('gateway');
    await lateOld.flush();
    // 2. Grace period over: only the new generation; reload.
    const closed = oldConn.closed();
    await nats.reload(config(usersFor(next, '-2')));
    await assert.rejects(connect({ servers: nats.url, user: 'muse-gateway', pass: passwords.gateway!, maxReconnectAttempts: 0 }), /Authorization Violation/i);
    // nats-server closes the connections of a removed user on reload; the new one is untouched.
    await Promise.race([closed, new Promise((_, reject) => setTimeout(() => reject(new Error('old connection still open')), 5_000).unref())]);
    await newConn.flush();
    assert.equal(newConn.isClosed(), false);
  });
});

describe('NATS: a service user known by its nkey (NATS_NKEY_SEED_FILE, real nats-server)', () => {
  let dir: string;
  let nats: NatsServer;
  let names: MuseNames;
  const coordinator = nkeys.createUser();
  const intruder = nkeys.createUser();
  let seedFile: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'muse-nats-nkey-'));
    names = museNames(newNamespace());
    seedFile = join(dir, 'coordinator.nk');
    writeFileSync(seedFile, `${new TextDecoder().decode(coordinator.getSeed())}\n`, { mode: 0o600 });
    const users: NatsUserEntry[] = [{ role: 'coordinator', nkey: coordinator.getPublicKey() }, { role: 'gateway', user: 'muse-gateway', password: pw() }];
    nats = await startNatsServer(dir, natsServerConfig({ names, users, storeDir: natsStoreDir(dir) }));
  });
  after(async () => {
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the service connects by signing with its seed, under its role\'s permissions; another seed or none is refused', async () => {
    assert.match(readFileSync(join(dir, 'nats-server.conf'), 'utf8'), new RegExp(`nkey: "${coordinator.getPublicKey()}"`));
    const bus = await JetStreamBus.connect({ url: nats.url, names, name: 't-nkey', auth: natsAuthFromConfig({ NATS_NKEY_SEED_FILE: seedFile }) });
    try {
      await bus.ensureStreams();
    } finally {
      await bus.close();
    }
    // The same identity, raw: its role's permissions hold (a coordinator publishes no heartbeats of agents).
    const nc = await connect({ servers: nats.url, authenticator: nkeyAuthenticator(coordinator.getSeed()), maxReconnectAttempts: 0 });
    try {
      const pending = nextViolation(nc);
      nc.publish(names.agentHeartbeatSubject, '{}');
      assert.equal((await pending)?.subject, names.agentHeartbeatSubject, 'the server applied the coordinator\'s permissions to the nkey user');
    } finally {
      await nc.close();
    }
    const other = join(dir, 'intruder.nk');
    writeFileSync(other, new TextDecoder().decode(intruder.getSeed()), { mode: 0o600 });
    await assert.rejects(JetStreamBus.connect({ url: nats.url, names, name: 't-intruder', auth: natsAuthFromConfig({ NATS_NKEY_SEED_FILE: other }) }), /Authorization Violation/i);
    await assert.rejects(connect({ servers: nats.url, maxReconnectAttempts: 0 }), /Authorization Violation/i);
  });
});

describe('NATS and Redis over TLS (generated tls block and NATS_TLS_CA; rediss:// with NODE_EXTRA_CA_CERTS)', () => {
  let dir: string;
  let nats: NatsServer;
  let redisTls: PrivateServer;
  const names = museNames(newNamespace());
  const passwords = allPasswords();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'muse-nats-tls-'));
    // A throw-away CA and a server certificate for 127.0.0.1, made with the openssl CLI.
    const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=muse-test-ca');
    ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    ossl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '1', '-extfile', 'san.ext');
    nats = await startNatsServer(
      dir,
      natsServerConfig({ names, users: usersFor(passwords), storeDir: natsStoreDir(dir), tls: { cert: join(dir, 'server.pem'), key: join(dir, 'server.key') } }),
    );
  });
  after(async () => {
    await nats?.stop();
    await redisTls?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a service connects to Redis over rediss:// trusting a private CA from NODE_EXTRA_CA_CERTS; without it the handshake fails', async () => {
    const redisPw = pw();
    redisTls = await startRedisServer(join(dir, 'redis'), [`user default off`, `user muse-app on >${redisPw} ~* &* +@all`], { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), ca: join(dir, 'ca.pem') });
    const url = `rediss://muse-app:${redisPw}@127.0.0.1:${redisTls.port}`;
    // The services' own connection code (libs/queues createRedis), in a process of its own: NODE_EXTRA_CA_CERTS is read at start.
    const probe = [
      "import { createRedis } from '@muse/queues';",
      'const r = createRedis(process.argv[1], { maxRetriesPerRequest: 0, retryStrategy: () => null });',
      "r.on('error', () => undefined);",
      "try { console.log(await r.ping()); process.exit(0); } catch (e) { console.error(String(e)); process.exit(3); }",
    ].join('\n');
    const run = (env: Record<string, string>) => spawnSync(process.execPath, ['--input-type=module', '-e', probe, url], { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 20_000 });
    const ok = run({ NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') });
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), 'PONG');
    const refused = run({});
    // ioredis reports the failed TLS handshake as a closed connection.
    assert.notEqual(refused.status, 0, 'a connection without the CA must fail');
    assert.doesNotMatch(refused.stdout, /PONG/);
  });

  test('a service with NATS_TLS_CA connects over TLS; without the CA the handshake fails', async () => {
    const bus = await JetStreamBus.connect({ url: nats.url, names, name: 't-tls', auth: { user: 'muse-coordinator', password: passwords.coordinator!, tlsCa: join(dir, 'ca.pem') } });
    try {
      await bus.ensureStreams();
      assert.equal(bus.nc.info?.tls_required, true);
    } finally {
      await bus.close();
    }
    await assert.rejects(
      JetStreamBus.connect({ url: nats.url, names, name: 't-tls-noca', auth: { user: 'muse-coordinator', password: passwords.coordinator! } }).then((b) => b.close()),
    );
  });
});

describe('a whole cluster on per-service NATS users and an ACL-restricted Redis user, with a canary secret', () => {
  let dir: string;
  let nats: NatsServer;
  let redis: PrivateServer;
  let t: TestCluster;
  let names: MuseNames;
  /** The model provider the workers call: an OpenAI-compatible server on loopback that records every request. */
  let model: FakeModelServer;
  const modelKey = `sk-${randomBytes(12).toString('hex')}`;
  const namespace = newNamespace();
  const passwords = allPasswords();
  const redisAdminPw = pw();
  const redisAppPw = pw();
  /** What must never leak; the file-borne one proves MUSE_SECRETS_DIR. */
  const canary = `canary-${randomBytes(12).toString('hex')}`;
  const fileCanary = `filecanary-${randomBytes(12).toString('hex')}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'muse-sec-cluster-'));
    names = museNames(namespace);
    nats = await startNatsServer(join(dir, 'nats'), natsServerConfig({ names, users: usersFor(passwords), storeDir: natsStoreDir(join(dir, 'nats')) }));
    // BullMQ's keys are `<ns>:bull:…`, Muse's own `<ns>:…`, redis-semaphore's locks `mutex:<ns>:…`.
    // No admin or dangerous commands, except what BullMQ and ioredis need: INFO (version check) and CLIENT SETNAME.
    redis = await startRedisServer(join(dir, 'redis'), [
      `user default on >${redisAdminPw} ~* &* +@all`,
      `user muse-app on >${redisAppPw} ~${namespace}:* ~mutex:${namespace}:* &* +@all -@admin -@dangerous +info +client`,
    ]);
    const secretsDir = join(dir, 'secrets');
    mkdirSync(secretsDir);
    writeFileSync(join(secretsDir, 'FILE_TOKEN'), `${fileCanary}\n`);
    model = await FakeModelServer.start('openai', { apiKey: modelKey });
    const providers = { providers: { fake: { type: 'openai', baseUrl: model.baseUrl, apiKeyEnv: 'MUSE_TEST_MODEL_KEY' } }, chains: { default: ['fake'] } };
    const natsEnv = (role: NatsServiceRole) => ({ NATS_USER: `muse-${role}`, NATS_PASSWORD: passwords[role]! });
    t = await startTestCluster({
      namespace,
      natsUrl: nats.url,
      redisUrl: `redis://muse-app:${redisAppPw}@127.0.0.1:${redis.port}`,
      serviceEnv: {
        gateway: natsEnv('gateway'),
        coordinator: natsEnv('coordinator'),
        'agent-worker': {
          ...natsEnv('agent-worker'),
          MUSE_SECRET_CANARY_TOKEN: canary,
          MUSE_SECRETS_DIR: secretsDir,
          MUSE_PROVIDERS_CONFIG: JSON.stringify(providers),
          MUSE_TEST_MODEL_KEY: modelKey,
        },
        // The NATS Object Store backend, so its bucket works under the artifact store's permissions too.
        'artifact-store': { ...natsEnv('artifact-store'), MUSE_ARTIFACT_BACKEND: 'nats' },
        observability: natsEnv('observability'),
        scaler: natsEnv('scaler'),
      },
    });
  });
  after(async () => {
    await t?.stop();
    await nats?.stop();
    await redis?.stop();
    await model?.close();
    if (!process.env.MUSE_KEEP_TEST_DATA) rmSync(dir, { recursive: true, force: true });
  });

  test('a wrong Redis password, or a key outside the namespace, is refused', async () => {
    const bad = new Redis(`redis://muse-app:wrong@127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    const errors: Error[] = [];
    bad.on('error', (e: Error) => errors.push(e));
    await assert.rejects(bad.connect());
    bad.disconnect();
    assert.match(String(errors[0]), /WRONGPASS/);
    const app = new Redis(`redis://muse-app:${redisAppPw}@127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0 });
    try {
      await assert.rejects(app.set('other-namespace:key', '1'), /NOPERM/);
      assert.equal(await app.set(`${namespace}:probe`, '1'), 'OK');
      await app.del(`${namespace}:probe`);
    } finally {
      app.disconnect();
    }
  });

  test("the gateway's key cache tracks its keys under the app user's rights (CLIENT TRACKING in broadcast mode)", async () => {
    const admin = new Redis(`redis://default:${redisAdminPw}@127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0 });
    try {
      const deadline = Date.now() + 10_000;
      let line: string | undefined;
      while (!line && Date.now() < deadline) {
        line = ((await admin.call('CLIENT', 'LIST')) as string).split('\n').find((l) => l.includes('name=muse-gateway-tracking ') && l.includes('user=muse-app'));
        if (!line) await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(line, 'the gateway opened its tracking connection as the app user');
      // t: tracking on, B: broadcast mode; sub=1: subscribed to the invalidations.
      const flags = /\bflags=(\S+)/.exec(line)![1]!;
      assert.ok(flags.includes('t') && flags.includes('B'), `flags=${flags}`);
      assert.match(line, /\bsub=1\b/);
    } finally {
      admin.disconnect();
    }
  });

  test('a run whose steps see secrets succeeds, and the secret values appear nowhere', async () => {
    const def = {
      name: 'canary',
      steps: [
        // Prints both secrets on stdout and on stderr, and writes one into a workspace file (not an artifact).
        { id: 'leak', tool: 'shell', command: 'echo "token=$CANARY_TOKEN file=$FILE_TOKEN"; echo "err $CANARY_TOKEN" >&2; echo "$CANARY_TOKEN" > kept.txt', secrets: ['CANARY_TOKEN', 'FILE_TOKEN'] },
        { id: 'review', agent: 'reviewer', needs: ['leak'], prompt: 'Check {{ steps.leak.output.stdout }}' },
      ],
    };
    const failing = {
      name: 'canary-fails',
      steps: [{ id: 'boom', tool: 'shell', command: 'echo "dying with $CANARY_TOKEN" >&2; exit 3', secrets: ['CANARY_TOKEN'], maxAttempts: 1 }],
    };
    const missing = { name: 'canary-missing', steps: [{ id: 'nope', tool: 'shell', command: 'true', secrets: ['NOT_CONFIGURED'] }] };

    const runs: string[] = [];
    for (const d of [def, failing, missing]) {
      const sub = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition: d });
      assert.equal(sub.status, 202, sub.text);
      runs.push(sub.body.id);
    }
    const [ok, bad, miss] = await Promise.all(runs.map((id) => waitForRun(t.gateway, id)));
    assert.equal(ok!.status, 'succeeded', JSON.stringify(ok));
    assert.equal(bad!.status, 'failed');
    assert.equal(miss!.status, 'failed');
    assert.equal(miss!.steps.find((s) => s.id === 'nope')!.error?.code, 'MUSE_ERR_STEP_SECRET_MISSING');

    const leak = ok!.steps.find((s) => s.id === 'leak')!.output as { stdout: string; stderr: string };
    assert.equal(leak.stdout, 'token=[redacted:CANARY_TOKEN] file=[redacted:FILE_TOKEN]\n', 'the step saw both secrets; its output has them scrubbed');
    assert.equal(leak.stderr, 'err [redacted:CANARY_TOKEN]\n');
    // The model server got the prompt with the secrets scrubbed (and quotes it back).
    const review = ok!.steps.find((s) => s.id === 'review')!.output as { text: string };
    assert.match(review.text, /^openai says: Check token=\[redacted:CANARY_TOKEN\]/);
    assert.ok(model.requests.length >= 1, 'the provider was called');
    const sent = JSON.stringify(model.requests.map((r) => r.body));
    assert.ok(sent.includes('token=[redacted:CANARY_TOKEN] file=[redacted:FILE_TOKEN]'), sent);
    // The secret did reach the step: the workspace file holds the real value.
    assert.equal(readFileSync(join(t.dataDir, 'workspaces', ok!.id, 'kept.txt'), 'utf8'), `${canary}\n`);

    const haystacks: Array<[string, string]> = [];
    for (const id of runs) {
      haystacks.push([`run ${id}`, (await http(t.gateway, 'GET', `/v1/runs/${id}`)).text]);
      haystacks.push([`events ${id}`, (await http(t.gateway, 'GET', `/v1/runs/${id}/events`)).text]);
      const arts = await http<{ items: Array<{ id: string }> }>(t.gateway, 'GET', `/v1/runs/${id}/artifacts`);
      assert.equal(arts.status, 200, arts.text);
      haystacks.push([`artifacts ${id}`, arts.text]);
      if (id === ok!.id) assert.equal(arts.body.items.length, 3, 'stdout.txt, response.md and the recorded call llm-call.json');
      for (const a of arts.body.items) {
        const content = await http(t.gateway, 'GET', `/v1/artifacts/${a.id}/content`);
        assert.equal(content.status, 200);
        haystacks.push([`artifact ${a.id}`, content.text]);
      }
    }
    haystacks.push(['provider requests', JSON.stringify(model.requests)]);
    // Every service's log file.
    const logDir = join(t.dataDir, 'logs');
    for (const f of readdirSync(logDir)) haystacks.push([`log ${f}`, readFileSync(join(logDir, f), 'utf8')]);
    // Every value in Redis (job payloads, read models, BullMQ's bookkeeping).
    const admin = new Redis(`redis://default:${redisAdminPw}@127.0.0.1:${redis.port}`);
    try {
      for (const key of await admin.keys('*')) {
        const type = await admin.type(key);
        const v =
          type === 'string' ? await admin.get(key)
          : type === 'hash' ? JSON.stringify(await admin.hgetall(key))
          : type === 'list' ? JSON.stringify(await admin.lrange(key, 0, -1))
          : type === 'set' ? JSON.stringify(await admin.smembers(key))
          : type === 'zset' ? JSON.stringify(await admin.zrange(key, '0', '-1'))
          : type === 'stream' ? JSON.stringify(await admin.xrange(key, '-', '+'))
          : '';
        haystacks.push([`redis ${key}`, v ?? '']);
      }
    } finally {
      admin.disconnect();
    }
    // Every message of the run-log and command streams (worker reports carry outputs and errors).
    const nc = await connect({ servers: nats.url, user: 'muse-admin', pass: passwords.admin! });
    try {
      const js = jetstream(nc);
      for (const stream of [names.runsStream, names.commandStream]) {
        const c = await js.consumers.get(stream);
        const msgs = await c.fetch({ max_messages: 10_000, expires: 2_000 });
        let n = 0;
        for await (const m of msgs) {
          haystacks.push([`${stream} #${m.seq}`, m.string()]);
          n++;
          if (m.info.pending === 0) break;
        }
        assert.ok(n > 0, `read ${stream}`);
      }
    } finally {
      await nc.close();
    }

    for (const [where, text] of haystacks) {
      assert.ok(!text.includes(canary), `the canary leaked into ${where}`);
      assert.ok(!text.includes(fileCanary), `the file canary leaked into ${where}`);
    }
    assert.ok(haystacks.length > 20, `searched ${haystacks.length} places`);
  });

  test('Redis rotation: a second password for the ACL user, then the old one removed; connected services are untouched', async () => {
    const admin = new Redis(`redis://default:${redisAdminPw}@127.0.0.1:${redis.port}`);
    const url = (p: string) => `redis://muse-app:${p}@127.0.0.1:${redis.port}`;
    const tryAuth = async (p: string): Promise<string> => {
      const c = new Redis(url(p), { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      // ioredis reports the server's AUTH answer as an `error` event; connect() only says the connection closed.
      const errors: string[] = [];
      c.on('error', (e: Error) => errors.push(String(e)));
      try {
        await c.connect();
        return await c.ping();
      } catch (err) {
        return errors[0] ?? String(err);
      } finally {
        c.disconnect();
      }
    };
    const newPw = pw();
    try {
      await admin.call('ACL', 'SETUSER', 'muse-app', `>${newPw}`);
      assert.equal(await tryAuth(redisAppPw), 'PONG', 'the old password still works during the grace period');
      assert.equal(await tryAuth(newPw), 'PONG');
      await admin.call('ACL', 'SETUSER', 'muse-app', `<${redisAppPw}`);
      assert.match(await tryAuth(redisAppPw), /WRONGPASS/);
      assert.equal(await tryAuth(newPw), 'PONG');
      // The cluster's connections authenticated before the change keep working.
      const res = await http(t.gateway, 'GET', '/health/ready');
      assert.equal(res.status, 200, res.text);
      const sub = await http<{ id: string }>(t.gateway, 'POST', '/v1/runs', { definition: { name: 'after-rotation', steps: [{ id: 'a', tool: 'shell', command: 'echo ok' }] } });
      assert.equal(sub.status, 202, sub.text);
      assert.equal((await waitForRun(t.gateway, sub.body.id)).status, 'succeeded');
    } finally {
      // Back to the first password: the cluster may reconnect while it stops.
      await admin.call('ACL', 'SETUSER', 'muse-app', `>${redisAppPw}`);
      admin.disconnect();
    }
  });

  test('the agent worker said at start-up which sandbox its shell steps run in', () => {
    const log = readFileSync(join(t.dataDir, 'logs', 'agent-worker-1.log'), 'utf8');
    assert.match(log, /shell steps run in a bubblewrap sandbox|shell steps run WITHOUT a sandbox: /);
  });
});
