export { RunLocks, LockLostError } from './run-locks.js';
export type { RunLockOptions } from './run-locks.js';
