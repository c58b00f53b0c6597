export { RunLocks, LockLostError, mutexKey } from './run-locks.js';
export type { RunLockDraw, RunLockOptions } from './run-locks.js';
export { LeaseTable } from './lease-table.js';
export type { LeaseHolder } from './lease-table.js';
