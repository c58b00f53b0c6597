/**
 * Failover chains: each provider behind its own cockatiel circuit breaker
 * (shared by every chain that lists it) and retry policy; a chain per agent
 * role tries its providers in order and records every one it gave up on.
 *
 * - Retries (same provider) only for retryable errors (5xx, timeouts,
 *   connection errors, 429), with exponential backoff, or the provider's
 *   `Retry-After` when it sent one. A `Retry-After` longer than
 *   `maxRetryWaitMs` is not waited for here: the chain moves on.
 * - The breaker counts retryable failures only (a 400 says nothing about
 *   the provider's health); after `consecutiveFailures` of them it opens,
 *   calls skip the provider for `openMs`, then one trial call half-opens it:
 *   success closes it, failure opens it again.
 * - Any provider error moves on to the next provider (a model missing at a
 *   local Ollama is no reason not to ask Claude); the caller's abort does not.
 */
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  ExponentialBackoff,
  circuitBreaker,
  handleWhen,
  retry,
  type CircuitBreakerPolicy,
  type IBackoff,
  type IBackoffFactory,
  type IRetryBackoffContext,
  type RetryPolicy,
} from 'cockatiel';
import { MuseError } from '@muse/contracts';
import { SpanKind, withSpan } from '@muse/telemetry';
import type { CompletionRequest, CompletionResult, ModelProvider, ProviderFallback } from './provider.js';
import { toProviderError } from './provider-errors.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** What a chain reports, for metrics and logs. */
export interface FailoverObserver {
  /** One call attempt at one provider, with its outcome (`ok` or an error code) and duration in ms. */
  attempt?(provider: string, outcome: string, durationMs: number): void;
  /** The chain serving a step of `role` gave up on `provider` with `code` and moves on (or has no provider left). */
  fallback?(role: string, provider: string, code: string): void;
  breakerState?(provider: string, state: BreakerState): void;
}

export interface GuardOptions {
  /** Attempts per call at this provider, first included. @default 2 */
  maxAttempts: number;
  /** First retry delay without Retry-After, in ms (doubles each retry, capped at 10 s). @default 200 */
  retryBaseMs: number;
  /** Longest Retry-After waited for at this provider before failing over, in ms. @default 10_000 */
  maxRetryWaitMs: number;
  /** Consecutive retryable failures that open the breaker. @default 5 */
  consecutiveFailures: number;
  /** How long an open breaker skips the provider before a trial call, in ms. @default 30_000 */
  openMs: number;
  /** Model sent to this provider instead of the step's (providers of one chain rarely share model names). */
  model?: string;
}

export const DEFAULT_GUARD: GuardOptions = { maxAttempts: 2, retryBaseMs: 200, maxRetryWaitMs: 10_000, consecutiveFailures: 5, openMs: 30_000 };

function retryAfterOf(err: unknown): number | undefined {
  if (!(err instanceof MuseError)) return undefined;
  const d = err.details as { retryAfterMs?: unknown } | undefined;
  return typeof d?.retryAfterMs === 'number' ? d.retryAfterMs : undefined;
}

/**
 * Backoff that waits the error's `Retry-After` when it has one, else the
 * exponential delay; a cockatiel backoff factory so the retry policy (and
 * its abort handling) stays the library's.
 */
class RetryAfterBackoff implements IBackoffFactory<IRetryBackoffContext<unknown>> {
  constructor(private readonly exp: IBackoffFactory<IRetryBackoffContext<unknown>>) {}
  next(ctx: IRetryBackoffContext<unknown>): IBackoff<IRetryBackoffContext<unknown>> {
    const inner = this.exp.next(ctx);
    const after = 'error' in ctx.result ? retryAfterOf(ctx.result.error) : undefined;
    return { duration: after ?? inner.duration, next: (c) => new RetryAfterBackoff(inner).next(c) };
  }
}

/** One provider with its breaker and retry policy. */
export class GuardedProvider {
  readonly breaker: CircuitBreakerPolicy;
  private readonly retry: RetryPolicy;

  constructor(
    readonly provider: ModelProvider,
    readonly opts: GuardOptions,
    private readonly observer: FailoverObserver = {},
  ) {
    const countsAgainst = (err: Error): boolean => err instanceof MuseError && err.retryable;
    this.breaker = circuitBreaker(handleWhen(countsAgainst), {
      halfOpenAfter: opts.openMs,
      breaker: new ConsecutiveBreaker(opts.consecutiveFailures),
    });
    this.breaker.onStateChange((s) => observer.breakerState?.(provider.name, stateName(s)));
    observer.breakerState?.(provider.name, 'closed');
    this.retry = retry(
      handleWhen((err) => {
        if (!(err instanceof MuseError) || !err.retryable || err.code === 'MUSE_ERR_PROVIDER_CIRCUIT_OPEN') return false;
        const after = retryAfterOf(err);
        return after === undefined || after <= opts.maxRetryWaitMs;
      }),
      { maxAttempts: Math.max(0, opts.maxAttempts - 1), backoff: new RetryAfterBackoff(new ExponentialBackoff({ initialDelay: opts.retryBaseMs, maxDelay: 10_000 })) },
    );
  }

  get name(): string {
    return this.provider.name;
  }

  get state(): BreakerState {
    return stateName(this.breaker.state);
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    const name = this.provider.name;
    return this.retry.execute(async () => traceCall(name, req, async () => {
      const started = performance.now();
      try {
        const res = await this.breaker.execute(async () => {
          try {
            return await this.provider.complete(req);
          } catch (err) {
            throw req.signal?.aborted ? err : toProviderError(name, err);
          }
        }, req.signal);
        this.observer.attempt?.(name, 'ok', performance.now() - started);
        return res;
      } catch (err) {
        if (err instanceof BrokenCircuitError) {
          this.observer.attempt?.(name, 'MUSE_ERR_PROVIDER_CIRCUIT_OPEN', 0);
          throw new MuseError('MUSE_ERR_PROVIDER_CIRCUIT_OPEN', `provider "${name}" skipped: its circuit breaker is open`, { details: { provider: name }, cause: err });
        }
        this.observer.attempt?.(name, err instanceof MuseError ? err.code : 'aborted', performance.now() - started);
        throw err;
      }
    }), req.signal);
  }
}

/**
 * One call to one provider as a client span (`muse.provider.call <name>`), a child of the step attempt's span.
 * A no-op until a service starts the OpenTelemetry SDK.
 */
async function traceCall<T extends CompletionResult>(name: string, req: CompletionRequest, fn: () => Promise<T>): Promise<T> {
  return withSpan(`muse.provider.call ${name}`, { kind: SpanKind.CLIENT, attributes: { 'muse.provider': name, 'gen_ai.request.model': req.model } }, async (span) => {
    const res = await fn();
    span.setAttributes({ 'gen_ai.usage.input_tokens': res.usage.inputTokens, 'gen_ai.usage.output_tokens': res.usage.outputTokens });
    return res;
  });
}

function stateName(s: CircuitState): BreakerState {
  if (s === CircuitState.Closed) return 'closed';
  if (s === CircuitState.HalfOpen) return 'half_open';
  return 'open';
}

/** Providers tried in order until one answers. */
export class FailoverChain implements ModelProvider {
  readonly name: string;

  constructor(
    readonly role: string,
    readonly members: readonly GuardedProvider[],
    private readonly observer: FailoverObserver = {},
  ) {
    if (members.length === 0) throw new MuseError('MUSE_ERR_PROVIDERS_CONFIG_INVALID', `the chain of role "${role}" has no providers`);
    this.name = members.length === 1 ? members[0]!.name : `chain:${role}`;
  }

  async complete(req: CompletionRequest): Promise<CompletionResult> {
    const fallbacks: ProviderFallback[] = [];
    let last: MuseError | undefined;
    for (const m of this.members) {
      try {
        const res = await m.complete({ ...req, model: m.opts.model ?? req.model });
        return fallbacks.length > 0 ? { ...res, fallbacks } : res;
      } catch (err) {
        if (req.signal?.aborted || !(err instanceof MuseError)) throw err;
        last = err;
        fallbacks.push({ provider: m.name, code: err.code, message: err.message });
        // Labelled with the step's role (a role without its own chain uses `default`'s).
        this.observer.fallback?.(req.role ?? this.role, m.name, err.code);
      }
    }
    // Every provider failed: the step fails with the last error, retryable if any failure was (a later attempt may find one healthy).
    const retryable = fallbacks.some((f) => f.code !== 'MUSE_ERR_PROVIDER_REJECTED');
    throw new MuseError(last!.code, `every provider of role "${this.role}" failed; last: ${last!.message}`, {
      details: { ...(last!.details as object), fallbacks },
      retryable,
      cause: last,
    });
  }
}

/** Picks the chain of the request's role, or the `default` chain. */
export class ProviderRouter implements ModelProvider {
  readonly name = 'router';

  constructor(private readonly chains: ReadonlyMap<string, ModelProvider>) {
    if (!chains.has('default')) throw new MuseError('MUSE_ERR_PROVIDERS_CONFIG_INVALID', 'the providers configuration has no default chain');
  }

  chainFor(role: string | undefined): ModelProvider {
    return (role !== undefined ? this.chains.get(role) : undefined) ?? this.chains.get('default')!;
  }

  complete(req: CompletionRequest): Promise<CompletionResult> {
    return this.chainFor(req.role).complete(req);
  }
}
