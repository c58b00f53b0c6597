import { Registry, collectDefaultMetrics, Counter, Histogram, Gauge } from 'prom-client';

/**
 * How often the event-loop lag is sampled (`muse_process_nodejs_eventloop_lag_*`), in ms. prom-client's default of
 * 10 ms is a timer that wakes every service 100 times a second, busy or not. Measured on an idle cluster of the seven
 * services (2 cores, 20 s after 15 s of quiet): at 10 ms each service woke ~100 times a second and the cluster used
 * 69 cpu-ms a second, at 100 ms 10 and 39 (the Node services alone 60 and 30). Every blocking of the loop longer than
 * this still shows in the lag's max and percentiles, and a 15 s scrape still has 150 samples behind its p99.
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/**
 * One registry per process, with Node's default metrics under `muse_process_`
 * and a `service` label on everything. Metric names are documented in the README.
 */
export class MuseMetrics {
  readonly registry = new Registry();

  constructor(readonly service: string) {
    this.registry.setDefaultLabels({ service });
    collectDefaultMetrics({ register: this.registry, prefix: 'muse_process_', eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
  }

  counter<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<L>;
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge<L>;
    return new Gauge({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string>(name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]): Histogram<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<L>;
    return new Histogram({
      name,
      help,
      labelNames,
      buckets: buckets ?? [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [this.registry],
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
