import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MuseError, type AgentOutput, type ShellOutput, type StepJob, type StepReport } from '@muse/contracts';
import { LocalDeterministicProvider } from '@muse/providers';
import { SecretScrubber } from '@muse/telemetry';
import { AgentStepExecutor } from './agent-step.executor.js';
import { StepProcessor, type StepProcessorDeps } from './step.processor.js';
import { StepHandedBackError } from './step.errors.js';
import { ModelCalls, Pricing } from './model-calls.js';
import { ToolLoop } from './tool-loop.js';
import { reportMsgId } from './step-report.publisher.js';

const agentJob: StepJob = {
  runId: 'run_p1',
  project: 'default',
  stepId: 'plan',
  attempt: 1,
  role: 'orchestrator',
  kind: 'agent',
  prompt: 'Plan the change',
  model: 'muse-local',
  seed: 7,
  timeoutMs: 5_000,
};
const shellJob: StepJob = { ...agentJob, stepId: 'build', role: 'executor', kind: 'shell', prompt: undefined, command: 'make' };

function harness(over: Partial<StepProcessorDeps> = {}) {
  const published: StepReport[] = [];
  const uploads: Array<{ text: string; mediaType: string }> = [];
  const deps: StepProcessorDeps = {
    agentId: 'agent-t',
    agent: new AgentStepExecutor(new LocalDeterministicProvider()),
    shell: { run: async (): Promise<ShellOutput> => ({ exitCode: 0, stdout: 'built\n', stderr: '' }) },
    artifacts: {
      upload: async (bytes, mediaType) => {
        uploads.push({ text: Buffer.from(bytes).toString('utf8'), mediaType });
        return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length };
      },
    },
    reports: {
      publish: async (r) => {
        published.push(r);
      },
    },
    now: () => new Date('2025-01-01T00:00:00.000Z'),
    // `started` before the step runs, so every report is seen; the deferred `started` has its own tests below.
    startedReportDelayMs: 0,
    // Every artifact uploaded, so the uploads are seen; reports that carry them inline have their own tests below.
    inlineArtifactBytes: 0,
    ...over,
  };
  return { processor: new StepProcessor(deps), published, uploads };
}

describe('StepProcessor', () => {
  test('agent step: started, then completed with the AgentOutput and a response.md artifact', async () => {
    const { processor, published, uploads } = harness();
    const res = await processor.process(agentJob);
    assert.equal(res.outcome, 'completed');
    assert.deepEqual(published.map((r) => r.outcome), ['started', 'completed']);
    const [started, done] = published as [StepReport, StepReport];
    assert.deepEqual(started, {
      kind: 'step-report', runId: 'run_p1', project: 'default', stepId: 'plan', attempt: 1, agentId: 'agent-t', outcome: 'started', at: '2025-01-01T00:00:00.000Z',
    });
    const output = done.output as AgentOutput;
    assert.equal(output.model, 'muse-local');
    assert.ok(output.text.length > 0);
    assert.ok(output.usage.inputTokens > 0 && output.usage.outputTokens > 0);
    assert.deepEqual(uploads, [{ text: output.text, mediaType: 'text/markdown' }]);
    assert.deepEqual(done.artifacts, [{
      name: 'response.md', mediaType: 'text/markdown', size: Buffer.byteLength(output.text),
      digest: `sha256:${createHash('sha256').update(output.text).digest('hex')}`,
      tool: 'model', toolVersion: 'muse-local',
    }]);
    assert.equal(reportMsgId(started), 'run_p1.plan.1.started.agent-t');
    assert.equal(reportMsgId(done), 'run_p1.plan.1.completed');
  });

  test('the same agent job gives the same output (deterministic provider, seed)', async () => {
    const a = harness();
    const b = harness();
    await a.processor.process(agentJob);
    await b.processor.process(agentJob);
    assert.deepEqual(a.published[1]!.output, b.published[1]!.output);
  });

  test('shell step: completed with the ShellOutput and stdout.txt', async () => {
    const { processor, published, uploads } = harness();
    await processor.process(shellJob);
    assert.deepEqual(published[1]!.output, { exitCode: 0, stdout: 'built\n', stderr: '' });
    assert.deepEqual(uploads, [{ text: 'built\n', mediaType: 'text/plain' }]);
    assert.equal(published[1]!.artifacts![0]!.name, 'stdout.txt');
  });

  test('a step error is reported as failed with the Muse wire shape, and the job still succeeds', async () => {
    const { processor, published, uploads } = harness({
      shell: {
        run: async () => {
          throw new MuseError('MUSE_ERR_STEP_EXIT_NONZERO', 'exited 2', { details: { exitCode: 2, stdout: '', stderr: 'no' } });
        },
      },
    });
    const res = await processor.process(shellJob);
    assert.equal(res.outcome, 'failed');
    const failed = published[1]!;
    assert.equal(failed.outcome, 'failed');
    assert.deepEqual(failed.error, { code: 'MUSE_ERR_STEP_EXIT_NONZERO', message: 'exited 2', retryable: true, details: { exitCode: 2, stdout: '', stderr: 'no' } });
    assert.equal(failed.artifacts, undefined);
    assert.equal(reportMsgId(failed), 'run_p1.build.1.failed');
    assert.deepEqual(uploads, []);
  });

  test('a failed agent attempt reports what its model calls spent, and the observer counts those tokens', async () => {
    const provider = new LocalDeterministicProvider();
    const calls = new ModelCalls({ provider, pricing: new Pricing({ 'muse-local': { inputPerMTok: 1, outputPerMTok: 2 } }) });
    const tokens: unknown[][] = [];
    const { processor, published } = harness({
      agent: new AgentStepExecutor(provider, undefined, undefined, undefined, calls, new ToolLoop({ call: async () => assert.fail('no tool runs past maxToolCalls') })),
      recordings: calls,
      spend: calls,
      observer: { finished: () => undefined, tokens: (...a) => void tokens.push(a) },
    });
    // The model asks for two calls where the step allows one: the attempt fails after one model call.
    const prompt = ['Look around', '::tool-call http {"method":"GET","url":"http://127.0.0.1:9/a"}', '::tool-call http {"method":"GET","url":"http://127.0.0.1:9/b"}'].join('\n');
    const res = await processor.process({ ...agentJob, prompt, tools: ['http'], maxToolCalls: 1 });
    assert.equal(res.outcome, 'failed');
    const failed = published.at(-1)!;
    assert.equal(failed.error?.code, 'MUSE_ERR_TOOL_CALLS_EXCEEDED');
    const spent = failed.spent!;
    assert.ok(spent.inputTokens > 0 && spent.outputTokens > 0, JSON.stringify(spent));
    assert.deepEqual(spent, { inputTokens: spent.inputTokens, outputTokens: spent.outputTokens, cost: (spent.inputTokens + 2 * spent.outputTokens) / 1e6, provider: 'local', model: 'muse-local' });
    assert.deepEqual(tokens, [
      ['local', 'muse-local', 'input', spent.inputTokens, 'default'],
      ['local', 'muse-local', 'output', spent.outputTokens, 'default'],
    ]);
    // A completed attempt's spend is in its output's usage: no `spent`, nothing counted here, and the tally is gone.
    const ok = await processor.process({ ...agentJob, attempt: 2 });
    assert.equal(ok.outcome, 'completed');
    assert.equal(published.at(-1)!.spent, undefined);
    assert.equal(tokens.length, 2);
    assert.equal(calls.takeSpent({ ...agentJob, attempt: 2 }), undefined, 'taken by the processor');
  });

  test('an attempt whose model answered but whose upload failed reports its spend, and its tokens are counted once', async () => {
    const provider = new LocalDeterministicProvider();
    const calls = new ModelCalls({ provider });
    const tokens: unknown[][] = [];
    const { processor, published } = harness({
      agent: new AgentStepExecutor(provider, { request: () => undefined, tokens: (...a) => void tokens.push(a) }, undefined, undefined, calls),
      recordings: calls,
      spend: calls,
      observer: { finished: () => undefined, tokens: (...a) => void tokens.push(a) },
      artifacts: { upload: async () => { throw new Error('artifact store unreachable'); } },
    });
    const res = await processor.process(agentJob);
    assert.equal(res.outcome, 'failed');
    const spent = published.at(-1)!.spent!;
    assert.ok(spent.inputTokens > 0 && spent.outputTokens > 0, JSON.stringify(spent));
    // The executor counted them as the model answered; the failed report does not count them again.
    assert.deepEqual(tokens, [
      ['local', 'muse-local', 'input', spent.inputTokens, 'default'],
      ['local', 'muse-local', 'output', spent.outputTokens, 'default'],
    ]);
  });

  test('the deadline aborts the step: MUSE_ERR_STEP_TIMEOUT', async () => {
    const { processor, published } = harness({
      agent: new AgentStepExecutor(new LocalDeterministicProvider(5_000)),
    });
    const t0 = Date.now();
    await processor.process({ ...agentJob, timeoutMs: 50 });
    assert.ok(Date.now() - t0 < 1_000);
    assert.equal(published[1]!.error?.code, 'MUSE_ERR_STEP_TIMEOUT');
    assert.equal(published[1]!.error?.retryable, true);
  });

  test('an upload that fails becomes a failed report (the step is retried, not lost)', async () => {
    const { processor, published } = harness({
      artifacts: {
        upload: async () => {
          throw new MuseError('MUSE_ERR_UNAVAILABLE', 'artifact store down');
        },
      },
    });
    await processor.process(agentJob);
    assert.equal(published[1]!.outcome, 'failed');
    assert.equal(published[1]!.error?.code, 'MUSE_ERR_UNAVAILABLE');
  });

  test('an invalid payload throws before anything is reported', async () => {
    const { processor, published } = harness();
    await assert.rejects(processor.process({ runId: 'x' }));
    assert.deepEqual(published, []);
  });

  test('a final report that cannot be stored makes the job throw (BullMQ marks it failed)', async () => {
    let calls = 0;
    const { processor } = harness({
      reports: {
        publish: async () => {
          if (++calls > 1) throw new Error('nats down');
        },
      },
    });
    await assert.rejects(processor.process(agentJob), /nats down/);
  });

  test('a started report that cannot be stored stops the step before it runs', async () => {
    let ran = false;
    const { processor } = harness({
      reports: {
        publish: async () => {
          throw new Error('nats down');
        },
      },
      shell: {
        run: async () => {
          ran = true;
          return { exitCode: 0, stdout: '', stderr: '' };
        },
      },
    });
    await assert.rejects(processor.process(shellJob));
    assert.equal(ran, false);
  });

  test('a hand-back reports nothing final and rethrows', async () => {
    const handBack = new AbortController();
    const { processor, published } = harness({
      handBack: handBack.signal,
      agent: new AgentStepExecutor(new LocalDeterministicProvider(5_000)),
    });
    setTimeout(() => handBack.abort(new StepHandedBackError()), 50);
    await assert.rejects(processor.process(agentJob), (err: unknown) => err instanceof StepHandedBackError);
    assert.deepEqual(published.map((r) => r.outcome), ['started']);
  });

  test('the observer hears the outcome with the role, kind and project', async () => {
    const seen: unknown[] = [];
    const { processor } = harness({ observer: { finished: (e) => seen.push({ ...e, durationMs: typeof e.durationMs }) } });
    await processor.process(shellJob);
    assert.deepEqual(seen, [{ role: 'executor', kind: 'shell', outcome: 'completed', durationMs: 'number', project: 'default' }]);
  });
});

describe('StepProcessor with a deferred started report (MUSE_STARTED_REPORT_DELAY_MS)', () => {
  const slowShell = (ms: number) => ({ run: async (): Promise<ShellOutput> => {
    await new Promise((r) => setTimeout(r, ms));
    return { exitCode: 0, stdout: 'built\n', stderr: '' };
  } });

  test('a step quicker than the delay sends one final report carrying startedAt', async () => {
    const { processor, published } = harness({ startedReportDelayMs: 200 });
    await processor.process(shellJob);
    assert.deepEqual(published.map((r) => r.outcome), ['completed']);
    assert.equal(published[0]!.startedAt, '2025-01-01T00:00:00.000Z');
    assert.equal(reportMsgId(published[0]!), 'run_p1.build.1.completed');
  });

  test('a step slower than the delay is reported started while it runs, and its final report has no startedAt', async () => {
    const { processor, published } = harness({ startedReportDelayMs: 20, shell: slowShell(150) });
    const done = processor.process(shellJob);
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(published.map((r) => r.outcome), ['started']);
    await done;
    assert.deepEqual(published.map((r) => r.outcome), ['started', 'completed']);
    assert.equal(published[1]!.startedAt, undefined);
  });

  test('a failure quicker than the delay carries startedAt too', async () => {
    const { processor, published } = harness({ startedReportDelayMs: 200, shell: { run: async () => { throw new MuseError('MUSE_ERR_STEP_EXIT_NONZERO', 'exit 2'); } } });
    await processor.process(shellJob);
    assert.deepEqual(published.map((r) => [r.outcome, r.startedAt]), [['failed', '2025-01-01T00:00:00.000Z']]);
  });

  test('a started report that failed to store is sent again before the final one', async () => {
    let calls = 0;
    const published: StepReport[] = [];
    const { processor } = harness({
      startedReportDelayMs: 10,
      shell: slowShell(60),
      reports: { publish: async (r) => {
        if (r.outcome === 'started' && calls++ === 0) throw new Error('JetStream unavailable');
        published.push(r);
      } },
    });
    await processor.process(shellJob);
    assert.deepEqual(published.map((r) => r.outcome), ['started', 'completed']);
  });

  test('a hand-back before the delay reports nothing at all', async () => {
    const handBack = new AbortController();
    const { processor, published } = harness({ startedReportDelayMs: 500, handBack: handBack.signal, agent: new AgentStepExecutor(new LocalDeterministicProvider(5_000)) });
    setTimeout(() => handBack.abort(new StepHandedBackError()), 30);
    await assert.rejects(processor.process(agentJob), (err: unknown) => err instanceof StepHandedBackError);
    await new Promise((r) => setTimeout(r, 550));
    assert.deepEqual(published, []);
  });
});

describe('StepProcessor with artifacts inside the report (MUSE_INLINE_ARTIFACT_BYTES)', () => {
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  test('outputs that fit travel in the report with their digest and size, and nothing is uploaded', async () => {
    const { processor, published, uploads } = harness({ inlineArtifactBytes: 1024 });
    await processor.process(shellJob);
    assert.deepEqual(uploads, []);
    const [a] = published[1]!.artifacts!;
    assert.deepEqual(a, { name: 'stdout.txt', digest: sha(Buffer.from('built\n')), size: 6, mediaType: 'text/plain', tool: 'shell', content: Buffer.from('built\n').toString('base64') });
  });

  test('once the budget is spent the rest are uploaded, in report order', async () => {
    const big = 'x'.repeat(300);
    const { processor, published, uploads } = harness({
      inlineArtifactBytes: 400,
      shell: { run: async (): Promise<ShellOutput> => ({ exitCode: 0, stdout: big, stderr: '' }) },
      recordings: { take: () => [{ name: 'a.json', mediaType: 'application/json', bytes: Buffer.from('{"a":1}'), tool: 'model' }, { name: 'b.json', mediaType: 'application/json', bytes: Buffer.from('y'.repeat(200)), tool: 'model' }] },
    });
    await processor.process(shellJob);
    const arts = published[1]!.artifacts!;
    assert.deepEqual(arts.map((a) => [a.name, a.content !== undefined]), [['stdout.txt', true], ['a.json', true], ['b.json', false]]);
    assert.deepEqual(uploads.map((u) => u.text), ['y'.repeat(200)]);
    assert.equal(Buffer.from(arts[0]!.content!, 'base64').toString(), big);
    assert.equal(arts[2]!.digest, sha(Buffer.from('y'.repeat(200))));
  });
});

describe('StepProcessor with a secret scrubber', () => {
  test('secret values leave neither in the report (output, error details) nor in the artifact', async () => {
    const scrubber = new SecretScrubber();
    scrubber.add('DB_PASSWORD', 'canary-pw-42');
    const ok = harness({ scrubber, shell: { run: async (): Promise<ShellOutput> => ({ exitCode: 0, stdout: 'pw=canary-pw-42\n', stderr: 'canary-pw-42' }) } });
    await ok.processor.process(shellJob);
    const failing = harness({
      scrubber,
      shell: {
        run: async (): Promise<ShellOutput> => {
          throw new MuseError('MUSE_ERR_STEP_EXIT_NONZERO', 'exit 1 after canary-pw-42', { details: { stderr: 'denied for canary-pw-42' } });
        },
      },
    });
    await failing.processor.process(shellJob);
    const all = JSON.stringify([ok.published, ok.uploads, failing.published, failing.uploads]);
    assert.ok(!all.includes('canary-pw-42'), all);
    assert.equal((ok.published[1]!.output as ShellOutput).stdout, 'pw=[redacted:DB_PASSWORD]\n');
    assert.deepEqual(ok.uploads.map((u) => u.text), ['pw=[redacted:DB_PASSWORD]\n']);
    assert.equal(failing.published[1]!.error?.message, 'exit 1 after [redacted:DB_PASSWORD]');
    assert.deepEqual(failing.published[1]!.error?.details, { stderr: 'denied for [redacted:DB_PASSWORD]' });
  });
});
