import type { AgentHeartbeat } from '@muse/contracts';

/** DI tokens of the gateway's resources, opened once in main.ts and handed to Nest as values. */
export const GATEWAY_CONFIG = Symbol('muse.gateway.config');
export const BUS = Symbol('muse.gateway.bus');
export const REDIS = Symbol('muse.gateway.redis');
export const NAMES = Symbol('muse.gateway.names');
/** API keys and projects kept in memory until Redis says they changed (`TrackedReads`). */
export const TRACKED_READS = Symbol('muse.gateway.tracked-reads');
/** Reads the live agent registry (heartbeats) and how long a heartbeat counts as live. */
export const AGENT_REGISTRY = Symbol('muse.gateway.agent-registry');
export interface AgentRegistryReader {
  read(): Promise<{ heartbeats: AgentHeartbeat[] }>;
  ttlMs: number;
}
