export { REPO_ROOT } from './repo-root.js';
export { ensureInfra, probe, waitForPort, hostPort, InfraError } from './infra.js';
export type { InfraHandle } from './infra.js';
export { ServiceProcess, SERVICE_ENV_DEFAULTS, SERVICE_NODE_FLAGS } from './service-process.js';
export type { ServiceProcessOptions } from './service-process.js';
export { Cluster } from './cluster.js';
export type { ClusterOptions } from './cluster.js';
export { purgeNamespace } from './purge.js';
