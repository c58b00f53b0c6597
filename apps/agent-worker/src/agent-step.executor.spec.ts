import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { MuseError, type StepJob } from '@muse/contracts';
import { LocalDeterministicProvider, type ModelProvider } from '@muse/providers';
import { SecretScrubber } from '@muse/telemetry';
import { AgentStepExecutor, DEFAULT_MODEL } from './agent-step.executor.js';

const job: StepJob = { runId: 'r', project: 'p', stepId: 's', attempt: 1, role: 'reviewer', kind: 'agent', prompt: 'Review this', timeoutMs: 1000 };
const never = new AbortController().signal;

describe('AgentStepExecutor', () => {
  test('calls the provider with model (default muse-local), prompt and seed (default 0), and counts tokens', async () => {
    const calls: unknown[] = [];
    const events: unknown[] = [];
    const provider: ModelProvider = {
      name: 'fake',
      complete: async (req) => {
        calls.push({ model: req.model, prompt: req.prompt, seed: req.seed, hasSignal: req.signal !== undefined });
        return { text: 'ok', model: req.model, provider: 'fake', usage: { inputTokens: 3, outputTokens: 1 } };
      },
    };
    const exec = new AgentStepExecutor(provider, {
      request: (...a) => void events.push(['request', ...a]),
      tokens: (...a) => void events.push(['tokens', ...a]),
    });
    assert.deepEqual(await exec.run(job, never), { text: 'ok', model: DEFAULT_MODEL, usage: { inputTokens: 3, outputTokens: 1 }, provider: 'fake' });
    assert.deepEqual(calls, [{ model: 'muse-local', prompt: 'Review this', seed: 0, hasSignal: true }]);
    assert.deepEqual(events, [
      ['request', 'fake', 'muse-local', 'ok'],
      ['tokens', 'fake', 'muse-local', 'input', 3, 'p'],
      ['tokens', 'fake', 'muse-local', 'output', 1, 'p'],
    ]);
  });

  test('a provider failure is MUSE_ERR_STEP_PROVIDER (retryable)', async () => {
    const exec = new AgentStepExecutor({ name: 'x', complete: async () => { throw new Error('rate limited'); } });
    await assert.rejects(exec.run(job, never), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_STEP_PROVIDER' && err.retryable);
  });

  test('an abort is MUSE_ERR_STEP_TIMEOUT', async () => {
    const exec = new AgentStepExecutor(new LocalDeterministicProvider(10_000));
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    await assert.rejects(exec.run(job, ac.signal), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_STEP_TIMEOUT');
  });

  test('no prompt: MUSE_ERR_REQUEST_INVALID, not retryable', async () => {
    const exec = new AgentStepExecutor(new LocalDeterministicProvider());
    await assert.rejects(exec.run({ ...job, prompt: undefined }, never), (err: unknown) => err instanceof MuseError && err.code === 'MUSE_ERR_REQUEST_INVALID' && !err.retryable);
  });

  test('passes the role (which picks the failover chain) and reports the answering provider and its fallbacks', async () => {
    const roles: unknown[] = [];
    const chain: ModelProvider = {
      name: 'chain:reviewer',
      complete: async (req) => {
        roles.push(req.role);
        return { text: 'ok', model: 'claude-x', provider: 'claude', usage: { inputTokens: 1, outputTokens: 2 }, fallbacks: [{ provider: 'ollama', code: 'MUSE_ERR_PROVIDER_TIMEOUT', message: 'timed out' }] };
      },
    };
    const events: unknown[] = [];
    const exec = new AgentStepExecutor(chain, { request: (...a) => void events.push(a), tokens: () => {} });
    const out = await exec.run(job, never);
    assert.deepEqual(roles, ['reviewer']);
    assert.equal(out.provider, 'claude');
    assert.deepEqual(out.fallbacks, [{ provider: 'ollama', code: 'MUSE_ERR_PROVIDER_TIMEOUT', message: 'timed out' }]);
    assert.deepEqual(events, [['claude', 'muse-local', 'ok']]);
  });
});

describe('AgentStepExecutor with a secret scrubber', () => {
  test('the provider receives the prompt with every known secret value replaced', async () => {
    const scrubber = new SecretScrubber();
    scrubber.add('API_TOKEN', 'canary-0123456789');
    const requests: string[] = [];
    const recording: ModelProvider = {
      name: 'recording',
      complete: async (req) => {
        requests.push(req.prompt);
        return { text: 'ok', model: req.model, provider: 'recording', usage: { inputTokens: 1, outputTokens: 1 } };
      },
    };
    const exec = new AgentStepExecutor(recording, undefined, scrubber);
    await exec.run({ ...job, prompt: 'Use canary-0123456789 twice: canary-0123456789' }, never);
    assert.deepEqual(requests, ['Use [redacted:API_TOKEN] twice: [redacted:API_TOKEN]']);
  });
});
