/**
 * `get_status`: the orchestration at a glance for the caller's project —
 * runs by status and the active ones, queue depth and pool size per role,
 * live agents, and the newest events of the most recently updated runs.
 * Built from the REST API only (the observability snapshot spans every
 * project, so it is not the caller's to read).
 */
import { isTerminalRunStatus, type PoolList, type RunEvent, type RunView } from '@muse/contracts';
import type { MuseApiClient } from './muse-api.client.js';

type RunSummary = Omit<RunView, 'steps' | 'input' | 'output'>;
interface AgentItem {
  agentId: string;
  roles: string[];
  concurrency: number;
  inFlight: number;
  load: number;
  lastSeenAt: string;
}

export interface StatusOptions {
  /** Newest runs counted by status. @default 200 */
  runs?: number;
  /** Most recently updated runs whose events are listed. @default 5 */
  eventRuns?: number;
  /** Events listed, newest first. @default 25 */
  events?: number;
}

export interface SlimEvent {
  runId: string;
  seq: number;
  type: string;
  at: string;
  stepId?: string;
  attempt?: number;
  errorCode?: string;
}

export function slimEvent(e: RunEvent): SlimEvent {
  const data = ((e as { data?: unknown }).data ?? {}) as { stepId?: unknown; attempt?: unknown; error?: { code?: unknown } };
  return {
    runId: e.runId,
    seq: e.seq,
    type: e.type,
    at: e.at,
    ...(typeof data.stepId === 'string' ? { stepId: data.stepId } : {}),
    ...(typeof data.attempt === 'number' ? { attempt: data.attempt } : {}),
    ...(typeof data.error?.code === 'string' ? { errorCode: data.error.code } : {}),
  };
}

export async function statusSummary(api: MuseApiClient, opts: StatusOptions = {}): Promise<Record<string, unknown>> {
  const runLimit = opts.runs ?? 200;
  const [runs, agents, pools] = await Promise.all([
    api.request<{ items: RunSummary[] }>('GET', '/v1/runs', { query: { limit: runLimit } }),
    api.request<{ items: AgentItem[] }>('GET', '/v1/agents'),
    api.request<PoolList>('GET', '/v1/pools'),
  ]);
  const byStatus: Record<string, number> = {};
  for (const r of runs.items) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
  const active = runs.items
    .filter((r) => !isTerminalRunStatus(r.status))
    .map((r) => ({ id: r.id, workflow: r.workflow, status: r.status, updatedAt: r.updatedAt, ...(r.reason !== undefined ? { reason: r.reason } : {}) }));

  const recent = [...runs.items].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)).slice(0, opts.eventRuns ?? 5);
  const logs = await Promise.all(recent.map((r) => api.request<{ items: RunEvent[] }>('GET', `/v1/runs/${encodeURIComponent(r.id)}/events`)));
  const max = opts.events ?? 25;
  const recentEvents = logs
    .flatMap((l) => l.items.slice(-max))
    .map(slimEvent)
    .sort((a, b) => b.at.localeCompare(a.at) || b.seq - a.seq)
    .slice(0, max);

  return {
    generatedAt: new Date().toISOString(),
    runs: { counted: runs.items.length, byStatus, active },
    queues: pools.items.map((p) => ({ role: p.role, ...p.queue, desired: p.desired, actual: p.actual, busy: p.busy })),
    agents: {
      alive: agents.items.length,
      items: agents.items.map((a) => ({ agentId: a.agentId, roles: a.roles, inFlight: a.inFlight, concurrency: a.concurrency, load: a.load, lastSeenAt: a.lastSeenAt })),
    },
    scaler: { leader: pools.leader, driver: pools.driver, evaluatedAt: pools.evaluatedAt },
    recentEvents,
  };
}
