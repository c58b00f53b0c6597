/**
 * Where the live view's inputs come from, behind the narrow interface the
 * service needs (so its spec feeds it by hand). Every payload is parsed here,
 * at the boundary: the reducer only ever sees valid events, views and
 * heartbeats.
 */
import type { Redis } from 'ioredis';
import { AgentHeartbeatSchema, RunViewSchema, type AgentHeartbeat, type MuseNames, type RunEvent, type RunView } from '@muse/contracts';
import type { JetStreamBus, RunEventFeedOptions, Subscription$ } from '@muse/messaging';
import { readAgentHeartbeats, type StepQueues } from '@muse/queues';
import type { QueueDepth } from './snapshot.schema.js';

export const LIVE_SOURCES = Symbol('observability.live-sources');

export interface LiveSources {
  /** Run events of every run appended from now on, in order per run (JetStream; resilient to consumer resets). */
  subscribeRunEvents(onEvent: (event: RunEvent) => void): Promise<Subscription$>;
  /** Heartbeats as workers publish them (core NATS, best effort); bad payloads are dropped. */
  subscribeHeartbeats(onHeartbeat: (hb: AgentHeartbeat) => void): void;
  /** The latest heartbeat of every agent that ever wrote one (the Redis hash); bad entries are dropped. */
  readHeartbeats(): Promise<AgentHeartbeat[]>;
  queueDepth(role: string): Promise<QueueDepth>;
  /** The newest `perProject` runs of every project from the Redis read model. */
  readRecentRuns(perProject: number): Promise<{ runs: RunView[]; invalid: number }>;
}

/** Keys fetched per MGET while seeding. */
const MGET_CHUNK = 200;

export function createLiveSources(deps: {
  bus: JetStreamBus;
  redis: Redis;
  queues: StepQueues;
  names: MuseNames;
  /** See `RunEventFeedOptions.onError`. */
  onEventError?: RunEventFeedOptions['onError'];
}): LiveSources {
  const { bus, redis, queues, names } = deps;
  return {
    subscribeRunEvents: (onEvent) => bus.subscribeRunEvents('*', onEvent, 'new', deps.onEventError),

    subscribeHeartbeats: (onHeartbeat) =>
      bus.subscribe(names.agentHeartbeatSubject, (payload) => {
        const hb = AgentHeartbeatSchema.safeParse(payload);
        if (hb.success) onHeartbeat(hb.data);
      }),

    readHeartbeats: async () => (await readAgentHeartbeats(redis, names)).heartbeats,

    queueDepth: (role) => queues.roleDepth(role),

    readRecentRuns: async (perProject) => {
      // Projects are not listed anywhere: find their run indexes by key prefix.
      const pattern = `${names.runIndexKey('')}*`;
      const indexKeys = new Set<string>();
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        for (const k of keys) indexKeys.add(k);
      } while (cursor !== '0');

      const ids = new Set<string>();
      for (const key of indexKeys) {
        // A key of another type under the prefix is not ours to read (WRONGTYPE): skip it.
        const newest = await redis.zrevrange(key, 0, perProject - 1).catch(() => [] as string[]);
        for (const id of newest) ids.add(id);
      }

      const runs: RunView[] = [];
      let invalid = 0;
      const all = [...ids];
      for (let i = 0; i < all.length; i += MGET_CHUNK) {
        const chunk = all.slice(i, i + MGET_CHUNK);
        const values = await redis.mget(...chunk.map((id) => names.runKey(id)));
        for (const raw of values) {
          if (raw === null) continue; // indexed but expired or not written yet
          const view = RunViewSchema.safeParse(parseJson(raw));
          if (view.success) runs.push(view.data);
          else invalid++;
        }
      }
      return { runs, invalid };
    },
  };
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
