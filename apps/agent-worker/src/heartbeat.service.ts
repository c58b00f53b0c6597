/** Moved to `@muse/queues` (the gateway beats for remote agents the same way); kept so imports here stay short. */
export { HeartbeatService } from '@muse/queues';
export type { HeartbeatDeps, HeartbeatIdentity, WorkerCounts } from '@muse/queues';
