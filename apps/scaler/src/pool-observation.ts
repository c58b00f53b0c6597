/**
 * From raw inputs (the agent heartbeat hash and queue depths) to the
 * per-role observation the scaling policy reads. Pure, like the policy.
 */
import { DEFAULT_ROLES, ROLE_PATTERN, type AgentHeartbeat } from '@muse/contracts';

export interface RoleAgents {
  /** Agents serving the role whose heartbeat is at most `ttlMs` old. */
  agents: number;
  /** Of those, the ones with a job in flight. */
  busy: number;
  /** Mean CPU (share of a core) and memory (share) of those that report them; absent when none does. */
  cpu?: number;
  memory?: number;
  /** Sum of `completed + failed` over those agents: the scaler turns its growth into a completion rate. */
  done: number;
}

/**
 * Live agents and busy agents per role. An agent serving several roles counts
 * in each: its heartbeat says how many jobs it runs, not of which role, so a
 * multi-role agent busy on one role reads as busy on all of them (the pool
 * then errs on the large side). Per-role pools of single-role workers, which
 * the process and Kubernetes drivers will start, are counted exactly.
 */
export function agentsByRole(heartbeats: Iterable<AgentHeartbeat>, nowMs: number, ttlMs: number): Map<string, RoleAgents> {
  const out = new Map<string, RoleAgents>();
  const seen = new Set<string>();
  const sums = new Map<string, { cpu: number; cpuN: number; mem: number; memN: number }>();
  for (const hb of heartbeats) {
    if (seen.has(hb.agentId)) continue;
    const at = Date.parse(hb.at);
    if (Number.isNaN(at) || nowMs - at > ttlMs) continue;
    seen.add(hb.agentId);
    for (const role of new Set(hb.roles)) {
      const r = out.get(role) ?? { agents: 0, busy: 0, done: 0 };
      r.agents++;
      if (hb.inFlight > 0) r.busy++;
      r.done += hb.completed + hb.failed;
      const s = sums.get(role) ?? { cpu: 0, cpuN: 0, mem: 0, memN: 0 };
      if (hb.cpu !== undefined) {
        s.cpu += hb.cpu;
        s.cpuN++;
      }
      if (hb.memory !== undefined) {
        s.mem += hb.memory;
        s.memN++;
      }
      sums.set(role, s);
      out.set(role, r);
    }
  }
  for (const [role, s] of sums) {
    const r = out.get(role)!;
    if (s.cpuN > 0) r.cpu = round3(s.cpu / s.cpuN);
    if (s.memN > 0) r.memory = round3(s.mem / s.memN);
  }
  return out;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/**
 * The roles with a pool: the default roles, every role already watched, and
 * any valid role a live agent serves, up to `maxRoles` (a bogus heartbeat
 * should not make the scaler poll a thousand queues). Default roles first,
 * then the others by name.
 */
export function poolRoles(known: Iterable<string>, live: Iterable<string>, maxRoles = 64): string[] {
  const roles = new Set<string>([...DEFAULT_ROLES, ...known]);
  for (const role of live) {
    if (roles.size >= maxRoles) break;
    if (ROLE_PATTERN.test(role) && role.length <= 64) roles.add(role);
  }
  const defaults: string[] = DEFAULT_ROLES.filter((r) => roles.has(r));
  return [...defaults, ...[...roles].filter((r) => !defaults.includes(r)).sort()];
}
