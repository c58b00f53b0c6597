/**
 * Recorded model calls and replay end to end: a cluster (every service its
 * own process, real NATS and Redis) whose agent worker calls a fake
 * OpenAI-compatible server. A five-step agent workflow runs once (five
 * provider requests, each with its temperature, top_p and derived seed, and
 * five `llm-call.json` artifacts keyed by their request hash); its replay
 * makes no provider request at all and gives the same outputs; a replay
 * against a new version whose third prompt changed fails at that step with
 * `MUSE_ERR_REPLAY_DIVERGED`, naming the fields that differ — and so does
 * `muse replay`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { deriveSeed, promptTemplateHash, type ArtifactMeta, type RunEvent, type RunView } from '@muse/contracts';
import { LlmCallRecordSchema, requestHash } from '@muse/providers';
import { FakeModelServer } from '@muse/providers/testing';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const run$ = promisify(execFile);
const STEPS = ['plan', 'draft', 'review', 'revise', 'summary'] as const;
const promptOf = (id: string, prev: string | undefined, variant = ''): string =>
  prev === undefined ? `Plan a change to {{ input.repo }}${variant}` : `Step ${id}${variant}: build on {{ steps.${prev}.output.text }}`;
const workflow = (changed?: string) => ({
  name: 'five-steps',
  steps: STEPS.map((id, i) => ({
    id,
    agent: 'reviewer',
    ...(id === 'review' ? { temperature: 0.2, topP: 0.9 } : {}),
    prompt: promptOf(id, STEPS[i - 1], id === changed ? ' (now stricter)' : ''),
    ...(i > 0 ? { needs: [STEPS[i - 1]] } : {}),
  })),
  output: '{{ steps.summary.output.text }}',
});

interface CallOutput {
  text: string;
  provider: string;
  cost?: number;
  call: { requestHash: string; seed: number; temperature: number; topP: number; replayed?: boolean };
}

describe('replay: recorded model calls served back, divergence reported', { timeout: 240_000 }, () => {
  let t: TestCluster;
  let oa: FakeModelServer;
  let dir: string | undefined;
  let original: RunView;

  before(async () => {
    oa = await FakeModelServer.start('openai', { apiKey: 'sk-fake-openai' });
    dir = mkdtempSync(join(tmpdir(), 'muse-replay-e2e-'));
    const file = join(dir, 'providers.json');
    writeFileSync(file, JSON.stringify({ providers: { oa: { type: 'openai', baseUrl: oa.baseUrl, apiKeyEnv: 'TEST_FAKE_OPENAI_KEY', model: 'gpt-fake', maxAttempts: 1 } }, chains: { default: ['oa'] } }));
    t = await startTestCluster({
      workers: 1,
      env: { MUSE_PROVIDERS_CONFIG: file, TEST_FAKE_OPENAI_KEY: 'sk-fake-openai', MUSE_MODEL_PRICES: JSON.stringify({ 'gpt-fake': { inputPerMTok: 3, outputPerMTok: 15 } }) },
    });
    const reg = await http(t.gateway, 'POST', '/v1/workflows', workflow());
    assert.equal(reg.status, 201, reg.text);
  });

  after(async () => {
    await t?.stop();
    await oa?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const outputs = (run: RunView): CallOutput[] => STEPS.map((id) => run.steps.find((s) => s.id === id)!.output as CallOutput);

  test('a five-step run records every call: sampling parameters, derived seeds, llm-call.json keyed by the request hash, and its spend', async () => {
    const res = await http(t.gateway, 'POST', '/v1/runs', { workflow: 'five-steps', input: { repo: 'muse' } });
    assert.equal(res.status, 202, res.text);
    original = await waitForRun(t.gateway, res.body.id, 60_000);
    assert.equal(original.status, 'succeeded', JSON.stringify(original.error));
    assert.equal(oa.requests.length, 5, 'one provider request per step');

    const outs = outputs(original);
    STEPS.forEach((id, i) => {
      const out = outs[i]!;
      const body = oa.requests[i]!.body;
      // The seed is derived from run, step and attempt (no step pins one) and sent with temperature (and top_p when set).
      assert.equal(out.call.seed, deriveSeed(original.id, id, 1));
      assert.equal(body['seed'], out.call.seed);
      assert.equal(body['temperature'], id === 'review' ? 0.2 : 0);
      assert.equal(body['top_p'], id === 'review' ? 0.9 : undefined);
      assert.equal(out.call.topP, id === 'review' ? 0.9 : 1);
      assert.ok(out.cost !== undefined && out.cost > 0, 'priced by MUSE_MODEL_PRICES');
    });
    assert.equal(new Set(outs.map((o) => o.call.seed)).size, 5, 'each step has its own seed');

    // Spend per run, step, agent and provider in the run view.
    const spend = original.spend!;
    const tokens = STEPS.reduce((n, id) => {
      const u = (original.steps.find((s) => s.id === id)!.output as { usage: { inputTokens: number; outputTokens: number } }).usage;
      return n + u.inputTokens + u.outputTokens;
    }, 0);
    assert.equal(spend.tokens, tokens);
    assert.equal(spend.byProvider['oa']!.tokens, tokens);
    assert.equal(Object.keys(spend.byStep).length, 5);
    assert.equal(Object.values(spend.byAgent).reduce((n, f) => n + f.tokens, 0), tokens);
    assert.ok(Math.abs(spend.cost - outs.reduce((n, o) => n + o.cost!, 0)) < 1e-12);

    // One llm-call.json per step: the request (with the template hash) whose canonical hash is the key, and the response.
    const arts = (await http<{ items: ArtifactMeta[] }>(t.gateway, 'GET', `/v1/runs/${original.id}/artifacts`)).body.items;
    const calls = arts.filter((a) => a.name === 'llm-call.json');
    assert.equal(calls.length, 5);
    for (const meta of calls) {
      assert.equal(meta.schema, 'muse.llm-call/v1');
      const content = await http(t.gateway, 'GET', `/v1/artifacts/${meta.id}/content`);
      assert.equal(content.status, 200);
      const rec = LlmCallRecordSchema.parse(JSON.parse(content.text));
      const i = STEPS.indexOf(rec.stepId as (typeof STEPS)[number]);
      assert.equal(rec.requestHash, requestHash(rec.request));
      assert.equal(rec.requestHash, outs[i]!.call.requestHash);
      assert.equal(rec.request.promptTemplateHash, promptTemplateHash(promptOf(rec.stepId, STEPS[i - 1])));
      assert.equal(rec.definitionVersion, 1);
      assert.equal(rec.provider, 'oa');
      assert.equal(rec.response.text, outs[i]!.text);
      assert.equal(rec.request.messages[0]!.content, (oa.requests[i]!.body['messages'] as { content: string }[]).at(-1)!.content);
    }
  });

  test('the replay matches: every step served from its recording, no provider request, same outputs', async () => {
    const before = oa.requests.length;
    const res = await http(t.gateway, 'POST', `/v1/runs/${original.id}/replay`, {});
    assert.equal(res.status, 202, res.text);
    const replay = await waitForRun(t.gateway, res.body.id, 60_000);
    assert.equal(replay.status, 'succeeded', JSON.stringify(replay.error));
    assert.equal(oa.requests.length, before, 'a replay asks no provider');
    assert.deepEqual(replay.replay, { of: original.id });
    const a = outputs(original);
    const b = outputs(replay);
    STEPS.forEach((_, i) => {
      assert.equal(b[i]!.text, a[i]!.text);
      assert.equal(b[i]!.call.requestHash, a[i]!.call.requestHash);
      assert.equal(b[i]!.call.replayed, true);
    });
    assert.equal(replay.output, original.output);
    // Replayed calls spent nothing.
    assert.equal(replay.spend?.tokens ?? 0, 0);
    const events = (await http<{ items: RunEvent[] }>(t.gateway, 'GET', `/v1/runs/${replay.id}/events`)).body.items;
    const created = events.find((e) => e.type === 'run.created')!;
    assert.equal((created.data as { replayOf?: { runId: string } }).replayOf?.runId, original.id);
  });

  test('a replay against a version whose third prompt changed diverges at that step, with the differing fields', async () => {
    const reg = await http(t.gateway, 'POST', '/v1/workflows', workflow('review'));
    assert.equal(reg.status, 201, reg.text);
    assert.equal(reg.body.version, 2);
    const before = oa.requests.length;
    const res = await http(t.gateway, 'POST', `/v1/runs/${original.id}/replay`, { version: 2 });
    assert.equal(res.status, 202, res.text);
    const replay = await waitForRun(t.gateway, res.body.id, 60_000);
    assert.equal(replay.status, 'failed');
    assert.equal(oa.requests.length, before, 'a diverging replay asks no provider either');
    assert.equal(replay.workflow.version, 2);
    const status = Object.fromEntries(replay.steps.map((s) => [s.id, s.status]));
    // The steps before the changed one still match; the ones after it never run.
    assert.equal(status['plan'], 'succeeded');
    assert.equal(status['draft'], 'succeeded');
    assert.equal(status['review'], 'failed');
    assert.notEqual(status['revise'], 'succeeded');
    assert.notEqual(status['summary'], 'succeeded');
    const review = replay.steps.find((s) => s.id === 'review')!;
    assert.equal(review.error?.code, 'MUSE_ERR_REPLAY_DIVERGED');
    assert.equal(review.error?.retryable, false);
    assert.equal(review.attempts, 1);
    const div = replay.replay?.divergence as { stepId: string; expectedHash: string; actualHash: string; diff: { field: string }[] };
    assert.equal(div.stepId, 'review');
    assert.equal(div.expectedHash, outputs(original)[2]!.call.requestHash);
    assert.notEqual(div.actualHash, div.expectedHash);
    assert.deepEqual(div.diff.map((d) => d.field).sort(), ['messages[0].content', 'promptTemplateHash']);
    assert.equal(replay.error?.code, 'MUSE_ERR_REPLAY_DIVERGED');
  });

  test('muse replay prints match, or the first diverging step and exits non-zero', async () => {
    const cli = join(process.cwd(), 'apps/cli/dist/main.js');
    const env = { ...process.env, MUSE_GATEWAY_URL: t.gateway, MUSE_API_KEY: t.apiKey };
    const match = await run$(process.execPath, [cli, 'replay', original.id], { env });
    assert.match(match.stdout, /match/);
    const diverged = await run$(process.execPath, [cli, 'replay', original.id, '--version', '2'], { env }).then(
      () => assert.fail('a diverging replay exits non-zero'),
      (err: { code: number; stdout: string }) => err,
    );
    assert.equal(diverged.code, 1);
    assert.match(diverged.stdout, /diverged at step "review"/);
    assert.match(diverged.stdout, /promptTemplateHash/);
  });
});
