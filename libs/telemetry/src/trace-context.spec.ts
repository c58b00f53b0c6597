import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { HrTime } from '@opentelemetry/api';
import { contextFromTraceparent, injectContext, traceIdOf, traceparentOf, withSpan } from './trace-context.js';

describe('trace context without an SDK (tracing off)', () => {
  test('spans are no-ops, nothing is injected, a stored traceparent stays readable', async () => {
    const out = await withSpan('x', {}, async (span) => {
      assert.equal(span.isRecording(), false);
      return traceparentOf();
    });
    assert.equal(out, undefined);
    assert.deepEqual(injectContext({ a: '1' }), { a: '1' });
    assert.equal(traceIdOf('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'), '0af7651916cd43dd8448eb211c80319c');
  });
});

describe('trace context with the SDK (in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  before(() => provider.register()); // W3C trace context (and baggage), as startTracing registers it
  after(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
    propagation.disable();
  });

  test('a stored traceparent parents a span in another "process"; errors mark the span', async () => {
    // "Gateway": the root span, its context stored as text.
    const stored = await withSpan('submit', {}, async () => traceparentOf());
    assert.match(stored!, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    // "Worker": no shared memory, only the string.
    await assert.rejects(
      withSpan('attempt', { parent: contextFromTraceparent(stored) }, async () => {
        const headers = injectContext({});
        assert.equal(traceIdOf(headers.traceparent), traceIdOf(stored));
        throw Object.assign(new Error('boom'), { code: 'MUSE_ERR_X' });
      }),
      /boom/,
    );
    const [submit, attempt] = ['submit', 'attempt'].map((n) => exporter.getFinishedSpans().find((s) => s.name === n)!);
    assert.equal(attempt!.spanContext().traceId, submit!.spanContext().traceId);
    assert.equal(attempt!.parentSpanContext?.spanId, submit!.spanContext().spanId);
    assert.equal(attempt!.status.code, 2);
    assert.equal(attempt!.attributes['muse.error.code'], 'MUSE_ERR_X');
  });

  test('span times are finer than a millisecond: spans run one after another never overlap, an exception falls inside its span', async () => {
    exporter.reset();
    // Back to back, each much shorter than a millisecond: at Date.now() resolution (the SDK's default start) most of
    // them would start before the one before them ended.
    for (let i = 0; i < 50; i++) await withSpan(`seq ${i}`, {}, async () => undefined);
    await withSpan('fails', {}, async () => {
      throw new Error('boom');
    }).catch(() => undefined);
    const ms = (t: HrTime) => t[0] * 1e3 + t[1] / 1e6;
    const spans = exporter.getFinishedSpans();
    const seq = Array.from({ length: 50 }, (_, i) => spans.find((s) => s.name === `seq ${i}`)!);
    for (let i = 1; i < seq.length; i++) {
      assert.ok(ms(seq[i]!.startTime) >= ms(seq[i - 1]!.endTime), `seq ${i} starts at ${ms(seq[i]!.startTime)}, after seq ${i - 1} ended at ${ms(seq[i - 1]!.endTime)}`);
    }
    assert.ok(seq.some((s) => s.startTime[1] % 1e6 !== 0), 'some start has a sub-millisecond part');
    const fails = spans.find((s) => s.name === 'fails')!;
    const thrown = fails.events.find((e) => e.name === 'exception')!;
    assert.ok(ms(fails.startTime) <= ms(thrown.time) && ms(thrown.time) <= ms(fails.endTime), 'the exception is recorded within its span');
  });
});
