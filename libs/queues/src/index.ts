export { createRedis, openRedis } from './redis-connection.js';
export type { ConnectionHost, OpenRedisOptions } from './redis-connection.js';
export { StepQueues, createStepWorker } from './step-queues.js';
export type { StepJobOptions, StepWorkerOptions, Job } from './step-queues.js';
