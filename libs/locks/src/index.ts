export { RunLocks, LockLostError } from './run-locks.js';
export type { RunLockOptions } from './run-locks.js';
export { LeaseTable } from './lease-table.js';
export type { LeaseHolder } from './lease-table.js';
