import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError } from '@muse/contracts';
import { AnthropicProvider } from './anthropic-provider.js';
import { OpenAiCompatibleProvider } from './openai-provider.js';
import type { ModelProvider } from './provider.js';
import { retryAfterMs } from './provider-errors.js';
import { FakeModelServer, type FakeProtocol } from './testing/index.js';

const isCode = (code: string, retryable: boolean) => (err: unknown) =>
  err instanceof MuseError && err.code === code && err.retryable === retryable;

for (const protocol of ['openai', 'anthropic'] as FakeProtocol[]) {
  describe(`${protocol} adapter against a fake ${protocol} server`, () => {
    let server: FakeModelServer;
    let provider: ModelProvider;
    const make = (timeoutMs = 2_000, apiKey = 'sk-test'): ModelProvider =>
      protocol === 'openai'
        ? new OpenAiCompatibleProvider({ name: 'oa', baseUrl: server.baseUrl, apiKey, timeoutMs })
        : new AnthropicProvider({ name: 'an', baseUrl: server.baseUrl, apiKey, timeoutMs });
    before(async () => {
      server = await FakeModelServer.start(protocol, { apiKey: 'sk-test', chunkDelayMs: 2 });
      provider = make();
    });
    after(() => server.close());

    test('streams deltas that add up to the text, with usage and sampling parameters on the wire', async () => {
      const deltas: string[] = [];
      const prompt = 'Review the change to the retry module please';
      const res = await provider.complete({ model: 'm-1', prompt, seed: 42, temperature: 0, topP: 1, onDelta: (d) => deltas.push(d) });
      const want = FakeModelServer.replyText(protocol, prompt);
      assert.equal(res.text, want);
      assert.ok(deltas.length > 3, `several deltas, got ${deltas.length}`);
      assert.equal(deltas.join(''), want);
      assert.equal(res.model, 'm-1');
      assert.ok(res.usage.inputTokens > 0 && res.usage.outputTokens > 0);
      const body = server.requests.at(-1)!.body;
      assert.equal(body['stream'], true);
      assert.equal(body['temperature'], 0);
      assert.equal(body['top_p'], 1);
      // Anthropic's API has no seed; OpenAI's does.
      assert.equal(body['seed'], protocol === 'openai' ? 42 : undefined);
    });

    test('500 is retryable MUSE_ERR_STEP_PROVIDER', async () => {
      server.enqueue({ kind: 'status', status: 500 });
      await assert.rejects(provider.complete({ model: 'm', prompt: 'x' }), isCode('MUSE_ERR_STEP_PROVIDER', true));
    });

    test('429 is MUSE_ERR_PROVIDER_RATE_LIMITED with Retry-After kept as details.retryAfterMs', async () => {
      server.enqueue({ kind: 'status', status: 429, retryAfter: '3' });
      await assert.rejects(provider.complete({ model: 'm', prompt: 'x' }), (err: unknown) => {
        assert.ok(isCode('MUSE_ERR_PROVIDER_RATE_LIMITED', true)(err));
        assert.deepEqual((err as MuseError).details, { provider: protocol === 'openai' ? 'oa' : 'an', status: 429, retryAfterMs: 3000 });
        return true;
      });
    });

    test('a wrong key (401) is MUSE_ERR_PROVIDER_REJECTED, not retryable', async () => {
      await assert.rejects(make(2_000, 'sk-wrong').complete({ model: 'm', prompt: 'x' }), isCode('MUSE_ERR_PROVIDER_REJECTED', false));
    });

    test('no answer within timeoutMs is retryable MUSE_ERR_PROVIDER_TIMEOUT', async () => {
      server.enqueue({ kind: 'hang' });
      const t0 = Date.now();
      await assert.rejects(make(150).complete({ model: 'm', prompt: 'x' }), isCode('MUSE_ERR_PROVIDER_TIMEOUT', true));
      assert.ok(Date.now() - t0 < 2_000);
    });

    test('a stream cut by timeoutMs halfway is MUSE_ERR_PROVIDER_TIMEOUT, never a partial answer', async () => {
      server.chunkDelayMs = 40;
      try {
        const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
        server.enqueue({ kind: 'ok', text: long });
        const deltas: string[] = [];
        await assert.rejects(make(400).complete({ model: 'm', prompt: 'x', onDelta: (d) => deltas.push(d) }), isCode('MUSE_ERR_PROVIDER_TIMEOUT', true));
        assert.ok(deltas.length > 0, 'it was streaming when the timeout hit');
      } finally {
        server.chunkDelayMs = 2;
      }
    });

    test("the caller's abort passes through unmapped", async () => {
      server.enqueue({ kind: 'hang' });
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('step cancelled')), 50);
      await assert.rejects(provider.complete({ model: 'm', prompt: 'x', signal: ac.signal }), (err: unknown) => !(err instanceof MuseError));
    });

    test('a refused connection is retryable MUSE_ERR_STEP_PROVIDER', async () => {
      const dead = protocol === 'openai'
        ? new OpenAiCompatibleProvider({ name: 'dead', baseUrl: 'http://127.0.0.1:1/v1', timeoutMs: 2_000 })
        : new AnthropicProvider({ name: 'dead', baseUrl: 'http://127.0.0.1:1', apiKey: 'k', timeoutMs: 2_000 });
      await assert.rejects(dead.complete({ model: 'm', prompt: 'x' }), isCode('MUSE_ERR_STEP_PROVIDER', true));
    });
  });
}

describe('retryAfterMs', () => {
  test('seconds, an HTTP date, retry-after-ms, absent, clamped', () => {
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '2' })), 2000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': new Date(10_000).toUTCString() }), 4_000), 6000);
    assert.equal(retryAfterMs(new Headers({ 'retry-after-ms': '150' })), 150);
    assert.equal(retryAfterMs(new Headers()), undefined);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': 'soon' })), undefined);
    assert.equal(retryAfterMs(new Headers({ 'retry-after': '999999' })), 300_000);
  });
});
