/**
 * W3C trace context across Muse's transports, on `@opentelemetry/api` only.
 *
 * The API is a few kilobytes and does nothing until an SDK registers a
 * tracer provider and a propagator (see `startTracing`): with tracing off,
 * `withSpan` runs its function under a non-recording span, `inject` writes
 * nothing and `extract` returns the context it was given. So every service
 * calls these unconditionally and pays close to nothing when no OTLP endpoint
 * is configured.
 *
 * Carriers: NATS headers (`@nats-io` `MsgHdrs`, see `natsHeadersCarrier`),
 * plain objects (HTTP headers, the `traceparent` field of step jobs and run
 * commands).
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';

export { SpanKind };
export type { Context, Span, Attributes };

/** The tracer every Muse span comes from (instrumentation scope `muse`). */
export const TRACER_NAME = 'muse';

/** Header-like carrier: anything with `get`/`set` of strings (nats.js `MsgHdrs` fits). */
export interface HeaderCarrier {
  get(key: string): string;
  set(key: string, value: string): void;
  keys(): string[];
}

export const headerCarrierGetter: TextMapGetter<HeaderCarrier> = {
  keys: (c) => c.keys(),
  get: (c, key) => {
    const v = c.get(key);
    return v === '' ? undefined : v;
  },
};

export const headerCarrierSetter: TextMapSetter<HeaderCarrier> = {
  set: (c, key, value) => c.set(key, value),
};

/** The context carried by `carrier` (a `{ traceparent, tracestate }` object or HTTP headers), on top of `base`. */
export function extractContext(carrier: Record<string, string | string[] | undefined> | undefined, base: Context = ROOT_CONTEXT): Context {
  if (!carrier) return base;
  return propagation.extract(base, carrier, {
    keys: (c) => Object.keys(c),
    get: (c, key) => {
      const v = c[key];
      return Array.isArray(v) ? v[0] : v;
    },
  });
}

/** The context a `traceparent` string (a stored one: a run's, a job's) names; `base` when there is none. */
export function contextFromTraceparent(traceparent: string | undefined, base: Context = ROOT_CONTEXT): Context {
  return traceparent === undefined ? base : extractContext({ traceparent }, base);
}

/** Writes the trace context of `ctx` into a plain-object carrier (HTTP headers); a no-op with tracing off. */
export function injectContext(carrier: Record<string, string>, ctx: Context = context.active()): Record<string, string> {
  propagation.inject(ctx, carrier);
  return carrier;
}

/** The W3C `traceparent` of `ctx`'s span, or undefined (tracing off, or no span). */
export function traceparentOf(ctx: Context = context.active()): string | undefined {
  return injectContext({}, ctx).traceparent;
}

/** The trace id (32 hex) a `traceparent` names, or undefined. */
export function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent?.split('-')[1];
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent; the active context when absent. */
  parent?: Context;
}

/**
 * Runs `fn` inside a new active span, ending it when `fn` settles; a thrown
 * error marks the span failed (with the Muse error code when there is one)
 * and is re-thrown.
 */
export async function withSpan<T>(name: string, opts: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const tracer = trace.getTracer(TRACER_NAME);
  const options = { kind: opts.kind ?? SpanKind.INTERNAL, startTime: spanClock(), ...(opts.attributes ? { attributes: opts.attributes } : {}) };
  return tracer.startActiveSpan(name, options, opts.parent ?? context.active(), async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end(spanClock());
    }
  });
}

/**
 * Now, in milliseconds since the epoch to a fraction of a microsecond: the start and end time Muse gives its spans.
 * The SDK's own default starts a span at `Date.now()`, whole milliseconds, so two spans of different services less
 * than a millisecond apart (a NATS request and the reply it serves) could show in the wrong order. A span given its
 * start must be given its end too: the SDK then ends it at `Date.now()` again.
 */
export function spanClock(): number {
  return performance.timeOrigin + performance.now();
}

/** Marks `span` failed with `err` (its `code`, when it has one, as `muse.error.code`). */
export function failSpan(span: Span, err: unknown): void {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') span.setAttribute('muse.error.code', code);
  span.recordException(err instanceof Error ? err : String(err), spanClock());
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

/** True when `span` records (tracing is on); lets callers skip building attributes for nothing. */
export function isRecording(span: Span): boolean {
  return span.isRecording();
}
