/**
 * What the heartbeat says about this process's load, for the scaler's
 * `resource` policy: CPU used since the previous sample as a share of one
 * core, and resident memory as a share of what the process may use.
 */
import { totalmem } from 'node:os';

export interface ResourceSample {
  /** CPU time over wall time since the previous sample (1 = one core busy). */
  cpu: number;
  /** RSS over the cgroup limit (`process.constrainedMemory()`), else over the host's memory; 0..1. */
  memory: number;
}

export function createResourceSampler(
  read: { cpuUsage: () => NodeJS.CpuUsage; rss: () => number; limit: () => number; now: () => number } = {
    cpuUsage: () => process.cpuUsage(),
    rss: () => process.memoryUsage.rss(),
    // constrainedMemory() is 0 (or a huge number) when no cgroup limit applies: the host's memory is the bound then.
    limit: () => {
      const c = process.constrainedMemory();
      return c > 0 && c < totalmem() ? c : totalmem();
    },
    now: () => performance.now(),
  },
): () => ResourceSample {
  let last = { usage: read.cpuUsage(), at: read.now() };
  return () => {
    const usage = read.cpuUsage();
    const at = read.now();
    const wallUs = (at - last.at) * 1000;
    const cpuUs = usage.user - last.usage.user + (usage.system - last.usage.system);
    last = { usage, at };
    const round = (x: number) => Math.round(x * 1000) / 1000;
    return { cpu: wallUs > 0 ? round(Math.max(0, cpuUs / wallUs)) : 0, memory: round(Math.min(1, read.rss() / read.limit())) };
  };
}
