/**
 * How the coordinator hands a role's steps to agents (`MUSE_DISPATCH`).
 *
 * - `shared`: the role's queue, which every agent of the role pulls from
 *   (the least loaded takes the next job; an idle agent takes what is there).
 * - `round-robin`: each step to the next live agent of the role, in turn,
 *   on that agent's own queue.
 * - `least-loaded`: to the live agent of the role with the fewest running
 *   and queued jobs, on its own queue.
 * - `affinity`: to the agent that ran the run's latest step when it is live
 *   and serves the role (it holds the run's workspace), else `least-loaded`.
 *
 * Steps that `require` capabilities always go to their `<role>+<tags>` queue
 * (specialization), whatever the strategy. An agent with a free slot steals
 * queued work from an overloaded agent's own queue, and adopts the queue of
 * an agent that went silent.
 */
import { z } from 'zod';
import { ROLE_PATTERN } from './workflow.schema.js';

export const DISPATCH_STRATEGIES = ['shared', 'round-robin', 'least-loaded', 'affinity'] as const;
export const DispatchStrategySchema = z.enum(DISPATCH_STRATEGIES);
export type DispatchStrategy = z.infer<typeof DispatchStrategySchema>;

/** Strategy per role, and the one for roles not named (`*`). */
export interface DispatchTable {
  byRole: Record<string, DispatchStrategy>;
  fallback: DispatchStrategy;
}

/** The role a targeted queue belongs to: `<role>@<agentId>`. */
export const AGENT_QUEUE_SEPARATOR = '@';

/** Queue role of one agent's own queue for `role`. */
export function agentQueueRole(role: string, agentId: string): string {
  return `${role}${AGENT_QUEUE_SEPARATOR}${agentId}`;
}

/** An agent id that can name a queue (BullMQ forbids `:`; `+` and `@` are our separators). */
export const AGENT_QUEUE_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * Parses `MUSE_DISPATCH`: comma-separated `role=strategy` pairs, `*=strategy`
 * for every other role; empty = `shared` everywhere. Throws with the pair at fault.
 */
export function parseDispatchTable(value: string): DispatchTable {
  const table: DispatchTable = { byRole: {}, fallback: 'shared' };
  for (const pair of value.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [role, strategy, extra] = pair.split('=').map((x) => x.trim());
    if (role === undefined || strategy === undefined || extra !== undefined || (role !== '*' && !ROLE_PATTERN.test(role))) {
      throw new Error(`"${pair}": expected role=strategy (or *=strategy)`);
    }
    const s = DispatchStrategySchema.safeParse(strategy);
    if (!s.success) throw new Error(`"${pair}": strategy must be one of ${DISPATCH_STRATEGIES.join(', ')}`);
    if (role === '*') table.fallback = s.data;
    else table.byRole[role] = s.data;
  }
  return table;
}

export function strategyFor(table: DispatchTable, role: string): DispatchStrategy {
  return table.byRole[role] ?? table.fallback;
}
