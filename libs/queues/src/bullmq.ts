/**
 * The BullMQ classes Muse uses, loaded from their own modules. `import 'bullmq'` loads the whole package: its
 * PostgreSQL, Bun, node-redis and Valkey GLIDE backends and its relay too, which Muse never uses (246 modules,
 * 6.5 MB of heap). These three modules and what they need come to 176 modules and 4.8 MB: about 1.6 MB less in
 * every service that queues. They are the same classes the package root exports (`bullmq.spec.ts` checks it, so an
 * upgrade that moves them fails a test, not a service), and the types are the package's own.
 */
import { createRequire } from 'node:module';
import type * as BullMQ from 'bullmq';

const require = createRequire(import.meta.url);
const load = <T>(path: string): T => require(`bullmq/dist/cjs/classes/${path}`) as T;

export const Queue = load<{ Queue: typeof BullMQ.Queue }>('queue.js').Queue;
export type Queue<DataType = unknown, ResultType = unknown, NameType extends string = string> = BullMQ.Queue<DataType, ResultType, NameType>;

export const Worker = load<{ Worker: typeof BullMQ.Worker }>('worker.js').Worker;
export type Worker<DataType = unknown, ResultType = unknown, NameType extends string = string> = BullMQ.Worker<DataType, ResultType, NameType>;

export const DelayedError = load<{ DelayedError: typeof BullMQ.DelayedError }>('errors/delayed-error.js').DelayedError;
export type DelayedError = BullMQ.DelayedError;

export type { Job, Processor } from 'bullmq';
