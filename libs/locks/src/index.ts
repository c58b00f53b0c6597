export { RunLocks, LockLostError, mutexKey } from './run-locks.js';
export type { RunLockDraw, RunLockOptions, RunLockTry } from './run-locks.js';
export { LeaseTable } from './lease-table.js';
export type { LeaseHolder } from './lease-table.js';
