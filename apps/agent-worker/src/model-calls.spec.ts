import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deriveSeed, MuseError, type StepJob } from '@muse/contracts';
import { LlmCallRecordSchema, LocalDeterministicProvider, requestHash, type CompletionRequest, type LlmCallRecord } from '@muse/providers';
import type { RunBudgets } from './budget.js';
import { ModelCalls, Pricing } from './model-calls.js';

const job = (extra: Partial<StepJob> = {}): StepJob => ({
  runId: 'run_1', project: 'p', stepId: 'plan', attempt: 2, role: 'reviewer', kind: 'agent', prompt: 'Plan it', model: 'm', timeoutMs: 5000, promptTemplateHash: 'h1', definitionVersion: 4, ...extra,
});

class Recording extends LocalDeterministicProvider {
  readonly seen: CompletionRequest[] = [];
  override complete(req: CompletionRequest) {
    this.seen.push(req);
    return super.complete(req);
  }
}

test('a call is seeded from run, step and attempt, sent with its sampling parameters, priced, and recorded', async () => {
  const provider = new Recording();
  const calls = new ModelCalls({ provider, pricing: new Pricing({ m: { inputPerMTok: 1, outputPerMTok: 2 } }) });
  const r = await calls.complete(job({ temperature: 0.4 }), 'Plan it', new AbortController().signal);
  assert.equal(provider.seen[0]!.seed, deriveSeed('run_1', 'plan', 2));
  assert.equal(provider.seen[0]!.temperature, 0.4);
  assert.equal(provider.seen[0]!.topP, undefined, 'top_p only when the step sets it');
  assert.deepEqual(r.call, { requestHash: r.call.requestHash, seed: deriveSeed('run_1', 'plan', 2), temperature: 0.4, topP: 1 });
  assert.equal(r.cost, (r.res.usage.inputTokens * 1 + r.res.usage.outputTokens * 2) / 1e6);
  const [art, ...rest] = calls.take(job());
  assert.equal(rest.length, 0);
  assert.equal(art!.name, 'llm-call.json');
  assert.equal(art!.schema, 'muse.llm-call/v1');
  const rec = LlmCallRecordSchema.parse(JSON.parse(Buffer.from(art!.bytes).toString('utf8')));
  assert.equal(rec.requestHash, requestHash(rec.request));
  assert.equal(rec.requestHash, r.call.requestHash);
  assert.equal(rec.definitionVersion, 4);
  assert.equal(rec.request.promptTemplateHash, 'h1');
  assert.deepEqual(calls.take(job()), [], 'taken once');
});

test('under a budget a call reserves prompt + output cap, caps the output, and settles to its usage (0 when it failed)', async () => {
  const log: unknown[] = [];
  const budgets = {
    reserve: async (...a: unknown[]) => void log.push(['reserve', ...a]),
    settle: async (...a: unknown[]) => void log.push(['settle', ...a]),
  } as unknown as RunBudgets;
  const provider = new Recording();
  const calls = new ModelCalls({ provider, budgets, budgetMaxOutputTokens: 16 });
  const r = await calls.complete(job({ budget: { maxTokens: 100 } }), 'Plan it', new AbortController().signal);
  assert.equal(provider.seen[0]!.maxOutputTokens, 16);
  assert.deepEqual(log, [
    ['reserve', 'run_1', 'run_1.plan.2.1', { tokens: 2 + 16, cost: 0 }, { maxTokens: 100 }, 5000],
    ['settle', 'run_1', 'run_1.plan.2.1', { tokens: r.res.usage.inputTokens + r.res.usage.outputTokens, cost: 0 }],
  ]);
  log.length = 0;
  const failing = new ModelCalls({ provider: { name: 'x', complete: async () => { throw new MuseError('MUSE_ERR_STEP_PROVIDER', 'down'); } }, budgets });
  await assert.rejects(failing.complete(job({ budget: { maxTokens: 100 } }), 'Plan it', new AbortController().signal), /down/);
  assert.deepEqual(log.at(-1), ['settle', 'run_1', 'run_1.plan.2.1', { tokens: 0, cost: 0 }]);
});

test('a replay serves the recorded answer when the request hashes the same, and names the differing fields when not', async () => {
  const original = new ModelCalls({ provider: new LocalDeterministicProvider() });
  const first = await original.complete(job({ attempt: 3 }), 'Plan it', new AbortController().signal);
  const rec = JSON.parse(Buffer.from(original.take(job({ attempt: 3 }))[0]!.bytes).toString('utf8')) as LlmCallRecord;

  const provider = new Recording();
  const replay = new ModelCalls({ provider, recordings: { read: async (id) => (assert.equal(id, 'art_1'), rec) } });
  const again = job({ runId: 'run_2', attempt: 1, replay: { runId: 'run_1', recording: 'art_1' } });
  const served = await replay.complete(again, 'Plan it', new AbortController().signal);
  assert.equal(provider.seen.length, 0, 'no provider call');
  assert.equal(served.res.text, first.res.text);
  assert.equal(served.call.replayed, true);
  assert.equal(served.call.seed, first.call.seed, 'the recorded attempt\'s seed');

  await assert.rejects(replay.complete({ ...again, attempt: 2 }, 'Plan it differently', new AbortController().signal), (err: MuseError) => {
    assert.equal(err.code, 'MUSE_ERR_REPLAY_DIVERGED');
    const d = err.details as { stepId: string; expectedHash: string; actualHash: string; diff: { field: string }[] };
    assert.equal(d.stepId, 'plan');
    assert.equal(d.expectedHash, rec.requestHash);
    assert.notEqual(d.actualHash, rec.requestHash);
    assert.deepEqual(d.diff.map((x) => x.field), ['messages[0].content']);
    return true;
  });
  await assert.rejects(replay.complete(job({ replay: { runId: 'run_1' } }), 'Plan it', new AbortController().signal), /no recording/);
  assert.equal(provider.seen.length, 0);
});

test("a job attempt's calls add up to what it spent, taken once; an unpriced call adds no cost", async () => {
  const provider = new Recording();
  const priced = new ModelCalls({ provider, pricing: new Pricing({ m: { inputPerMTok: 1, outputPerMTok: 2 } }) });
  const a = await priced.complete(job(), 'Plan it', new AbortController().signal);
  const b = await priced.complete(job(), 'Plan it again, longer', new AbortController().signal);
  assert.deepEqual(priced.takeSpent(job()), {
    inputTokens: a.res.usage.inputTokens + b.res.usage.inputTokens,
    outputTokens: a.res.usage.outputTokens + b.res.usage.outputTokens,
    cost: a.cost! + b.cost!,
    provider: 'local',
    model: 'm',
  });
  assert.equal(priced.takeSpent(job()), undefined, 'taken once');
  assert.equal(priced.takeSpent(job({ attempt: 3 })), undefined, 'another attempt made no call');
  const unpriced = new ModelCalls({ provider });
  const c = await unpriced.complete(job(), 'Plan it', new AbortController().signal);
  assert.deepEqual(unpriced.takeSpent(job()), { ...c.res.usage, provider: 'local', model: 'm' });
});
