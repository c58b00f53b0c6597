/** `muse pools`: one line per pool, then its last decisions. */
import type { PoolList } from '@muse/contracts';

export function formatPools(list: PoolList, decisions = 3): string {
  if (list.evaluatedAt === null) return 'no scaler has evaluated the pools yet';
  const head = `pools evaluated at ${list.evaluatedAt} by ${list.leader ?? '?'} (driver ${list.driver ?? '?'})`;
  const rows = list.items.map((p) => {
    const running = p.driverActual === null ? '' : ` running ${p.driverActual}`;
    const policy =
      p.policy.kind === 'resource'
        ? `resource cpu ${p.policy.cpu} mem ${p.policy.memory}`
        : p.policy.kind === 'throughput'
          ? `throughput ${p.policy.targetPerMinute}/min`
          : `queueDepth up ${p.policy.scaleUpThreshold} down ${p.policy.scaleDownThreshold}`;
    const lines = [
      `${p.role.padEnd(14)} desired ${p.desired} live ${p.actual} (busy ${p.busy})${running}  [${p.min}..${p.max}]  ${policy}, cooldown ${p.policy.cooldownMs / 1000} s, idle ${p.policy.idleTimeoutMs / 1000} s  queue ${p.queue.waiting} waiting ${p.queue.active} active`,
      `${''.padEnd(14)} now: ${p.lastCheck.reason}`,
    ];
    for (const d of p.decisions.slice(0, decisions)) lines.push(`${''.padEnd(14)} ${d.at} ${d.direction} ${d.from} -> ${d.to}: ${d.reason}`);
    return lines.join('\n');
  });
  return [head, ...rows].join('\n');
}
