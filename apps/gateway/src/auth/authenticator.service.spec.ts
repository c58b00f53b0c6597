import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GatewayConfigSchema, isMuseError, type ProjectView, type StoredApiKey } from '@muse/contracts';
import type { Logger } from '@muse/telemetry';
import { generateApiKey, hashApiKey } from './api-key.js';
import type { ApiKeyStore } from './api-key-store.service.js';
import { Authenticator } from './authenticator.service.js';

/** The slice of ApiKeyStore the authenticator uses, in memory. */
class MemoryStore {
  keys = new Map<string, StoredApiKey>();
  projects = new Map<string, ProjectView>();
  marker = false;
  async get(id: string) {
    return this.keys.get(id) ?? null;
  }
  async create(k: StoredApiKey) {
    if (this.keys.has(k.id)) return false;
    this.keys.set(k.id, k);
    return true;
  }
  async count() {
    return this.keys.size;
  }
  async createProject(p: ProjectView) {
    if (this.projects.has(p.name)) return false;
    this.projects.set(p.name, p);
    return true;
  }
  async projectExists(name: string) {
    return this.projects.has(name);
  }
  async claimBootstrap() {
    const first = !this.marker;
    this.marker = true;
    return first;
  }
  async releaseBootstrap() {
    this.marker = false;
  }
}

const logs: string[] = [];
const logger = { warn: (_o: unknown, msg: string) => logs.push(msg) } as unknown as Logger;
const make = (store: MemoryStore, env: Record<string, string>) =>
  new Authenticator(store as unknown as ApiKeyStore, GatewayConfigSchema.parse(env), logger);
const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (isMuseError(e) ? e.code : String(e)));

test('first start without MUSE_BOOTSTRAP_API_KEY: one admin key for every project, written to a 0600 file and logged; later starts make none', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muse-bootstrap-'));
  try {
    const file = join(dir, 'sub', 'api-key');
    const store = new MemoryStore();
    await make(store, { MUSE_BOOTSTRAP_API_KEY_FILE: file }).onApplicationBootstrap();
    const key = readFileSync(file, 'utf8').trim();
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.equal(store.keys.size, 1);
    const [stored] = [...store.keys.values()];
    assert.deepEqual([stored!.projects, stored!.scopes, stored!.hash], [['*'], ['read', 'write', 'admin', 'agent'], hashApiKey(key)]);
    assert.ok(logs.some((l) => l.includes(file)), 'the log says where the key is');
    assert.ok(store.projects.has('default'));
    const caller = await make(store, { MUSE_BOOTSTRAP_API_KEY_FILE: file }).resolve(key, 'default');
    assert.deepEqual([caller.principal, caller.project, caller.projects], [`key:${stored!.id}`, 'default', '*']);

    await make(store, { MUSE_BOOTSTRAP_API_KEY_FILE: join(dir, 'again') }).onApplicationBootstrap();
    assert.equal(store.keys.size, 1, 'a second start generates nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a key file that cannot be written fails the start and leaves no unknown key behind; the next start tries again', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'muse-bootstrap-'));
  try {
    const store = new MemoryStore();
    writeFileSync(join(dir, 'blocker'), 'a file where a folder should be');
    await assert.rejects(make(store, { MUSE_BOOTSTRAP_API_KEY_FILE: join(dir, 'blocker', 'api-key') }).onApplicationBootstrap());
    assert.equal(store.keys.size, 0);
    await make(store, { MUSE_BOOTSTRAP_API_KEY_FILE: join(dir, 'api-key') }).onApplicationBootstrap();
    assert.equal(store.keys.size, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('MUSE_BOOTSTRAP_API_KEY becomes the admin key, never overwriting (a revoked one stays revoked)', async () => {
  const { id, key } = generateApiKey();
  const store = new MemoryStore();
  const auth = make(store, { MUSE_BOOTSTRAP_API_KEY: key });
  await auth.onApplicationBootstrap();
  assert.equal((await auth.resolve(key, undefined)).project, 'default');
  store.keys.set(id, { ...store.keys.get(id)!, revokedAt: new Date().toISOString() });
  await auth.onApplicationBootstrap();
  assert.equal(await code(auth.resolve(key, undefined)), 'MUSE_ERR_AUTH_REQUIRED');
});

test('without a JWKS, a token that is not an API key is refused like any bad credential', async () => {
  const auth = make(new MemoryStore(), {});
  for (const t of [undefined, '', 'eyJhbGciOiJub25lIn0.e30.', 'muse_x']) assert.equal(await code(auth.authenticate(t)), 'MUSE_ERR_AUTH_REQUIRED');
});

test('a bad MUSE_BOOTSTRAP_API_KEY stops the start with a message naming the variable', () => {
  const res = GatewayConfigSchema.safeParse({ MUSE_BOOTSTRAP_API_KEY: 'hunter2' });
  assert.equal(res.success, false);
  assert.match(JSON.stringify(res.error?.issues), /MUSE_BOOTSTRAP_API_KEY/);
});
