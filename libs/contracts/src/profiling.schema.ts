/**
 * Cluster-wide profiling sessions (`POST /v1/profiling/sessions`,
 * `DELETE /v1/profiling/sessions/{id}`, `muse profile`): the control messages
 * every service listens to on `profilingControlSubject`, the profile each
 * process sends back on `profilingReportSubject`, and the report the gateway
 * builds from them.
 */
import { z } from 'zod';

/** A session stops itself after this long even if nobody stops it, in seconds. */
export const PROFILING_MAX_SECONDS = 600;

export const StartProfilingBodySchema = z.object({
  /** Sessions stop themselves after this long, in seconds. @default 60 */
  maxSeconds: z.number().int().min(1).max(PROFILING_MAX_SECONDS).optional(),
  /**
   * Also run V8's CPU profiler, for the top self-time functions of each process. Opt-in: the `profiling` bench row
   * could not bound its cost under 5% (−11% to +7% of cluster CPU, up to +15% in one busy process); without it a
   * session costs no measurable CPU.
   * @default false
   */
  cpuProfile: z.boolean().optional(),
});
export type StartProfilingBody = z.infer<typeof StartProfilingBodySchema>;

export const ProfilingControlSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('start'), sessionId: z.string(), maxSeconds: z.number().int().min(1), cpuProfile: z.boolean() }),
  z.object({ op: z.literal('stop'), sessionId: z.string() }),
]);
export type ProfilingControl = z.infer<typeof ProfilingControlSchema>;

export const ProfiledProcessSchema = z.object({ service: z.string(), instance: z.string() });

export const HotFunctionSchema = z.object({
  /** `name (url:line)`; `(garbage collector)`, `(program)` for V8's own. */
  function: z.string(),
  selfMs: z.number(),
  /** Share of the process's sampled non-idle time. */
  selfShare: z.number(),
});

export const ServiceProfileSchema = ProfiledProcessSchema.extend({
  sessionId: z.string(),
  durationMs: z.number(),
  cpu: z.object({
    userMs: z.number(),
    systemMs: z.number(),
    /** CPU time over wall time: 1 = one core busy all the time. */
    share: z.number(),
  }),
  eventLoop: z.object({
    /** Busy share of the event loop (performance.eventLoopUtilization), 0..1. */
    utilization: z.number(),
    delayP50Ms: z.number(),
    delayP99Ms: z.number(),
    delayMaxMs: z.number(),
  }),
  memory: z.object({
    rssStartBytes: z.number(),
    rssEndBytes: z.number(),
    rssPeakBytes: z.number(),
    heapUsedStartBytes: z.number(),
    heapUsedEndBytes: z.number(),
    heapUsedPeakBytes: z.number(),
  }),
  /** Top self-time functions (empty without `cpuProfile`). */
  hotFunctions: z.array(HotFunctionSchema),
  /** Messages in and out over NATS during the session, and per second. */
  messages: z.object({ in: z.number(), out: z.number(), inPerSec: z.number(), outPerSec: z.number() }),
  /** `muse_queue_depth` (waiting jobs) per role at the start, the end and its peak, where this process exports it. */
  queues: z.record(z.string(), z.object({ start: z.number(), end: z.number(), peak: z.number() })),
});
export type ServiceProfile = z.infer<typeof ServiceProfileSchema>;

/** What a service says on the report subject: it took part (`started`) or its profile (`profile`). */
export const ProfilingReplySchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('started'), sessionId: z.string(), service: z.string(), instance: z.string() }),
  z.object({ kind: z.literal('profile'), profile: ServiceProfileSchema }),
]);
export type ProfilingReply = z.infer<typeof ProfilingReplySchema>;

export const ProfilingSessionSchema = z.object({
  id: z.string(),
  startedAt: z.string(),
  maxSeconds: z.number().int(),
  cpuProfile: z.boolean(),
  /** The processes that answered the start. */
  processes: z.array(ProfiledProcessSchema),
});
export type ProfilingSession = z.infer<typeof ProfilingSessionSchema>;

export const ProfileReportSchema = z.object({
  sessionId: z.string(),
  durationMs: z.number(),
  /** The processes that answered, busiest (CPU share) first. */
  services: z.array(ServiceProfileSchema),
  /** The processes that took part but sent no profile in time. */
  missing: z.array(ProfiledProcessSchema),
  queues: z.record(z.string(), z.object({ start: z.number(), end: z.number(), peak: z.number() })),
  bottleneck: z.object({
    kind: z.enum(['queue', 'cpu', 'event-loop', 'none']),
    /** The service (or queue role) named. */
    target: z.string(),
    reason: z.string(),
    hotFunctions: z.array(HotFunctionSchema),
  }),
  /** The report as text, for terminals (`muse profile`). */
  summary: z.string(),
});
export type ProfileReport = z.infer<typeof ProfileReportSchema>;
