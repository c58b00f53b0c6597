/** The agent worker's Prometheus metrics. */
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { BreakerState, FailoverObserver } from '@muse/providers';
import type { MuseMetrics } from '@muse/telemetry';
import type { ProviderObserver } from './agent-step.executor.js';
import type { StepObserver } from './step.processor.js';

/** Steps run from milliseconds (deterministic provider) to hours (builds), in seconds. */
const STEP_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
/** Model calls take from milliseconds (local) to minutes (long generations), in seconds. */
const PROVIDER_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** `muse_provider_breaker_state` values. */
const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** `outcome` is `completed` or `failed` (reported), `error` (nothing could be reported) or `handed_back` (shutdown). */
export type StepMetricOutcome = 'completed' | 'failed' | 'error' | 'handed_back';

export class WorkerMetrics implements StepObserver, ProviderObserver, FailoverObserver {
  readonly steps: Counter<'role' | 'kind' | 'outcome' | 'project'>;
  readonly stepDuration: Histogram<'role' | 'kind' | 'outcome' | 'project'>;
  readonly inFlight: Gauge<'role'>;
  readonly queueWait: Histogram<'role'>;
  readonly utilization: Gauge<'role'>;
  readonly steals: Counter<'role' | 'reason'>;
  readonly providerRequests: Counter<'provider' | 'model' | 'outcome'>;
  readonly providerTokens: Counter<'provider' | 'model' | 'direction' | 'project'>;
  readonly providerCost: Counter<'provider' | 'model' | 'project'>;
  /** USD per million tokens, by provider name (from the providers configuration's `price`). */
  private prices = new Map<string, { inputPerMTok: number; outputPerMTok: number }>();
  private modelPrices: Record<string, { inputPerMTok: number; outputPerMTok: number }> = {};
  readonly budgetReservations: Counter<'outcome'>;
  readonly providerAttempts: Counter<'provider' | 'outcome'>;
  readonly providerAttemptDuration: Histogram<'provider'>;
  readonly providerFallbacks: Counter<'role' | 'provider' | 'code'>;
  readonly providerBreaker: Gauge<'provider'>;

  constructor(metrics: MuseMetrics) {
    this.steps = metrics.counter('muse_worker_steps_total', 'Step attempts run by this worker, by outcome', ['role', 'kind', 'outcome', 'project']);
    this.stepDuration = metrics.histogram('muse_worker_step_duration_seconds', 'Time from taking a step job to storing its final report', ['role', 'kind', 'outcome', 'project'], STEP_BUCKETS);
    this.inFlight = metrics.gauge('muse_worker_in_flight', 'Step jobs being run now', ['role']);
    this.queueWait = metrics.histogram('muse_queue_wait_seconds', 'Time a step job waited in its role queue before a worker took it (retry delays excluded)', ['role'], STEP_BUCKETS);
    this.steals = metrics.counter('muse_worker_steals_total', 'Step jobs this worker took from another agent\'s own queue: overloaded (its backlog) or silent (the agent stopped beating)', ['role', 'reason']);
    this.utilization = metrics.gauge('muse_worker_utilization', 'Running step jobs over the worker\'s concurrency, per role (0 idle to 1 full)', ['role']);
    this.providerRequests = metrics.counter('muse_provider_requests_total', 'Model provider calls, by outcome', ['provider', 'model', 'outcome']);
    this.providerTokens = metrics.counter('muse_provider_tokens_total', 'Tokens sent to and received from model providers', ['provider', 'model', 'direction', 'project']);
    this.providerCost = metrics.counter('muse_provider_cost_usd_total', 'What model calls cost, in USD, from the tokens and each provider\'s configured price', ['provider', 'model', 'project']);
    this.budgetReservations = metrics.counter('muse_budget_reservations_total', 'Model calls that reserved their estimate from a run budget, or were refused because it was used up', ['outcome']);
    this.providerAttempts = metrics.counter('muse_provider_attempts_total', 'Calls to one provider of a failover chain (retries included), by outcome: ok or the error code', ['provider', 'outcome']);
    this.providerAttemptDuration = metrics.histogram('muse_provider_attempt_duration_seconds', 'Duration of one call to one provider, streaming included', ['provider'], PROVIDER_BUCKETS);
    this.providerFallbacks = metrics.counter('muse_provider_fallbacks_total', 'Times a role\'s failover chain gave up on a provider and moved on', ['role', 'provider', 'code']);
    this.providerBreaker = metrics.gauge('muse_provider_breaker_state', 'Circuit breaker of each provider: 0 closed, 1 half-open, 2 open', ['provider']);
  }

  finished(e: { role: string; kind: string; outcome: StepMetricOutcome; durationMs: number; project: string }): void {
    this.steps.inc({ role: e.role, kind: e.kind, outcome: e.outcome, project: e.project });
    this.stepDuration.observe({ role: e.role, kind: e.kind, outcome: e.outcome, project: e.project }, e.durationMs / 1000);
  }

  request(provider: string, model: string, outcome: 'ok' | 'error' | 'timeout'): void {
    this.providerRequests.inc({ provider, model, outcome });
  }

  tokens(provider: string, model: string, direction: 'input' | 'output', count: number, project: string): void {
    this.providerTokens.inc({ provider, model, direction, project }, count);
    const price = this.modelPrices[model] ?? this.prices.get(provider);
    if (price && count > 0) this.providerCost.inc({ provider, model, project }, (count * (direction === 'input' ? price.inputPerMTok : price.outputPerMTok)) / 1e6);
  }

  /** Prices by model (`MUSE_MODEL_PRICES`): they win over the providers' `price`. */
  setModelPrices(prices: Record<string, { inputPerMTok: number; outputPerMTok: number }>): void {
    this.modelPrices = prices;
  }

  /** A call's budget reservation: `reserved`, or `refused` (the run's budget is used up). */
  reservation(outcome: 'reserved' | 'refused'): void {
    this.budgetReservations.inc({ outcome });
  }

  /** Prices of the configured providers (`price` in the providers configuration). */
  setPrices(providers: Record<string, { price?: { inputPerMTok: number; outputPerMTok: number } | undefined }>): void {
    this.prices = new Map(Object.entries(providers).flatMap(([name, p]) => (p.price ? [[name, p.price] as const] : [])));
  }

  attempt(provider: string, outcome: string, durationMs: number): void {
    this.providerAttempts.inc({ provider, outcome });
    // A call skipped by an open breaker took no time at the provider: it would only skew the histogram.
    if (outcome !== 'MUSE_ERR_PROVIDER_CIRCUIT_OPEN') this.providerAttemptDuration.observe({ provider }, durationMs / 1000);
  }

  fallback(role: string, provider: string, code: string): void {
    this.providerFallbacks.inc({ role, provider, code });
  }

  breakerState(provider: string, state: BreakerState): void {
    this.providerBreaker.set({ provider }, BREAKER_VALUE[state]);
  }
}
