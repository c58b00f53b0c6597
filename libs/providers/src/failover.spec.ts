import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MuseError } from '@muse/contracts';
import { AnthropicProvider } from './anthropic-provider.js';
import { DEFAULT_GUARD, FailoverChain, GuardedProvider, type BreakerState } from './failover.js';
import { OpenAiCompatibleProvider } from './openai-provider.js';
import { buildProviderRouter, loadProvidersConfig } from './providers-config.js';
import { FakeModelServer } from './testing/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('FailoverChain over fake OpenAI → fake Anthropic servers', () => {
  let oa: FakeModelServer;
  let an: FakeModelServer;
  before(async () => {
    oa = await FakeModelServer.start('openai');
    an = await FakeModelServer.start('anthropic');
  });
  after(async () => {
    await oa.close();
    await an.close();
  });
  beforeEach(() => {
    oa.respondWith({ kind: 'ok' });
    an.respondWith({ kind: 'ok' });
    oa.requests.length = 0;
    an.requests.length = 0;
  });

  const chain = (guard: Partial<typeof DEFAULT_GUARD> = {}, events: unknown[] = []) => {
    const observer = {
      attempt: (p: string, o: string) => void events.push(['attempt', p, o]),
      fallback: (r: string, p: string, c: string) => void events.push(['fallback', r, p, c]),
      breakerState: (p: string, s: BreakerState) => void events.push(['breaker', p, s]),
    };
    const g = { ...DEFAULT_GUARD, retryBaseMs: 10, ...guard };
    const first = new GuardedProvider(new OpenAiCompatibleProvider({ name: 'oa', baseUrl: oa.baseUrl, timeoutMs: 300 }), { ...g, model: 'gpt-x' }, observer);
    const second = new GuardedProvider(new AnthropicProvider({ name: 'an', baseUrl: an.baseUrl, apiKey: 'k', timeoutMs: 2_000 }), { ...g, model: 'claude-x' }, observer);
    return { c: new FailoverChain('reviewer', [first, second], observer), first, second };
  };

  test('the first answers: no fallback, its model is used', async () => {
    const { c } = chain();
    const res = await c.complete({ model: 'step-model', prompt: 'hello' });
    assert.equal(res.provider, 'oa');
    assert.equal(res.model, 'gpt-x');
    assert.equal(res.fallbacks, undefined);
    assert.equal(an.requests.length, 0);
  });

  test('500s: retried maxAttempts times, then the second answers and the fallback is recorded', async () => {
    oa.respondWith({ kind: 'status', status: 500 });
    const events: unknown[] = [];
    const { c } = chain({ maxAttempts: 2 }, events);
    const res = await c.complete({ model: 'm', prompt: 'hello' });
    assert.equal(res.provider, 'an');
    assert.equal(res.text, FakeModelServer.replyText('anthropic', 'hello'));
    assert.deepEqual(res.fallbacks?.map((f) => [f.provider, f.code]), [['oa', 'MUSE_ERR_STEP_PROVIDER']]);
    assert.equal(oa.requests.length, 2);
    assert.deepEqual(events.filter((e) => (e as string[])[0] !== 'breaker'), [
      ['attempt', 'oa', 'MUSE_ERR_STEP_PROVIDER'],
      ['attempt', 'oa', 'MUSE_ERR_STEP_PROVIDER'],
      ['fallback', 'reviewer', 'oa', 'MUSE_ERR_STEP_PROVIDER'],
      ['attempt', 'an', 'ok'],
    ]);
  });

  test('a hang past timeoutMs fails over with MUSE_ERR_PROVIDER_TIMEOUT', async () => {
    oa.respondWith({ kind: 'hang' });
    const { c } = chain({ maxAttempts: 1 });
    const res = await c.complete({ model: 'm', prompt: 'hello' });
    assert.equal(res.provider, 'an');
    assert.deepEqual(res.fallbacks?.map((f) => f.code), ['MUSE_ERR_PROVIDER_TIMEOUT']);
  });

  test('429 with a short Retry-After is waited for and retried at the same provider', async () => {
    oa.enqueue({ kind: 'status', status: 429, retryAfter: '0.3' });
    const { c } = chain({ maxAttempts: 2 });
    const t0 = Date.now();
    const res = await c.complete({ model: 'm', prompt: 'hello' });
    assert.equal(res.provider, 'oa');
    assert.ok(Date.now() - t0 >= 290, `waited ${Date.now() - t0} ms`);
    assert.equal(oa.requests.length, 2);
  });

  test('429 with a Retry-After past maxRetryWaitMs fails over at once', async () => {
    oa.enqueue({ kind: 'status', status: 429, retryAfter: '30' });
    const { c } = chain({ maxAttempts: 3, maxRetryWaitMs: 1_000 });
    const t0 = Date.now();
    const res = await c.complete({ model: 'm', prompt: 'hello' });
    assert.equal(res.provider, 'an');
    assert.ok(Date.now() - t0 < 1_000);
    assert.equal(oa.requests.length, 1);
    assert.deepEqual(res.fallbacks?.map((f) => f.code), ['MUSE_ERR_PROVIDER_RATE_LIMITED']);
  });

  test('a rejection (400) is not retried at the same provider but fails over', async () => {
    oa.enqueue({ kind: 'status', status: 400 });
    const { c } = chain({ maxAttempts: 3 });
    const res = await c.complete({ model: 'm', prompt: 'hello' });
    assert.equal(res.provider, 'an');
    assert.equal(oa.requests.length, 1);
  });

  test('the breaker opens after consecutiveFailures, skips the provider, half-opens after openMs and closes on success', async () => {
    oa.respondWith({ kind: 'status', status: 503 });
    const events: unknown[] = [];
    const { c, first } = chain({ maxAttempts: 1, consecutiveFailures: 2, openMs: 300 }, events);
    await c.complete({ model: 'm', prompt: 'a' });
    assert.equal(first.state, 'closed');
    await c.complete({ model: 'm', prompt: 'b' });
    assert.equal(first.state, 'open');
    // Open: the provider is not even called.
    const res = await c.complete({ model: 'm', prompt: 'c' });
    assert.equal(oa.requests.length, 2);
    assert.deepEqual(res.fallbacks?.map((f) => f.code), ['MUSE_ERR_PROVIDER_CIRCUIT_OPEN']);
    await sleep(350);
    // Half-open trial call fails: open again.
    await c.complete({ model: 'm', prompt: 'd' });
    assert.equal(oa.requests.length, 3);
    assert.equal(first.state, 'open');
    await sleep(350);
    oa.respondWith({ kind: 'ok' });
    const healed = await c.complete({ model: 'm', prompt: 'e' });
    assert.equal(healed.provider, 'oa');
    assert.equal(first.state, 'closed');
    assert.deepEqual(events.filter((e) => (e as string[])[0] === 'breaker' && (e as string[])[1] === 'oa').map((e) => (e as string[])[2]), [
      'closed', 'open', 'half_open', 'open', 'half_open', 'closed',
    ]);
  });

  test('rejections do not open the breaker', async () => {
    oa.respondWith({ kind: 'status', status: 400 });
    const { c, first } = chain({ maxAttempts: 1, consecutiveFailures: 1 });
    await c.complete({ model: 'm', prompt: 'a' });
    await c.complete({ model: 'm', prompt: 'b' });
    assert.equal(first.state, 'closed');
  });

  test('every provider failing: the last error with all fallbacks; retryable when any failure was', async () => {
    oa.respondWith({ kind: 'status', status: 500 });
    an.respondWith({ kind: 'status', status: 400 });
    const { c } = chain({ maxAttempts: 1 });
    await assert.rejects(c.complete({ model: 'm', prompt: 'x' }), (err: unknown) => {
      assert.ok(err instanceof MuseError);
      assert.equal(err.code, 'MUSE_ERR_PROVIDER_REJECTED');
      assert.equal(err.retryable, true);
      assert.deepEqual((err.details as { fallbacks: Array<{ provider: string }> }).fallbacks.map((f) => f.provider), ['oa', 'an']);
      return true;
    });
    oa.respondWith({ kind: 'status', status: 401 });
    await assert.rejects(c.complete({ model: 'm', prompt: 'x' }), (err: unknown) => err instanceof MuseError && !err.retryable);
  });

  test("the caller's abort stops the chain (no failover)", async () => {
    oa.respondWith({ kind: 'hang' });
    const { c } = chain({ maxAttempts: 1 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('cancelled')), 50);
    await assert.rejects(c.complete({ model: 'm', prompt: 'x', signal: ac.signal }));
    assert.equal(an.requests.length, 0);
  });
});

describe('providers configuration', () => {
  test('unset = one deterministic provider for every role', async () => {
    const router = buildProviderRouter(loadProvidersConfig(undefined), { env: {} });
    const res = await router.complete({ model: 'muse-local', prompt: 'hi', role: 'reviewer' });
    assert.equal(res.provider, 'local');
  });

  test('a YAML file with chains per role; API keys from the named env variable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'muse-providers-'));
    const file = join(dir, 'providers.yaml');
    writeFileSync(file, [
      'providers:',
      '  local: { type: deterministic }',
      '  gpt: { type: openai, baseUrl: "http://127.0.0.1:9/v1", apiKeyEnv: TEST_OPENAI_KEY, breaker: { openMs: 1000 } }',
      'chains:',
      '  default: [local]',
      '  reviewer: [gpt, local]',
    ].join('\n'));
    const cfg = loadProvidersConfig(file);
    assert.equal(cfg.providers['gpt']!.breaker.openMs, 1000);
    assert.equal(cfg.providers['gpt']!.breaker.consecutiveFailures, 5);
    assert.throws(() => buildProviderRouter(cfg, { env: {} }), (e: unknown) => e instanceof MuseError && e.code === 'MUSE_ERR_PROVIDERS_CONFIG_INVALID' && /TEST_OPENAI_KEY/.test(e.message));
    const router = buildProviderRouter(cfg, { env: { TEST_OPENAI_KEY: 'sk' } });
    assert.equal(router.chainFor('reviewer').name, 'chain:reviewer');
    assert.equal(router.chainFor('executor').name, 'local');
    rmSync(dir, { recursive: true, force: true });
  });

  test('invalid configurations are MUSE_ERR_PROVIDERS_CONFIG_INVALID with the path', () => {
    const bad = (v: unknown, path: RegExp) =>
      assert.throws(() => loadProvidersConfig(JSON.stringify(v)), (e: unknown) => e instanceof MuseError && e.code === 'MUSE_ERR_PROVIDERS_CONFIG_INVALID' && path.test(e.message));
    bad({ providers: { a: { type: 'deterministic' } }, chains: { reviewer: ['a'] } }, /chains\.default/);
    bad({ providers: { a: { type: 'deterministic' } }, chains: { default: ['b'] } }, /unknown provider "b"/);
    bad({ providers: { a: { type: 'openai' } }, chains: { default: ['a'] } }, /providers\.a\.baseUrl/);
    bad({ providers: { a: { type: 'deterministic', apiKey: 'sk-inline' } }, chains: { default: ['a'] } }, /apiKey/);
    assert.throws(() => loadProvidersConfig('/nonexistent/providers.yaml'), (e: unknown) => e instanceof MuseError && e.code === 'MUSE_ERR_PROVIDERS_CONFIG_INVALID');
  });
});
