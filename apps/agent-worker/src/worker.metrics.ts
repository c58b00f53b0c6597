/** The agent worker's Prometheus metrics. */
import type { Counter, Gauge, Histogram } from 'prom-client';
import type { MuseMetrics } from '@muse/telemetry';
import type { ProviderObserver } from './agent-step.executor.js';
import type { StepObserver } from './step.processor.js';

/** Steps run from milliseconds (deterministic provider) to hours (builds), in seconds. */
const STEP_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** `outcome` is `completed` or `failed` (reported), `error` (nothing could be reported) or `handed_back` (shutdown). */
export type StepMetricOutcome = 'completed' | 'failed' | 'error' | 'handed_back';

export class WorkerMetrics implements StepObserver, ProviderObserver {
  readonly steps: Counter<'role' | 'kind' | 'outcome'>;
  readonly stepDuration: Histogram<'role' | 'kind' | 'outcome'>;
  readonly inFlight: Gauge<'role'>;
  readonly providerRequests: Counter<'provider' | 'model' | 'outcome'>;
  readonly providerTokens: Counter<'provider' | 'model' | 'direction'>;

  constructor(metrics: MuseMetrics) {
    this.steps = metrics.counter('muse_worker_steps_total', 'Step attempts run by this worker, by outcome', ['role', 'kind', 'outcome']);
    this.stepDuration = metrics.histogram('muse_worker_step_duration_seconds', 'Time from taking a step job to storing its final report', ['role', 'kind', 'outcome'], STEP_BUCKETS);
    this.inFlight = metrics.gauge('muse_worker_in_flight', 'Step jobs being run now', ['role']);
    this.providerRequests = metrics.counter('muse_provider_requests_total', 'Model provider calls, by outcome', ['provider', 'model', 'outcome']);
    this.providerTokens = metrics.counter('muse_provider_tokens_total', 'Tokens sent to and received from model providers', ['provider', 'model', 'direction']);
  }

  finished(e: { role: string; kind: string; outcome: StepMetricOutcome; durationMs: number }): void {
    this.steps.inc({ role: e.role, kind: e.kind, outcome: e.outcome });
    this.stepDuration.observe({ role: e.role, kind: e.kind, outcome: e.outcome }, e.durationMs / 1000);
  }

  request(provider: string, model: string, outcome: 'ok' | 'error' | 'timeout'): void {
    this.providerRequests.inc({ provider, model, outcome });
  }

  tokens(provider: string, model: string, direction: 'input' | 'output', count: number): void {
    this.providerTokens.inc({ provider, model, direction }, count);
  }
}
