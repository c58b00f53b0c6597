export { createRedis, openRedis } from './redis-connection.js';
export type { ConnectionHost, OpenRedisOptions } from './redis-connection.js';
export { StepQueues, createStepWorker } from './step-queues.js';
export { readAgentHeartbeats } from './agent-registry.js';
export type { AgentHeartbeats } from './agent-registry.js';
export type { StepJobOptions, StepWorkerOptions, Job } from './step-queues.js';
export { readWorkflowVersion, resolveWorkflow, parseWorkflowMeta, parseWorkflowDefinition, storedWorkflow } from './workflow-store.js';
export type { WorkflowVersionMeta } from './workflow-store.js';
