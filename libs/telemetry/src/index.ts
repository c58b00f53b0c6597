export { createLogger, REDACT_PATHS } from './logger.js';
export type { Logger } from './logger.js';
export { SecretScrubber, processScrubber, MIN_SECRET_LENGTH } from './secret-scrubber.js';
export { MuseMetrics } from './metrics.js';
export { startTracing } from './tracing.js';
export { Readiness } from './health.js';
export type { ReadinessCheck } from './health.js';
export { ServiceKitModule, LOGGER } from './service-kit.module.js';
export { PinoNestLogger } from './nest-logger.js';
export { runService } from './run-service.js';
export type { ServiceKit, ServiceSpec, RunningService } from './run-service.js';
export {
  SpanKind,
  TRACER_NAME,
  contextFromTraceparent,
  extractContext,
  failSpan,
  headerCarrierGetter,
  headerCarrierSetter,
  injectContext,
  traceIdOf,
  spanClock,
  traceparentOf,
  withSpan,
} from './trace-context.js';
export type { HeaderCarrier, SpanOptions, Span, Context, Attributes } from './trace-context.js';
export { ServiceProfiler, CPU_SAMPLING_INTERVAL_US, hotFunctionsOf } from './service-profiler.js';
export type { MessageProbe } from './service-profiler.js';
export { buildProfileReport, EVENT_LOOP_SATURATED, QUEUE_GROWTH_MIN, IDLE_CPU_SHARE, IDLE_EVENT_LOOP } from './profile-report.js';
