/**
 * One trace per run, across processes: a whole cluster exporting OTLP/HTTP to
 * a receiver in this process; a 3-step run (agent, shell, agent) whose outputs
 * become artifacts. Every span of the run shares the trace of its submission,
 * and the parent links go gateway -> coordinator -> agent-worker ->
 * artifact-store, by each process's `service.name`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { OtlpReceiver, type ReceivedSpan } from '@muse/cluster';
import { http, startTestCluster, waitForRun, type TestCluster } from '../support/harness.js';

const SERVER = 2;
const CONSUMER = 5;

/** Consecutive duplicates removed: the services a chain of spans passes through. */
function hops(chain: ReceivedSpan[]): string[] {
  const out: string[] = [];
  for (const s of chain) if (out.at(-1) !== s.service) out.push(s.service);
  return out;
}

async function until<T>(what: string, f: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('distributed tracing of a run', { timeout: 180_000 }, () => {
  const receiver = new OtlpReceiver();
  let t: TestCluster;
  before(async () => {
    const endpoint = await receiver.start();
    // A short batch delay so spans arrive while the test waits, not 5 s later.
    // Every output uploaded (MUSE_INLINE_ARTIFACT_BYTES=0), as a large one is: the upload's hop (worker -> store) is
    // traced too. Small outputs ride in the report and are written by the commit, whose span is checked below.
    t = await startTestCluster({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '200', MUSE_INLINE_ARTIFACT_BYTES: '0' } });
  });
  after(async () => {
    await t?.stop();
    await receiver.stop();
  });

  test('every span of the run is in one trace, linked gateway -> coordinator -> worker -> artifact store', async () => {
    const definition = {
      name: 'traced-three',
      steps: [
        { id: 'plan', agent: 'orchestrator', prompt: 'Plan {{ input.topic }}' },
        { id: 'lint', tool: 'shell', command: 'echo linting', needs: ['plan'] },
        { id: 'review', agent: 'reviewer', prompt: 'Review {{ steps.plan.output.text }}', needs: ['lint'] },
      ],
    };
    const submitted = await http(t.gateway, 'POST', '/v1/runs', { definition, input: { topic: 'traces' } });
    assert.equal(submitted.status, 202, submitted.text);
    const runId = submitted.body.id as string;
    const run = await waitForRun(t.gateway, runId);
    assert.equal(run.status, 'succeeded');

    const ofRun = (s: ReceivedSpan) => s.attributes['muse.run_id'] === runId;
    const root = await until('the submission span', () => receiver.spans.find((s) => s.name === 'muse.run.submit' && ofRun(s)));
    assert.equal(root.service, 'muse-gateway');
    assert.equal(root.kind, SERVER);
    assert.equal(root.parentSpanId, '', 'the submission is the root of the run trace');

    // Wait for the last pieces: the third step's attempt and the commit of its artifact.
    const attempts = await until('a step attempt span per step', () => {
      const a = receiver.spans.filter((s) => s.name.startsWith('muse.step.attempt') && ofRun(s));
      return new Set(a.map((s) => s.attributes['muse.step_id'])).size === 3 ? a : undefined;
    });
    const commits = await until('three artifact commits', () => {
      const c = receiver.spans.filter((s) => s.traceId === root.traceId && s.service === 'muse-artifact-store' && s.name.startsWith('muse.serve'));
      return c.length >= 3 ? c : undefined;
    });
    await new Promise((r) => setTimeout(r, 1_000)); // the stragglers of the last batch

    // One trace: every span that names the run is in the submission's trace, and so is every span under it.
    const runSpans = receiver.spans.filter(ofRun);
    assert.ok(runSpans.length >= 10, `spans naming the run: ${runSpans.length}`);
    assert.deepEqual([...new Set(runSpans.map((s) => s.traceId))], [root.traceId], 'one trace per run');
    const inTrace = [...receiver.trace(root.traceId).values()];
    for (const s of inTrace) {
      assert.equal(receiver.ancestry(s).at(-1)!.spanId, root.spanId, `${s.service} ${s.name} hangs off the submission (no broken parent link)`);
    }
    assert.deepEqual(
      [...new Set(inTrace.map((s) => s.service))].sort(),
      ['muse-agent-worker', 'muse-artifact-store', 'muse-coordinator', 'muse-gateway'],
    );

    // A step attempt span per step, in the worker, each the child of a coordinator enqueue span.
    assert.deepEqual([...new Set(attempts.map((s) => s.attributes['muse.step_id']))].sort(), ['lint', 'plan', 'review']);
    for (const a of attempts) {
      assert.equal(a.service, 'muse-agent-worker');
      assert.equal(a.kind, CONSUMER);
      const parent = receiver.trace(a.traceId).get(a.parentSpanId)!;
      assert.equal(parent.service, 'muse-coordinator');
      assert.match(parent.name, /^muse\.step\.enqueue /);
      assert.equal(parent.attributes['muse.step_id'], a.attributes['muse.step_id']);
    }

    // The blob upload of each step: artifact store <- worker (upload, attempt) <- coordinator <- gateway.
    const puts = inTrace.filter((s) => s.name === 'muse.artifact.blob.put');
    const attemptOf = (s: ReceivedSpan) => receiver.ancestry(s).find((x) => x.name.startsWith('muse.step.attempt'));
    // At least the output of each step (an agent step also uploads its recorded model call).
    assert.deepEqual([...new Set(puts.map((p) => attemptOf(p)?.attributes['muse.step_id']))].sort(), ['lint', 'plan', 'review'], 'blob uploads under every step');
    for (const p of puts) {
      const chain = hops(receiver.ancestry(p));
      assert.deepEqual(chain.slice(0, 2), ['muse-artifact-store', 'muse-agent-worker'], chain.join(' <- '));
      assert.ok(chain.includes('muse-coordinator'), chain.join(' <- '));
      assert.equal(chain.at(-1), 'muse-gateway');
      // Process boundaries the first step crosses in order: gateway, coordinator, worker, store.
      // (Later steps go on through the reports of the steps before them: their chains are longer.)
      if (attemptOf(p)!.attributes['muse.step_id'] === 'plan') {
        assert.deepEqual(chain, ['muse-artifact-store', 'muse-agent-worker', 'muse-coordinator', 'muse-gateway']);
      }
    }
    // The artifact commits (NATS request from the coordinator's handling of the worker's report).
    for (const c of commits) assert.equal(receiver.trace(c.traceId).get(c.parentSpanId)!.service, 'muse-coordinator');

    // Provider calls under the agent steps, the shell tool call under the shell step.
    const under = (name: RegExp, step: string) => inTrace.filter((s) => name.test(s.name) && attemptOf(s)?.attributes['muse.step_id'] === step);
    assert.equal(under(/^muse\.provider\.call /, 'plan').length, 1);
    assert.equal(under(/^muse\.provider\.call /, 'review').length, 1);
    assert.equal(under(/^muse\.tool\.shell$/, 'lint').length, 1);
    assert.equal(receiver.refused, 0, 'every export was OTLP/HTTP JSON');
  });
});
