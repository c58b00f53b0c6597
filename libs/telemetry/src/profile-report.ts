/**
 * Turns the profiles of one session into a report that names the
 * bottleneck, in this order:
 *
 * 1. a queue whose waiting jobs grew over the session (work arrives faster
 *    than its role's workers finish it): the role's queue;
 * 2. a process whose event loop was busy most of the time
 *    (`EVENT_LOOP_SATURATED`): it cannot take more work, whatever its CPU;
 * 3. otherwise the process with the highest CPU share, with its top
 *    self-time functions — unless every process was nearly idle (`none`).
 *
 * Pure: unit-tested without a cluster.
 */
import type { ProfileReport, ServiceProfile } from '@muse/contracts';

/** Event-loop utilization from which a process counts as saturated (0..1). */
export const EVENT_LOOP_SATURATED = 0.9;
/** A queue counts as growing when it ended at least this many jobs above its start. */
export const QUEUE_GROWTH_MIN = 5;
/** Below this CPU share (of one core) and event-loop utilization in every process, the cluster was idle: no bottleneck. */
export const IDLE_CPU_SHARE = 0.1;
export const IDLE_EVENT_LOOP = 0.5;

type Queues = ProfileReport['queues'];

export function buildProfileReport(
  sessionId: string,
  profiles: readonly ServiceProfile[],
  missing: ProfileReport['missing'] = [],
): ProfileReport {
  const services = [...profiles].sort((a, b) => b.cpu.share - a.cpu.share);
  const durationMs = Math.max(0, ...services.map((s) => s.durationMs));
  // Every observability replica exports the same depths: take the largest view of each role.
  const queues: Queues = {};
  for (const p of services) {
    for (const [role, q] of Object.entries(p.queues)) {
      const seen = queues[role];
      queues[role] = seen ? { start: Math.max(seen.start, q.start), end: Math.max(seen.end, q.end), peak: Math.max(seen.peak, q.peak) } : { ...q };
    }
  }
  const bottleneck = findBottleneck(services, queues);
  const report: ProfileReport = { sessionId, durationMs, services, missing, queues, bottleneck, summary: '' };
  report.summary = summarize(report);
  return report;
}

function findBottleneck(services: ServiceProfile[], queues: Queues): ProfileReport['bottleneck'] {
  const growing = Object.entries(queues)
    .map(([role, q]) => ({ role, growth: q.end - q.start, q }))
    .filter((g) => g.growth >= QUEUE_GROWTH_MIN)
    .sort((a, b) => b.growth - a.growth)[0];
  if (growing) {
    return {
      kind: 'queue',
      target: growing.role,
      reason: `queue "${growing.role}" grew from ${growing.q.start} to ${growing.q.end} waiting jobs (peak ${growing.q.peak}): its agent workers do not keep up`,
      hotFunctions: [],
    };
  }
  const saturated = [...services].sort((a, b) => b.eventLoop.utilization - a.eventLoop.utilization)[0];
  if (saturated && saturated.eventLoop.utilization >= EVENT_LOOP_SATURATED) {
    return {
      kind: 'event-loop',
      target: saturated.service,
      reason: `${saturated.service} (${saturated.instance}) had its event loop busy ${pct(saturated.eventLoop.utilization)} of the time (p99 delay ${saturated.eventLoop.delayP99Ms.toFixed(1)} ms)`,
      hotFunctions: saturated.hotFunctions,
    };
  }
  const busiest = services[0];
  if (!busiest) return { kind: 'none', target: '', reason: 'no process sent a profile', hotFunctions: [] };
  if (services.every((s) => s.cpu.share < IDLE_CPU_SHARE && s.eventLoop.utilization < IDLE_EVENT_LOOP)) {
    return { kind: 'none', target: '', reason: `no bottleneck: the cluster was mostly idle (busiest: ${busiest.service} at ${pct(busiest.cpu.share)} of a core)`, hotFunctions: busiest.hotFunctions };
  }
  return {
    kind: 'cpu',
    target: busiest.service,
    reason: `${busiest.service} (${busiest.instance}) used the most CPU: ${pct(busiest.cpu.share)} of a core`,
    hotFunctions: busiest.hotFunctions,
  };
}

function summarize(r: ProfileReport): string {
  const lines = [`profiling session ${r.sessionId}: ${(r.durationMs / 1000).toFixed(1)} s, ${r.services.length} processes`];
  lines.push(`bottleneck: ${r.bottleneck.reason}`);
  for (const f of r.bottleneck.hotFunctions.slice(0, 5)) lines.push(`  ${pct(f.selfShare).padStart(6)}  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.function}`);
  lines.push('', 'process                          cpu   loop  p99 delay    rss peak   msgs in/s  msgs out/s');
  for (const s of r.services) {
    lines.push(
      [
        `${s.service}/${s.instance}`.slice(0, 30).padEnd(30),
        pct(s.cpu.share).padStart(6),
        pct(s.eventLoop.utilization).padStart(6),
        `${s.eventLoop.delayP99Ms.toFixed(1)} ms`.padStart(10),
        `${(s.memory.rssPeakBytes / 2 ** 20).toFixed(0)} MiB`.padStart(11),
        s.messages.inPerSec.toFixed(1).padStart(11),
        s.messages.outPerSec.toFixed(1).padStart(11),
      ].join(' '),
    );
  }
  const roles = Object.entries(r.queues);
  if (roles.length > 0) {
    lines.push('', 'queue (waiting jobs)   start    end   peak');
    for (const [role, q] of roles) lines.push(`${role.padEnd(20)} ${String(q.start).padStart(7)} ${String(q.end).padStart(6)} ${String(q.peak).padStart(6)}`);
  }
  if (r.missing.length > 0) lines.push('', `no profile from: ${r.missing.map((m) => `${m.service}/${m.instance}`).join(', ')}`);
  return lines.join('\n');
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}
